"""Serve the Starlette app with uvicorn on the caller's event loop.

mTLS: uvicorn verifies a client certificate against ``client_ca`` during the TLS
handshake but does not tell the application which certificate it was: its ASGI
scopes carry no ``tls`` extension, and the transport's SSL object is reachable only
from the protocol object. So the protocol classes are subclassed
(:func:`_tls_protocol`): once a connection is made, the connection's application is
wrapped so every scope on it carries the ASGI TLS extension
(``scope["extensions"]["tls"]["client_cert_chain"]``, the spec's own shape), which
``peer.auth.inbound`` reads. Should a later uvicorn fill the extension itself, it
keeps working; should it rename what we wrap, no certificate reaches the app and
mTLS fails closed (401), which ``tests/security/test_mtls.py`` would show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Generator, MutableMapping
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskStatus
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol

from .guards import ConnectionGuard, guarded_protocols
from .listen import bind_tcp

__all__ = ["HTTPServer", "server_ssl_options", "tls_extension"]

log = logging.getLogger("setpeer.server")

SHUTDOWN_POLL = 0.005
"""Seconds between looks at the connections still open during a graceful stop."""

TLS_CLOSE_GRACE = 0.25
"""Seconds an idle TLS connection closed by a stop has to finish; then it is aborted.
Closing TLS waits for the client's close_notify, and a client that keeps connections
idle in a pool (httpx: a partner fetching our JWK Set, pushing or polling) reads it only
when it next uses the connection: each stop waited out the whole graceful deadline."""

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
ASGIApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]


def tls_extension(transport: Any) -> dict[str, Any] | None:
    """The ASGI ``tls`` extension of a connection, or None for plain TCP."""
    ssl_object = transport.get_extra_info("ssl_object")
    if not isinstance(ssl_object, ssl.SSLObject | ssl.SSLSocket):
        return None
    der = ssl_object.getpeercert(binary_form=True)
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        # Python's ssl gives the leaf only (the verified chain needs 3.13); the leaf
        # is what client_cert_sha256 pins.
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        "cipher_name": cipher[0] if cipher else None,
    }


class _WithTLS:
    """An ASGI app that adds one connection's ``tls`` extension to every scope."""

    def __init__(self, app: ASGIApp, tls: dict[str, Any]) -> None:
        self.app = app
        self.tls = tls

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope.get("type") in ("http", "websocket"):
            scope = dict(scope)
            scope["extensions"] = {**(scope.get("extensions") or {}), "tls": self.tls}
        await self.app(scope, receive, send)


def _tls_protocol(base: type[Any]) -> type[Any]:
    """``base`` (a uvicorn protocol class) whose connections expose their TLS data."""

    class TLSProtocol(base):  # type: ignore[misc]
        app: Any  # every uvicorn protocol (h11, httptools, websockets, wsproto) keeps it here

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            tls = tls_extension(transport)
            if tls is not None and getattr(self, "app", None) is not None:
                self.app = _WithTLS(self.app, tls)

    TLSProtocol.__name__ = TLSProtocol.__qualname__ = f"TLS{base.__name__}"
    return TLSProtocol


