"""The guarded HTTP/1.1 protocol: uvicorn's httptools protocol under a ConnectionGuard.

What it adds to uvicorn's ``HttpToolsProtocol`` (see :mod:`peer.server.guards`):

- **Bounded input.** httptools parses everything it is fed in one call, and uvicorn
  queues every pipelined request it parses (its ``pipeline`` deque) with no bound: one
  256 KiB read of tiny pipelined ``GET``\\ s is ~9,000 queued requests. So the parser is
  fed in slices (:data:`HEADER_SLICE` bytes while a request's headers are read, the
  rest of a ``Content-Length`` body at once), and feeding stops while
  :data:`MAX_PIPELINED` requests wait behind the one being answered, or while the
  transport's write buffer is over its high-water mark (answers not read). What is
  left of the read waits in a backlog and the socket is no longer read (the kernel's
  buffers and TCP flow control hold the rest) until there is room again.
- **Answers that are read.** A connection whose answers wait in its write buffer for
  ``idle_timeout`` without it draining below its low-water mark is aborted (closing
  it would wait for a flush that never comes).
- **The header cap**, counted on the bytes fed while headers are unfinished: with
  slicing, headers that arrive in one write are counted like trickled ones.
- **Strangers** (connections on which no partner has authenticated) are short-lived:
  their keep-alive is ``handshake_timeout``, not ``idle_timeout``, and at the
  connection cap an idle one is closed to make room for a new connection
  (:meth:`ConnectionGuard.admit`). :func:`mark_authenticated` is how the app says a
  partner authenticated on a connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .guards import ConnectionGuard

__all__ = ["HEADER_SLICE", "MAX_PIPELINED", "guarded_http", "mark_authenticated"]

# Requests parsed ahead of the one being answered. Clients that pipeline at all keep
# a few in flight; beyond 16 the socket is simply not read until answers go out.
MAX_PIPELINED: Final = 16
# Bytes fed to httptools at once while headers are read: one call parses at most
# ~55 minimal requests (18 bytes each), the overshoot past MAX_PIPELINED.
HEADER_SLICE: Final = 1024
# ASGI scope extension: a callable that marks the connection as a partner's.
CONNECTION_EXTENSION: Final = "setpeer.connection"


def mark_authenticated(scope: MutableMapping[str, Any]) -> None:
    """Tell the connection guard that a partner authenticated on ``scope``'s connection."""
    extensions = scope.get("extensions") or {}
    mark = extensions.get(CONNECTION_EXTENSION)
    if callable(mark):
        mark()


