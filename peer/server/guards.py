"""Connection limits: subclasses of uvicorn's protocol classes, and the check they fit.

- a cap on open connections; at the cap an idle connection on which no partner has
  authenticated (a stranger's) is closed to make room, else the new one is closed;
- a deadline from accept (or from a request's first byte) to the end of its headers
  (slowloris, silent sockets), and the same short keep-alive for strangers;
- a cap on header bytes (httptools sets none of its own);
- bounded pipelining: input is parsed only while few requests wait and answers are
  read; a connection that does not read its answers for ``idle_timeout`` is aborted
  (:mod:`peer.server.http_guard`);
- an idle deadline on WebSocket sessions (anything received, pongs included, keeps a
  session alive);
- a WebSocket text message handed to the application as its bytes, UTF-8 unchecked:
  the JSON parser checks it (the application accepts binary messages of UTF-8 JSON
  anyway).

uvicorn offers ``timeout_keep_alive`` (between requests) and ``ws_max_size``, none of
these, so the guards override its protocol callbacks and read a few of its attributes
(``connections``, ``loop``, ``cycle``, ``pipeline``, ``flow``). :func:`check_attachable`
verifies, before a server is built, that the uvicorn in use still has every one of
them: a release that renamed one would otherwise switch a guard off without a word.
``SUPPORTED_UVICORN`` is the range the guards are tested with (``pyproject.toml`` pins
the same).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, Final

from ..errors import CLOSE_GOING_AWAY, PeerError

if TYPE_CHECKING:
    from ..config import Limits

__all__ = [
    "MAX_HEADER_BYTES",
    "SUPPORTED_UVICORN",
    "ConnectionGuard",
    "UnsupportedUvicorn",
    "check_attachable",
    "guarded_protocols",
]

log = logging.getLogger("setpeer.limits")

# Request line plus headers. h11 allows 16 KiB; a bearer that is itself a signed OAuth
# access token with many claims can pass 8 KiB, so 64 KiB, and no more: the headers
# are held in memory before any authentication.
MAX_HEADER_BYTES = 64 * 1024
SUPPORTED_UVICORN: Final = ">=0.54,<0.55"
# What the guards override (methods of the class) and read (set by its __init__).
_HTTP_METHODS: Final = (
    "connection_made",
    "connection_lost",
    "data_received",
    # httptools parser callbacks: the header deadline and size cap hook these.
    "on_message_begin",
    "on_headers_complete",
    "on_message_complete",
    # Output: the next pipelined request starts here; the write-buffer marks.
    "on_response_complete",
    "pause_writing",
    "resume_writing",
)
_HTTP_STATE: Final = (
    "loop",
    "connections",
    "cycle",
    "pipeline",  # pipelined requests parsed, waiting
    "flow",  # read_paused, write_paused
    "timeout_keep_alive",  # seconds, read when the keep-alive timer is armed
)
_WS_METHODS: Final = (
    "connection_made",
    "connection_lost",
    "data_received",
    # A text message is handed on as its bytes (see _guarded_websocket).
    "handle_text",
    "handle_bytes",
)
_WS_STATE: Final = ("loop",)


class UnsupportedUvicorn(PeerError):
    """The installed uvicorn lacks something the connection guards rely on."""


def _uvicorn_version() -> str:
    import uvicorn

    return str(getattr(uvicorn, "__version__", "(unknown version)"))


def _probe(base: type[Any]) -> object:
    """An instance of a uvicorn protocol class, never connected: its __init__ state."""
    import uvicorn
    from uvicorn.server import ServerState

    async def app(scope: Any, receive: Any, send: Any) -> None:  # never called
        raise NotImplementedError

    config = uvicorn.Config(app, log_config=None, lifespan="off", ws_per_message_deflate=False)
    config.load()
    loop = asyncio.new_event_loop()
    try:
        return base(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    finally:
        loop.close()


def _lacking(base: type[Any], methods: Collection[str], state: Collection[str]) -> str | None:
    """The first of ``methods`` or of its instances' ``state`` that ``base`` lacks, quoted."""
    for name in methods:
        if not callable(getattr(base, name, None)):
            return repr(name)
    try:
        probe = _probe(base)
    except Exception as exc:  # a changed constructor: nothing can be checked
        return f"__init__(config, server_state, app_state, _loop) ({exc})"
    for name in state:
        if not hasattr(probe, name):
            return repr(name)
    return None