class _Server(uvicorn.Server):
    """uvicorn's server, stopped without its polling: uvicorn notices ``should_exit``
    on a 0.1 s tick, then sleeps 0.1 s and polls every 0.1 s until connections close,
    ~0.2-0.3 s per stop; a node stops up to three servers. Here a stop wakes the main
    loop at once and the wait for connections polls every few milliseconds, within
    the same graceful-shutdown deadline."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.woken = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The node (or `setpeer run`) owns signals; uvicorn re-raising them after a
        # graceful stop would turn SIGTERM into a crash.
        yield

    def request_exit(self) -> None:
        self.should_exit = True
        self.woken.set()

    async def main_loop(self) -> None:
        # uvicorn's ticks (the Date header, max-requests) every 0.1 s, woken by a stop.
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.woken.wait(), 0.1)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections
        for sock in sockets or []:
            sock.close()
        state = self.server_state
        for connection in list(state.connections):
            connection.shutdown()  # each closes once its response is written
        # Those closed at once (idle, or WebSocket sessions failed with 1012) that are
        # TLS: what is left of them is the close_notify exchange.
        idle_tls = [c for c in state.connections if _closing_tls(c)]
        loop = asyncio.get_running_loop()
        grace = loop.time() + TLS_CLOSE_GRACE
        deadline = loop.time() + (self.config.timeout_graceful_shutdown or 0)
        while (state.connections or state.tasks) and not self.force_exit:
            if loop.time() >= deadline:
                for task in state.tasks:
                    task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
                break
            if idle_tls and loop.time() >= grace:
                for connection in idle_tls:
                    if connection in state.connections:
                        connection.transport.abort()
                idle_tls = []
            await asyncio.sleep(SHUTDOWN_POLL)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()


def _closing_tls(connection: Any) -> bool:
    """Whether a uvicorn connection is TLS (uvicorn's own ``scheme``) and closing."""
    transport = getattr(connection, "transport", None)
    return (
        getattr(connection, "scheme", None) in ("https", "wss")
        and transport is not None
        and transport.is_closing()
    )


class HTTPServer:
    """One uvicorn server bound to ``host:port`` (port 0 picks a free port), or serving
    a socket bound already (``sock``: a Unix socket).

    Args:
        app: the ASGI application.
        host: address to bind (loopback in tests).
        port: port, 0 for ephemeral.
        sock: a bound, listening socket to serve instead of ``host:port``; its URL
            is ``unix:<path>`` for a Unix socket.
        max_frame_bytes: largest WebSocket message accepted (1009 beyond).
        ssl_context: server TLS, or None for plain HTTP (loopback only).
        idle_timeout: HTTP keep-alive timeout.
        guard: connection limits; None serves without them.
        what: names the setting in errors, e.g. ``peer.listen``: a port in use is
            a :class:`~peer.server.listen.ListenError` naming it, raised by
            :meth:`serve` (we bind; uvicorn would exit the process).
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sock: socket.socket | None = None,
        max_frame_bytes: int,
        ssl_options: dict[str, Any] | None = None,
        idle_timeout: float = 30.0,
        guard: ConnectionGuard | None = None,
        what: str = "listen",
    ) -> None:
        self.what = what
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_level=logging.WARNING,
            access_log=False,
            # permessage-deflate costs ~35% on JWS frames (measured), for little gain.
            ws_per_message_deflate=False,
            ws_max_size=max_frame_bytes,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            timeout_keep_alive=max(1, int(idle_timeout)),
            timeout_graceful_shutdown=5,
            **(ssl_options or {}),
        )
        http_protocol: type[Any] = AutoHTTPProtocol
        ws_protocol: type[Any] | None = AutoWebSocketsProtocol  # type: ignore[assignment]
        if ssl_options and ssl_options.get("ssl_ca_certs"):
            # mTLS: hand the client certificate to the app (see the module docstring).
            http_protocol = _tls_protocol(http_protocol)
            if ws_protocol is not None:
                ws_protocol = _tls_protocol(ws_protocol)
        if guard is not None:
            # Connection cap, header deadline and size, WebSocket idle timeout.
            http_protocol, ws_protocol = guarded_protocols(http_protocol, ws_protocol, guard)
        config.http = http_protocol
        if ws_protocol is not None:
            config.ws = ws_protocol
        self._server = _Server(config)
        self._sock = sock
        self.url = ""
        self.stopped = anyio.Event()

    @property
    def is_tls(self) -> bool:
        return self._server.config.ssl is not None

    async def serve(self, *, task_status: TaskStatus[str] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until :meth:`stop`; reports the bound base URL through ``task_status``."""
        server = self._server
        try:
            await self._serve(server, task_status)
        finally:
            self.stopped.set()

    async def _serve(self, server: _Server, task_status: TaskStatus[str]) -> None:
        if self._sock is not None:
            sockets = [self._sock]
        else:
            sockets = bind_tcp(server.config.host, server.config.port, what=self.what)
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, sockets)
            while not server.started:
                if server.should_exit:
                    raise OSError("the HTTP server failed to start (see log)")
                await anyio.sleep(0.005)
            sock = server.servers[0].sockets[0]
            if sock.family == socket.AF_UNIX:
                self.url = f"unix:{sock.getsockname()}"
                task_status.started(self.url)
                return
            host, port = sock.getsockname()[:2]
            scheme = "https" if self.is_tls else "http"
            shown = f"[{host}]" if ":" in host else host
            self.url = f"{scheme}://{shown}:{port}"
            task_status.started(self.url)

    async def stop(self, timeout: float = 6.0) -> None:
        """Stop accepting, close connections (uvicorn's graceful shutdown), and wait."""
        self._server.request_exit()
        with anyio.move_on_after(timeout):
            await self.stopped.wait()


def server_ssl_options(certfile: str, keyfile: str, client_ca: str | None) -> dict[str, Any]:
    """uvicorn TLS settings; a client CA turns on optional client certificates (mTLS)."""
    options: dict[str, Any] = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
    if client_ca:
        options["ssl_ca_certs"] = client_ca
        options["ssl_cert_reqs"] = ssl.CERT_OPTIONAL
    return options
