"""The local interface's listener: a Unix socket or loopback TCP, its own guard.

The node starts one when ``[peer.app] listen`` is set. It serves only the ``/v1``
routes (never the partner routes), under a connection guard of its own sized for a
few applications, and removes its socket file when it stops.
"""

from __future__ import annotations

import logging

import anyio
from anyio.abc import TaskGroup

from ..server.guards import ConnectionGuard
from ..server.serve import HTTPServer
from .port import LocalNode
from .routes import create_local_app
from .unix import UnixListener, bind_unix

__all__ = ["MAX_APP_CONNECTIONS", "LocalListener"]

log = logging.getLogger("setpeer.local")

MAX_APP_CONNECTIONS = 64
"""Connections to the local interface at once: applications and their long polls."""


class LocalListener:
    """Serves the local interface of ``node`` until :meth:`stop`.

    Attributes:
        url: ``unix:/path/app.sock`` or ``http://127.0.0.1:PORT``, once started.
    """

    def __init__(self, node: LocalNode) -> None:
        self.node = node
        self.url = ""
        self._closing = anyio.Event()
        self._unix: UnixListener | None = None
        self._server: HTTPServer | None = None

    async def start(self, tg: TaskGroup) -> str:
        """Bind and serve in ``tg``; the URL applications use.

        Raises:
            PeerError: the Unix socket cannot be bound (another node serves it, ...).
            OSError: the TCP address cannot be bound.
        """
        config = self.node.config
        listen = config.app.listen
        assert listen is not None
        limits = config.limits
        guard = ConnectionGuard(
            max_connections=MAX_APP_CONNECTIONS,
            handshake_timeout=limits.handshake_timeout,
            idle_timeout=limits.idle_timeout,
        )
        app = create_local_app(self.node, closing=self._closing)
        path = config.app_socket
        if path is not None:
            self._unix = bind_unix(path)
            host, port, sock = "127.0.0.1", 0, self._unix.socket
        else:
            host, _, port_text = listen.rpartition(":")
            host, port, sock = host.removeprefix("[").removesuffix("]"), int(port_text), None
        self._server = HTTPServer(
            app,
            host=host,
            port=port,
            sock=sock,
            max_frame_bytes=limits.max_frame_bytes,
            idle_timeout=limits.idle_timeout,
            guard=guard,
            what="peer.app.listen",
        )
        try:
            url = await tg.start(self._server.serve)
        except BaseException:
            self._remove_socket()
            raise
        self.url = url if path is None else f"unix:{path}"
        log.info("local application interface on %s", self.url)
        return self.url

    async def stop(self) -> None:
        """End long polls, stop serving, remove the socket file."""
        self._closing.set()
        try:
            if self._server is not None:
                await self._server.stop()
        finally:
            self._remove_socket()

    def _remove_socket(self) -> None:
        if self._unix is not None:
            self._unix.close()
            self._unix = None
