"""Serve the Starlette app with uvicorn on the caller's event loop."""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Generator
from typing import Any

import anyio
import uvicorn
from anyio.abc import TaskStatus

__all__ = ["HTTPServer"]

log = logging.getLogger("setpeer.server")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The node (or `setpeer run`) owns signals; uvicorn re-raising them after a
        # graceful stop would turn SIGTERM into a crash.
        yield


class HTTPServer:
    """One uvicorn server bound to ``host:port`` (port 0 picks a free port).

    Args:
        app: the ASGI application.
        host: address to bind (loopback in tests).
        port: port, 0 for ephemeral.
        max_frame_bytes: largest WebSocket message accepted (1009 beyond).
        ssl_context: server TLS, or None for plain HTTP (loopback only).
        idle_timeout: HTTP keep-alive timeout.
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        max_frame_bytes: int,
        ssl_options: dict[str, Any] | None = None,
        idle_timeout: float = 30.0,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            log_level=logging.WARNING,
            access_log=False,
            # PERFORMANCE.md: permessage-deflate costs ~35% on JWS frames.
            ws_per_message_deflate=False,
            ws_max_size=max_frame_bytes,
            ws_ping_interval=20.0,
            ws_ping_timeout=20.0,
            timeout_keep_alive=max(1, int(idle_timeout)),
            timeout_graceful_shutdown=5,
            **(ssl_options or {}),
        )
        self._server = _Server(config)
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
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve)
            while not server.started:
                if server.should_exit:
                    raise OSError("the HTTP server failed to start (see log)")
                await anyio.sleep(0.005)
            sock = server.servers[0].sockets[0]
            host, port = sock.getsockname()[:2]
            scheme = "https" if self.is_tls else "http"
            shown = f"[{host}]" if ":" in host else host
            self.url = f"{scheme}://{shown}:{port}"
            task_status.started(self.url)

    async def stop(self, timeout: float = 6.0) -> None:
        """Stop accepting, close connections (uvicorn's graceful shutdown), and wait."""
        self._server.should_exit = True
        with anyio.move_on_after(timeout):
            await self.stopped.wait()


def server_ssl_options(certfile: str, keyfile: str, client_ca: str | None) -> dict[str, Any]:
    """uvicorn TLS settings; a client CA turns on optional client certificates (mTLS)."""
    options: dict[str, Any] = {"ssl_certfile": certfile, "ssl_keyfile": keyfile}
    if client_ca:
        options["ssl_ca_certs"] = client_ca
        options["ssl_cert_reqs"] = ssl.CERT_OPTIONAL
    return options