def guarded_http(base: type[Any], guard: ConnectionGuard) -> type[Any]:
    """``base`` (uvicorn's httptools protocol) under ``guard`` (module docstring)."""

    class GuardedHTTP(base):  # type: ignore[misc]
        timeout_keep_alive: float  # uvicorn's, per connection

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._refused = False  # over the connection cap: never served
            self._rejected = False  # headers too large: answered, closing
            self._header_timer: asyncio.TimerHandle | None = None
            self._unread_timer: asyncio.TimerHandle | None = None
            # Bytes fed while a request's headers are unfinished.
            self._header_bytes = 0
            self._awaiting_headers = True
            self._body_left = 0  # of a Content-Length body, as far as known
            self._backlog = bytearray()  # read, not yet fed: no room for it
            self._authenticated = False
            self._drained = False  # the write buffer went below its low-water mark
            self._lost = False
            # uvicorn arms its keep-alive timer with this, per connection: a stranger's
            # connection does not get the long one (see _mark).
            self._partner_keep_alive = self.timeout_keep_alive
            self.timeout_keep_alive = guard.stranger_keep_alive

        # -- connection ------------------------------------------------------------

        def connection_made(self, transport: Any) -> None:
            if not guard.admit(self, len(self.connections)):
                self._refused = True
                transport.abort()
                return
            super().connection_made(transport)
            self._arm()  # a silent client is closed too

        def connection_lost(self, exc: Exception | None) -> None:
            if self._refused:
                return
            self._lost = True
            guard.forget(self)
            self._disarm()
            self._cancel_unread()
            self._backlog = bytearray()
            super().connection_lost(exc)

        def idle(self) -> bool:
            """No request is being answered or waits (for eviction at the cap)."""
            cycle = self.cycle
            return (cycle is None or cycle.response_complete) and not self.pipeline

        def evict(self) -> None:
            """Close this idle stranger to make room for a new connection."""
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            if transport.get_write_buffer_size():
                transport.abort()  # answers it does not read: nothing to flush
            else:
                transport.close()

        def _mark(self) -> None:
            if not self._authenticated:
                self._authenticated = True
                self.timeout_keep_alive = self._partner_keep_alive
                guard.forget(self)

        # -- input -----------------------------------------------------------------

        def data_received(self, data: bytes) -> None:
            if self._refused or self._rejected:
                return
            if self._backlog:
                self._backlog += data
                self._pump()
                return
            rest = self._feed(memoryview(data))
            if rest:
                self._backlog += rest
            self._hold_if_needed()

        def _pump(self) -> None:
            """Feed the backlog while there is room."""
            if self._refused or self._rejected or self.transport is None:
                return
            backlog, self._backlog = self._backlog, bytearray()
            if backlog:
                rest = self._feed(memoryview(backlog))
                if rest:
                    self._backlog += rest
            self._hold_if_needed()

        def _room(self) -> bool:
            return len(self.pipeline) < MAX_PIPELINED and not self.flow.write_paused

        def _feed(self, data: memoryview) -> memoryview | None:
            """Feed ``data`` to the parser while there is room; what is left unfed."""
            pos, end = 0, len(data)
            while pos < end:
                if not self._room():
                    return data[pos:]
                if self._awaiting_headers or self._body_left <= 0:
                    step = HEADER_SLICE
                else:
                    step = self._body_left
                chunk = data[pos : pos + step]
                pos += len(chunk)
                if self._awaiting_headers:
                    self._header_bytes += len(chunk)
                else:
                    self._body_left -= len(chunk)
                super().data_received(chunk)
                transport = self.transport
                if transport.get_protocol() is not self:
                    # Upgraded: the WebSocket protocol owns the socket now (uvicorn
                    # hands it nothing beyond the upgrade request either).
                    self._disarm()
                    guard.forget(self)
                    return None
                if transport.is_closing():
                    return None
                if self._awaiting_headers and self._header_bytes > guard.max_header_bytes:
                    # httptools holds an unfinished header in memory, unbounded: stop.
                    self._rejected = True
                    self._disarm()
                    transport.write(_TOO_LARGE_RESPONSE)
                    transport.close()
                    return None
            return None

        def _hold_if_needed(self) -> None:
            """Read the socket only while nothing waits in the backlog."""
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            if self._backlog:
                if transport.is_reading():
                    transport.pause_reading()
            elif not transport.is_reading() and not self.flow.read_paused:
                transport.resume_reading()

        # -- parser callbacks --------------------------------------------------------

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.scope["extensions"] = {CONNECTION_EXTENSION: self._mark}
            if self._header_timer is None:
                self._arm()

        def on_headers_complete(self) -> None:
            self._awaiting_headers = False
            self._header_bytes = 0
            self._body_left = _content_length(self.headers)
            self._disarm()
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._awaiting_headers = True  # the next request's headers may follow
            self._body_left = 0

        # -- output ------------------------------------------------------------------

        def on_response_complete(self) -> None:
            super().on_response_complete()  # starts a waiting request, resumes reading
            self._watch_output()
            transport = self.transport
            if transport is None or transport.is_closing():
                return
            if self._backlog:
                transport.pause_reading()  # uvicorn resumed it; the backlog goes first
                self.loop.call_soon(self._pump)

        def pause_writing(self) -> None:
            super().pause_writing()
            self._watch_output()

        def resume_writing(self) -> None:
            super().resume_writing()
            self._drained = True
            if self._backlog:
                self.loop.call_soon(self._pump)

        def _watch_output(self) -> None:
            """Answers wait in the write buffer: they must be read within idle_timeout.

            Closing does not end the wait: a closed transport keeps its socket until
            the buffer is flushed, which never happens if the client does not read.
            """
            transport = self.transport
            if self._unread_timer is None and transport.get_write_buffer_size():
                self._drained = False
                self._unread_timer = self.loop.call_later(guard.idle_timeout, self._unread)

        def _cancel_unread(self) -> None:
            if self._unread_timer is not None:
                self._unread_timer.cancel()
                self._unread_timer = None

        def _unread(self) -> None:
            self._unread_timer = None
            if self._lost or not self.transport.get_write_buffer_size():
                return
            if self._drained:  # read, slowly: the buffer went below its low mark
                self._watch_output()
                return
            guard.count_unread()
            self.transport.abort()  # nothing of it was read for idle_timeout

        # -- header deadline -----------------------------------------------------------

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


def _content_length(headers: list[tuple[bytes, bytes]] | None) -> int:
    """The body length a request announces, 0 when chunked or unknown."""
    length = 0
    for name, value in headers or ():
        if name == b"transfer-encoding":
            return 0
        if name == b"content-length":
            with contextlib.suppress(ValueError):
                length = max(0, int(value))
    return length


_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
)
_TOO_LARGE_RESPONSE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-length: 0\r\nconnection: close\r\n\r\n"
)
