"""Start the outbound loops a partner's ``send_via`` / ``receive_via`` ask for.

``send_via = "push"`` or ``"multipush"``: we POST SETs to the partner's endpoint.
``receive_via = "poll"``: we poll the partner's RFC 8936 endpoint. (``send_via =
"poll"`` needs no loop: the partner polls our ``/poll``.) Push-pull sessions are the
dialer's business (:mod:`.dialer`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import anyio
import httpx

from ..auth.outbound import tls_context
from ..errors import PeerError
from .multipush_sender import CONCURRENT_BATCHES, run_multipush_sender
from .poller import run_poller
from .push_sender import CONCURRENT_PUSHES, run_push_sender

if TYPE_CHECKING:
    from ..link.port import LinkPort as Link

__all__ = ["needs_adapters", "run_adapters", "run_stream_poller"]


def needs_adapters(link: Link) -> bool:
    """True if this partner has a push, multi-push or poll loop of ours to run."""
    partner = link.partner
    return partner.send_via in ("push", "multipush") or partner.receive_via == "poll"


async def run_adapters(link: Link) -> None:
    """Run this partner's adapter loops until cancelled, over one connection pool.

    Credentials come from the Link's ``outbound_auth``: a static bearer, or an OAuth
    access token fetched before the first request, kept fresh, and refreshed when the
    partner answers 401; our client certificate when configured.
    """
    await _run(link, poll_url=None)


async def run_stream_poller(link: Link, url: str) -> None:
    """Poll ``url`` for the partner's SETs until cancelled: the RFC 8936 endpoint an
    SSF transmitter returned for our stream, in place of ``poll_endpoint``."""
    await _run(link, poll_url=url)


async def _run(link: Link, *, poll_url: str | None) -> None:
    partner = link.partner
    limits = link.limits
    auth = link.outbound_auth
    timeout = httpx.Timeout(limits.ack_timeout, connect=limits.handshake_timeout)
    pool = httpx.Limits(max_connections=CONCURRENT_PUSHES + CONCURRENT_BATCHES + 2)

    async def on_response(response: httpx.Response) -> None:
        if response.status_code == 401:
            with contextlib.suppress(PeerError):  # logged by keep_fresh / the next try
                await auth.refresh()

    async with (
        httpx.AsyncClient(
            timeout=timeout,
            limits=pool,
            verify=tls_context(partner),
            event_hooks={"response": [on_response]},
        ) as client,
        anyio.create_task_group() as tg,
    ):
        with contextlib.suppress(PeerError):
            await auth.headers()  # a token before the first request, if we can
        tg.start_soon(auth.keep_fresh)
        if poll_url is not None:
            tg.start_soon(run_poller, link, client, poll_url)
            return
        if partner.send_via == "push":
            tg.start_soon(run_push_sender, link, client)
        elif partner.send_via == "multipush":
            tg.start_soon(run_multipush_sender, link, client)
        if partner.receive_via == "poll":
            tg.start_soon(run_poller, link, client)
