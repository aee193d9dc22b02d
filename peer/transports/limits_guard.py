"""Resource limits on everything a client can make the server hold (DESIGN "Security stance").

Three layers, from the socket up:

- **connections** (:func:`guarded_protocols`, subclasses of uvicorn's protocol classes):
  a cap on open connections, a deadline from accept (or from a request's first byte)
  to the end of its headers (slowloris, silent sockets), a cap on header bytes
  (httptools sets none of its own), and an idle deadline on WebSocket sessions
  (anything received, pongs included, keeps a session alive). uvicorn offers
  ``timeout_keep_alive`` (between requests) and ``ws_max_size``, nothing of these.
- **requests** (:class:`GuardMiddleware`, ASGI): a request body must arrive whole
  within ``idle_timeout`` (else 408); an answer given before the body was read closes
  the connection, so a client cannot keep trickling a refused 100 MB body; the
  partner's session slot is released when the request or WebSocket ends.
- **partners** (``peer.link.partner_limits``, one per Link): concurrent sessions,
  the rate of inbound SETs (a token bucket that may run into debt by one frame), and the inbox
  backlog (SETs stored but not yet ``done()``). Over a limit the partner gets
  :class:`~peer.errors.Overloaded` (429 with ``Retry-After``, or close 1013): nothing in
  the refused request is stored or acknowledged, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio
from starlette.requests import HTTPConnection

from ..errors import CLOSE_GOING_AWAY, MalformedFrame, RequestTimeout

if TYPE_CHECKING:
    from ..config import Limits
    from ..link.port import LinkPort as Link

__all__ = [
    "MAX_HEADER_BYTES",
    "ConnectionGuard",
    "GuardMiddleware",
    "admitting",
    "guarded_protocols",
]

log = logging.getLogger("setpeer.limits")

# Request line plus headers. h11 allows 16 KiB; a bearer that is itself a signed OAuth
# access token with many claims can pass 8 KiB, so 64 KiB, and no more: the headers
# are held in memory before any authentication.
MAX_HEADER_BYTES = 64 * 1024
# Routes that only ever carry SETs in: refused before the body is read when the
# partner is over its rate or backlog. /pushpull checks after parsing (a frame of
# acks only is always welcome), /poll carries none.
_SET_ROUTES = frozenset({"/events", "/multipush"})
_HELD = "setpeer.sessions"  # ASGI scope key: the Links a request holds a session slot of
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def admitting(
    authenticate: Callable[[HTTPConnection], Awaitable[Link]],
) -> Callable[[HTTPConnection], Awaitable[Link]]:
    """``authenticate``, then take a session slot of the partner for this request.

    The slot is released by :class:`GuardMiddleware` when the request or WebSocket
    ends. SET-only routes are also refused while the partner is over its rate or
    backlog, before their body is read.
    """

    async def admit(conn: HTTPConnection) -> Link:
        link = await authenticate(conn)
        held = conn.scope.get(_HELD)
        if conn.scope.get("path") in _SET_ROUTES:
            link.check_inbound()
        if held is not None:  # only counted where it is released again
            link.take_slot()
            held.append(link)
        return link

    return admit


def _has_body(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value.strip() != b"0"):
            return True
    return False


class GuardMiddleware:
    """ASGI middleware: body deadline, close after an early answer, release slots.

    Args:
        app: the application.
        body_timeout: seconds a request body may take from the request's start
            (``idle_timeout``).
    """

    def __init__(self, app: ASGIApp, *, body_timeout: float) -> None:
        self.app = app
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope.get("type")
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        held: list[Link] = []
        scope[_HELD] = held
        try:
            if kind == "websocket":
                await self.app(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        finally:
            for link in held:
                link.give_slot()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        deadline = anyio.current_time() + self.body_timeout
        body_done = not _has_body(scope)

        async def guarded_receive() -> MutableMapping[str, Any]:
            nonlocal body_done
            if body_done:
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()):
                message = await receive()
                if message.get("type") == "http.disconnect":
                    # Gone mid-body: a typed refusal for the route, not a crash.
                    raise MalformedFrame("the client went away before the body was complete")
                if not message.get("more_body", False):
                    body_done = True
                return message
            raise RequestTimeout(f"request body not complete within {self.body_timeout:g} s")

        async def guarded_send(message: MutableMapping[str, Any]) -> None:
            if message.get("type") == "http.response.start" and not body_done:
                # Answered before the body was read (401, 413, 429, 408): close
                # afterwards, or the rest of the body keeps the connection busy.
                headers = list(message.get("headers", []))
                headers.append((b"connection", b"close"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, guarded_receive, guarded_send)


class ConnectionGuard:
    """Connection-level limits for the uvicorn protocol classes.

    Args:
        max_connections: open connections at once; more are closed on accept.
        handshake_timeout: accept (or a request's first byte) to the end of its headers.
        idle_timeout: a WebSocket session with nothing received for this long is closed.
        max_header_bytes: request line and headers of one request.
    """

    def __init__(
        self,
        *,
        max_connections: int,
        handshake_timeout: float,
        idle_timeout: float,
        max_header_bytes: int = MAX_HEADER_BYTES,
    ) -> None:
        self.max_connections = max_connections
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.max_header_bytes = max_header_bytes
        self.refused = 0  # connections closed on accept, over the cap
        self._warned = -math.inf

    @classmethod
    def from_limits(cls, limits: Limits) -> ConnectionGuard:
        """The guard for a node's ``[peer.limits]``."""
        return cls(
            max_connections=limits.max_connections,
            handshake_timeout=limits.handshake_timeout,
            idle_timeout=limits.idle_timeout,
        )

    def over_cap(self, open_now: int) -> bool:
        """True (and counted, and logged at most every 10 s) if one more is too many."""
        if open_now < self.max_connections:
            return False
        self.refused += 1
        now = time.monotonic()
        if now - self._warned >= 10.0:
            self._warned = now
            log.warning(
                "connection limit %d reached: new connections are closed (%d so far)",
                self.max_connections,
                self.refused,
            )
        return True


def guarded_protocols(
    http_base: type[Any], ws_base: type[Any] | None, guard: ConnectionGuard
) -> tuple[type[Any], type[Any] | None]:
    """uvicorn protocol classes with ``guard``'s limits (see the module docstring).

    The header deadline and size cap hook httptools' parser callbacks (uvicorn's
    default parser with ``uvicorn[standard]``); with h11 only the connection cap
    applies, and h11's own 16 KiB header limit.
    """
    ws = None if ws_base is None else _guarded_websocket(ws_base, guard)
    return _guarded_http(http_base, guard), ws


def _guarded_http(base: type[Any], guard: ConnectionGuard) -> type[Any]:
    parses = hasattr(base, "on_headers_complete")  # httptools callbacks

    class GuardedHTTP(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._refused = False  # over the connection cap: never served
            self._rejected = False  # headers too large: answered, closing
            self._header_timer: asyncio.TimerHandle | None = None
            # Bytes received while a request's headers are unfinished; the chunk that
            # ends them may carry up to one read (256 KiB) of body too, so the cap is
            # checked only while they are still unfinished.
            self._header_bytes = 0
            self._awaiting_headers = parses

        def connection_made(self, transport: Any) -> None:
            if guard.over_cap(len(self.connections)):
                self._refused = True
                transport.abort()
                return
            super().connection_made(transport)
            if parses:
                self._arm()  # a silent client is closed too

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused or self._rejected:
                return
            if self._awaiting_headers:
                self._header_bytes += len(data)
            super().data_received(data)
            if self.transport.get_protocol() is not self:
                self._disarm()  # upgraded: the WebSocket protocol owns the socket now
            elif self._awaiting_headers and self._header_bytes > guard.max_header_bytes:
                # httptools holds an unfinished header in memory, unbounded: stop here.
                self._rejected = True
                self._disarm()
                self.transport.write(_TOO_LARGE_RESPONSE)
                self.transport.close()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            if self._header_timer is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._awaiting_headers = False
            self._header_bytes = 0
            self._disarm()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._awaiting_headers = True  # the next request's headers may follow

        def _arm(self) -> None:
            self._disarm()
            self._header_timer = self.loop.call_later(guard.handshake_timeout, self._expired)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self) -> None:
            self._header_timer = None
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            cycle = getattr(self, "cycle", None)
            if cycle is None or cycle.response_complete:
                transport.write(_TIMEOUT_RESPONSE)
            transport.close()

    GuardedHTTP.__name__ = GuardedHTTP.__qualname__ = f"Guarded{base.__name__}"
    return GuardedHTTP


_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
)
_TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)


