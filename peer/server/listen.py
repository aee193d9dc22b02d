"""Bind a TCP listener ourselves, so that a port in use is one precise error.

uvicorn binds a ``host:port`` it is given inside its startup task, logs the
``OSError`` and calls ``sys.exit(3)`` there; through the task group that became an
exception group around ``SystemExit``, a fifty-line traceback and exit status 3. The
sockets bound here are handed to uvicorn instead, and ``setpeer check-config --bind``
tries the same binds without serving.
"""

from __future__ import annotations

import contextlib
import errno
import socket

__all__ = ["BACKLOG", "ListenError", "bind_tcp"]

BACKLOG = 2048  # uvicorn's default


class ListenError(OSError):
    """A listener could not be bound; ``str()`` is one line naming what and where."""

    def __init__(self, code: int | None, message: str) -> None:
        super().__init__(message)
        self.errno = code


def _reason(exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return "the port is in use (another process listens there)"
    if exc.errno == errno.EACCES:
        return "permission denied (ports below 1024 need privileges)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return "no such address on this machine"
    return (exc.strerror or str(exc)).lower()


def bind_tcp(host: str, port: int, *, what: str = "listen") -> list[socket.socket]:
    """Listening sockets for ``host:port`` (one per address the host resolves to).

    Args:
        host: a bare address or name (no brackets).
        port: the port, 0 for an ephemeral one.
        what: names the setting in the error, e.g. ``peer.listen``.

    Raises:
        ListenError: the host does not resolve or an address cannot be bound.
    """
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(None, f"{what}: cannot resolve {host}: {exc.strerror}") from None
    sockets: list[socket.socket] = []
    seen: set[tuple[object, ...]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, *address[:2]) in seen:
                continue
            seen.add((family, *address[:2]))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if port == 0 and sockets[:-1]:
                # One ephemeral port for every address of the host.
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            try:
                sock.bind(address)
            except OSError as exc:
                message = f"{what}: cannot listen on {shown}: {_reason(exc)}"
                raise ListenError(exc.errno, message) from None
            sock.listen(BACKLOG)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        raise
    return sockets
