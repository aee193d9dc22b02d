"""Start the outbound loops a partner's ``send_via`` / ``receive_via`` ask for.

``send_via = "push"`` or ``"multipush"``: we POST SETs to the partner's endpoint.
``receive_via = "poll"``: we poll the partner's RFC 8936 endpoint. (``send_via =
"poll"`` needs no loop: the partner polls our ``/poll``.) Push-pull sessions are the
dialer's business (:mod:`.dialer`).
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import anyio
import httpx

from .multipush_sender import CONCURRENT_BATCHES, run_multipush_sender
from .poller import run_poller
from .push_sender import CONCURRENT_PUSHES, run_push_sender

if TYPE_CHECKING:
    from ..link import Link

__all__ = ["needs_adapters", "run_adapters"]


def needs_adapters(link: Link) -> bool:
    """True if this partner has a push, multi-push or poll loop of ours to run."""
    partner = link.partner
    return partner.send_via in ("push", "multipush") or partner.receive_via == "poll"


def _ssl_context(link: Link) -> ssl.SSLContext:
    """Verify the partner's certificate and host name (PUSH-23, MP-20, POLL-23)."""
    context = ssl.create_default_context()
    ca = getattr(link.partner, "ca_path", None)
    if ca is not None:
        context.load_verify_locations(cafile=str(ca))
    return context


async def run_adapters(link: Link) -> None:
    """Run this partner's adapter loops until cancelled, over one connection pool."""
    partner = link.partner
    limits = link.limits
    timeout = httpx.Timeout(limits.ack_timeout, connect=limits.handshake_timeout)
    pool = httpx.Limits(max_connections=CONCURRENT_PUSHES + CONCURRENT_BATCHES + 2)
    async with (
        httpx.AsyncClient(timeout=timeout, limits=pool, verify=_ssl_context(link)) as client,
        anyio.create_task_group() as tg,
    ):
        if partner.send_via == "push":
            tg.start_soon(run_push_sender, link, client)
        elif partner.send_via == "multipush":
            tg.start_soon(run_multipush_sender, link, client)
        if partner.receive_via == "poll":
            tg.start_soon(run_poller, link, client)
