"""The initiator side of a push-pull Link: WebSocket first, HTTP when refused.

push-pull §7.1 (PP-16, PP-17): offer the ``pushpull`` subprotocol; if the upgrade
is refused, use the HTTP binding and try WebSocket again later. Connection failures
back off with jitter (``reconnect_initial`` .. ``reconnect_max``).
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from typing import TYPE_CHECKING

import anyio
import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, NegotiationError

from ..errors import ConnectError, PeerError
from ..protocol.retry import RetryPolicy
from .http_pushpull import run_http_session
from .websocket import SUBPROTOCOL, ClientChannel, run_ws_session

if TYPE_CHECKING:
    from ..link import Link
    from ..node import Peer

__all__ = ["run_dialer"]

log = logging.getLogger("setpeer.dialer")


class UpgradeRefused(ConnectError):
    """The partner's endpoint answered, but not with a ``pushpull`` WebSocket."""


def client_ssl_context(link: Link) -> ssl.SSLContext | None:
    """Verify the partner's certificate and host name (PP-18); None for plain loopback."""
    if not (link.partner.endpoint or "").startswith(("wss:", "https:")):
        return None
    context = ssl.create_default_context()
    ca = getattr(link.partner, "ca_path", None)
    if ca is not None:
        context.load_verify_locations(cafile=str(ca))
    return context


async def _websocket(link: Link, context: ssl.SSLContext | None) -> None:
    limits = link.limits
    endpoint = link.partner.endpoint
    if endpoint is None:
        raise ConnectError("no endpoint configured")
    try:
        websocket = await connect(
            endpoint,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers=link.auth_headers(),
            compression=None,  # PERFORMANCE.md: deflate costs ~35% on JWS frames
            max_size=limits.max_frame_bytes,
            open_timeout=limits.handshake_timeout,
            ssl=context,
            ping_interval=20,
            ping_timeout=20,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise ConnectError(f"WebSocket handshake refused: HTTP {status}") from exc
        raise UpgradeRefused(f"WebSocket upgrade refused: HTTP {status}") from exc
    except NegotiationError as exc:
        raise UpgradeRefused(f"WebSocket upgrade refused: {exc}") from exc
    except InvalidHandshake as exc:
        raise UpgradeRefused(f"WebSocket upgrade refused: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise ConnectError(f"cannot connect: {type(exc).__name__}: {exc}") from exc
    async with websocket:
        if websocket.subprotocol != SUBPROTOCOL:
            # PP-17: without "pushpull" echoed, WebSocket is not used.
            raise UpgradeRefused("the partner did not select the pushpull subprotocol")
        await run_ws_session(link, ClientChannel(websocket))


async def run_dialer(link: Link, node: Peer) -> None:
    """Keep a push-pull session to the partner open while the node runs."""
    partner = link.partner
    if not partner.initiate or partner.endpoint is None:
        return
    retry = RetryPolicy(initial=link.limits.reconnect_initial, maximum=link.limits.reconnect_max)
    rng = random.Random()
    failures = 0
    http_until = 0.0  # WebSocket refused: use HTTP until then
    timeout = httpx.Timeout(link.limits.handshake_timeout + link.limits.idle_timeout)
    context = client_ssl_context(link)  # once per Link, not per connection attempt
    async with httpx.AsyncClient(timeout=timeout, verify=context or True, http2=False) as client:
        while not link.closing:
            use_ws = partner.transport == "websocket" and time.monotonic() >= http_until
            started = time.monotonic()
            try:
                if use_ws:
                    await _websocket(link, context)
                else:
                    until = None if partner.transport == "http" else http_until
                    await run_http_session(link, client, partner.http_endpoint, until=until)
            except UpgradeRefused as exc:
                log.info("partner=%s %s; using HTTP", link.name, exc)
                http_until = time.monotonic() + link.limits.reconnect_max
                continue
            except PeerError as exc:
                log.info("partner=%s session ended: %s", link.name, exc)
            if link.closing:
                return
            # A session that lasted a while resets the backoff.
            failures = 0 if time.monotonic() - started > link.limits.reconnect_max else failures + 1
            if failures:
                await anyio.sleep(retry.delay(failures, rng))
