"""The initiator side of a push-pull Link: WebSocket first, HTTP when refused.

push-pull §7.1 (PP-16, PP-17): offer the ``pushpull`` subprotocol; if the upgrade
is refused, use the HTTP binding and try WebSocket again later. Connection failures
back off with jitter (``reconnect_initial`` .. ``reconnect_max``).

Security: the partner's certificate and host name are verified (PP-18)
with the Link's TLS context, which also carries our client certificate; every
handshake and request carries the Link's :class:`~peer.auth.outbound.OutboundAuth`
headers. A 401 makes it refresh its credentials (decision 7, OPRM-20). An OAuth
access token is replaced before it expires, and a WebSocket session opened with it
is closed and reopened then, so no session outlives its credential.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from typing import TYPE_CHECKING

import anyio
import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus, NegotiationError

from ..errors import ConnectError, PeerError
from ..protocol.retry import RetryPolicy
from .http_pushpull import run_http_session
from .websocket import SUBPROTOCOL, ClientChannel, run_ws_session

if TYPE_CHECKING:
    from ..auth.outbound import OutboundAuth
    from ..link.port import LinkPort as Link

__all__ = ["UpgradeRefused", "run_dialer"]

log = logging.getLogger("setpeer.dialer")

# RFC 6455 §7.4.1: a planned end of the session, not an error.
_CLOSE_NORMAL = 1000


class UpgradeRefused(ConnectError):
    """The partner's endpoint answered, but not with a ``pushpull`` WebSocket."""


def _challenge(headers: httpx.Headers | object) -> str:
    """The partner's ``WWW-Authenticate``, bounded and printable, for the log."""
    value = headers.get("www-authenticate") if hasattr(headers, "get") else None
    text = value if isinstance(value, str) else ""
    return "".join(c for c in text[:300] if c.isprintable())


async def _refresh_after_401(auth: OutboundAuth) -> None:
    try:
        await auth.refresh()
    except PeerError as exc:
        # The next session start reports it again through headers().
        log.info("partner=%s credential refresh failed: %s", auth.name, exc)