def check_attachable(http_base: type[Any], ws_base: type[Any] | None) -> None:
    """Refuse uvicorn protocol classes the guards cannot hook completely.

    Raises:
        UnsupportedUvicorn: naming the class and the first thing it lacks.
    """
    checks: list[tuple[type[Any], Collection[str], Collection[str]]]
    checks = [(http_base, _HTTP_METHODS, _HTTP_STATE)]
    if ws_base is not None:
        checks.append((ws_base, _WS_METHODS, _WS_STATE))
    for base, methods, state in checks:
        missing = _lacking(base, methods, state)
        if missing is not None:
            named = next((c for c in base.__mro__ if c.__module__.startswith("uvicorn.")), base)
            raise UnsupportedUvicorn(
                f"uvicorn {_uvicorn_version()} is not supported: its {named.__name__} lacks "
                f"{missing}; setpeer needs uvicorn[standard] {SUPPORTED_UVICORN}"
            )


class ConnectionGuard:
    """Connection-level limits for the uvicorn protocol classes.

    Args:
        max_connections: open connections at once; see :meth:`admit` beyond it.
        handshake_timeout: accept (or a request's first byte) to the end of its
            headers; also the keep-alive of a connection no partner authenticated on.
        idle_timeout: a WebSocket session with nothing received for this long is
            closed; so is an HTTP connection whose answers are not read for this long.
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
        self.stranger_keep_alive = min(handshake_timeout, idle_timeout)
        self.max_header_bytes = max_header_bytes
        self.refused = 0  # connections closed on accept, over the cap
        self.evicted = 0  # idle strangers closed to make room
        self.unread = 0  # connections aborted: their answers were not read
        self._warned = -math.inf
        # HTTP connections no partner has authenticated on, oldest first.
        self._strangers: dict[Any, None] = {}

    @classmethod
    def from_limits(cls, limits: Limits) -> ConnectionGuard:
        """The guard for a node's ``[peer.limits]``."""
        return cls(
            max_connections=limits.max_connections,
            handshake_timeout=limits.handshake_timeout,
            idle_timeout=limits.idle_timeout,
        )

    def admit(self, conn: Any, open_now: int) -> bool:
        """Whether to serve ``conn``, a new HTTP connection, with ``open_now`` open.

        Below the cap: yes. At the cap, the oldest idle stranger (no request being
        answered, no partner authenticated) is closed to make room, so connections
        that merely sit on slots cannot lock partners out; with none, ``conn`` is
        refused (counted, and logged at most every 10 s).
        """
        if open_now >= self.max_connections and not self._evict_one():
            self.over_cap(open_now)
            return False
        self._strangers[conn] = None
        return True

    def forget(self, conn: Any) -> None:
        """``conn`` closed, was upgraded, or a partner authenticated on it."""
        self._strangers.pop(conn, None)

    def count_unread(self) -> None:
        self.unread += 1

    def _evict_one(self) -> bool:
        for conn in self._strangers:
            if conn.idle():
                del self._strangers[conn]
                conn.evict()
                self.evicted += 1
                return True
        return False

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

    Raises:
        UnsupportedUvicorn: a base class lacks what the guards hook (checked here, so
            no server starts with a guard silently detached).
    """
    check_attachable(http_base, ws_base)
    from .http_guard import guarded_http

    ws = None if ws_base is None else _guarded_websocket(ws_base, guard)
    return guarded_http(http_base, guard), ws


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

        def handle_text(self, event: Any) -> None:
            # The application gets a text message as its bytes: the JSON parser decodes
            # it once (uvicorn would decode it, and the parser encode it back), and bad
            # UTF-8 is refused like any bad data (1007 with a reason, counted against
            # the partner's budget) instead of by uvicorn (1007, a traceback logged).
            self.handle_bytes(event)

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