def _guarded_websocket(base: type[Any], guard: ConnectionGuard) -> type[Any]:
    class GuardedWebSocket(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._last_data = 0.0
            self._idle_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._last_data = self.loop.time()
            self._idle_timer = self.loop.call_later(guard.idle_timeout, self._check_idle)

        def data_received(self, data: bytes) -> None:
            self._last_data = self.loop.time()  # any frame, pongs to our pings included
            super().data_received(data)

        def connection_lost(self, exc: Exception | None) -> None:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None
            super().connection_lost(exc)

        def _check_idle(self) -> None:
            quiet = self.loop.time() - self._last_data
            if quiet < guard.idle_timeout:
                delay = guard.idle_timeout - quiet
                self._idle_timer = self.loop.call_later(delay, self._check_idle)
                return
            self._idle_timer = None
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            conn = getattr(self, "conn", None)  # the websockets sans-I/O protocol
            if conn is not None and not getattr(self, "close_sent", False):
                try:
                    conn.fail(CLOSE_GOING_AWAY, "idle timeout")
                    transport.write(b"".join(conn.data_to_send()))
                except Exception:  # a close frame is a courtesy here; closing is what counts
                    pass
                self.close_sent = True
            transport.close()

    GuardedWebSocket.__name__ = GuardedWebSocket.__qualname__ = f"Guarded{base.__name__}"
    return GuardedWebSocket