async def _websocket(link: Link, endpoint: str | None) -> bool:
    """One WebSocket session; True when it ended for a planned credential rollover."""
    limits = link.limits
    auth = link.outbound_auth
    if endpoint is None:
        raise ConnectError("no endpoint configured")
    headers = await auth.headers()
    try:
        websocket = await connect(
            endpoint,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers=headers,
            compression=None,  # deflate costs ~35% on JWS frames (measured)
            max_size=limits.max_frame_bytes,
            open_timeout=limits.handshake_timeout,
            ssl=auth.ssl_context,
            ping_interval=20,
            ping_timeout=20,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status == 401:
            await _refresh_after_401(auth)
        if status in (401, 403):
            challenge = _challenge(exc.response.headers)
            raise ConnectError(f"WebSocket handshake refused: HTTP {status} {challenge}") from exc
        raise UpgradeRefused(f"WebSocket upgrade refused: HTTP {status}") from exc
    except NegotiationError as exc:
        raise UpgradeRefused(f"WebSocket upgrade refused: {exc}") from exc
    except InvalidMessage as exc:
        if endpoint.startswith("ws:"):
            # A TLS server answers plain text with a TLS alert or by closing.
            raise ConnectError(
                f"no HTTP response to a plain-text handshake ({exc}); does the partner "
                "require TLS (wss://)?"
            ) from exc
        if link.partner.auth.client_cert is not None and isinstance(exc.__cause__, EOFError):
            # TLS 1.3: a refused client certificate shows as the server hanging up
            # right after our handshake, before any HTTP response.
            raise ConnectError(
                f"the partner closed the connection without an HTTP response ({exc}); "
                "did it refuse our client certificate?"
            ) from exc
        raise UpgradeRefused(f"WebSocket upgrade refused: {exc}") from exc
    except InvalidHandshake as exc:
        raise UpgradeRefused(f"WebSocket upgrade refused: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        # ssl.SSLCertVerificationError is an OSError: its text says why (expired,
        # host name mismatch, unknown CA).
        raise ConnectError(f"cannot connect: {type(exc).__name__}: {exc}") from exc
    async with websocket:
        if websocket.subprotocol != SUBPROTOCOL:
            # PP-17: without "pushpull" echoed, WebSocket is not used.
            raise UpgradeRefused("the partner did not select the pushpull subprotocol")
        rollover = auth.refresh_at if auth.uses_oauth else None
        async with anyio.create_task_group() as tg:
            if rollover is not None:
                tg.start_soon(_close_at, websocket, rollover, link.name)
            await run_ws_session(link, ClientChannel(websocket))
            tg.cancel_scope.cancel()
        return rollover is not None and time.monotonic() >= rollover


async def _close_at(websocket: ClientConnection, when: float, name: str) -> None:
    """Close the session when its access token is due for renewal.

    In-flight SETs are not lost: the Ledger sends them again on the next session
    and the partner deduplicates them by (iss, jti).
    """
    await anyio.sleep(max(0.0, when - time.monotonic()))
    log.info("partner=%s access token due for renewal: reopening the session", name)
    await websocket.close(_CLOSE_NORMAL, "credential renewal")


def _leaves(group: BaseExceptionGroup[PeerError]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return found


class _Repeats:
    """The dialer's lines about one partner: a line is logged once, its repeats (the
    same refusal on every reconnect) at DEBUG, until a session lasts again. A refused
    credential (HTTP 401 or 403) is a WARNING: it does not heal by retrying."""

    def __init__(self, partner: str) -> None:
        self.partner = partner
        self._said: set[str] = set()

    def say(self, text: str, prefix: str = "") -> None:
        line = f"{prefix} {text}" if prefix else text
        repeat = text in self._said
        refused = "HTTP 401" in text or "HTTP 403" in text
        level = logging.DEBUG if repeat else logging.WARNING if refused else logging.INFO
        if not repeat:
            if len(self._said) > 64:
                self._said.clear()
            self._said.add(text)
        tail = "" if repeat or not refused else " (retrying; repeats logged at DEBUG)"
        extra = {"partner": self.partner, "description": text}
        log.log(level, "partner=%s %s%s", self.partner, line, tail, extra=extra)

    def forget(self) -> None:
        self._said.clear()


async def run_dialer(link: Link, endpoint: str | None = None) -> None:
    """Keep a push-pull session to the partner open while the node runs.

    Args:
        endpoint: dial this push-pull endpoint (``ws(s)://`` or ``http(s)://``)
            instead of the configured one, whatever ``initiate`` says: the endpoint a
            partner's SSF stream returned (peer/ssf/runner.py).
    """
    partner = link.partner
    if endpoint is not None:
        partner = dataclasses.replace(partner, initiate=True, endpoint=_as_websocket(endpoint))
    if not partner.initiate or partner.endpoint is None:
        return
    auth = link.outbound_auth
    retry = RetryPolicy(initial=link.limits.reconnect_initial, maximum=link.limits.reconnect_max)
    rng = random.Random()
    failures = 0
    http_until = 0.0  # WebSocket refused: use HTTP until then
    timeout = httpx.Timeout(link.limits.handshake_timeout + link.limits.idle_timeout)

    said = _Repeats(link.name)  # a refusal repeated on every retry is logged once

    async def on_response(response: httpx.Response) -> None:
        if response.status_code == 401:
            said.say(f"HTTP 401 {_challenge(response.headers)}", "our credentials refused:")
            await _refresh_after_401(auth)

    context = auth.ssl_context  # once per Link, not per connection attempt
    async with (
        httpx.AsyncClient(
            timeout=timeout,
            verify=context or True,
            http2=False,
            event_hooks={"response": [on_response]},
        ) as client,
        anyio.create_task_group() as tg,
    ):
        if auth.uses_oauth:
            tg.start_soon(auth.keep_fresh)
        while not link.closing:
            use_ws = partner.transport == "websocket" and time.monotonic() >= http_until
            started = time.monotonic()
            try:
                if use_ws:
                    if await _websocket(link, partner.endpoint):
                        continue  # a planned rollover, not a failure
                else:
                    await auth.headers()  # a fresh token before the first POST
                    until = None if partner.transport == "http" else http_until
                    await run_http_session(link, client, partner.http_endpoint, until=until)
            except UpgradeRefused as exc:
                said.say(f"{exc}; using HTTP")
                http_until = time.monotonic() + link.limits.reconnect_max
                continue
            except PeerError as exc:
                said.say(str(exc), "session ended:")
            except ExceptionGroup as group:
                # A binding that runs several tasks reports their errors as a group.
                errors, rest = group.split(PeerError)
                if rest is not None or errors is None:
                    raise
                said.say(str(_leaves(errors)[0]), "session ended:")
            if link.closing:
                break
            # A session that lasted a while resets the backoff.
            failures = 0 if time.monotonic() - started > link.limits.reconnect_max else failures + 1
            if not failures:
                said.forget()  # it was up: the next refusal is news again
            if failures:
                await anyio.sleep(retry.delay(failures, rng))
        tg.cancel_scope.cancel()


def _as_websocket(url: str) -> str:
    """``http(s)://`` as ``ws(s)://`` (push-pull binds both on one URL; the HTTP
    binding maps it back)."""
    scheme, sep, rest = url.partition("://")
    mapped = {"https": "wss", "http": "ws"}.get(scheme.lower())
    return f"{mapped}://{rest}" if sep and mapped else url
