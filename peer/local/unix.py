"""The local interface's Unix socket: bound mode 0600, stale files replaced, live ones
refused, long paths reached through the folder's file descriptor.

- **Mode 0600 from the start.** The socket is bound inside a fresh 0700 folder
  (``mkdtemp``) beside its final name, made 0600 there, then hard-linked into place:
  at no moment can another user connect, whatever the umask, and ``link`` fails if
  the name was taken meanwhile (two nodes starting at once: one wins, never both).
- **Stale or live.** A socket file left by a node that died is replaced; one that
  answers belongs to a running node, and starting is refused with one line naming
  the path and ``[peer.app] listen``. Anything else at the path (a file) is left
  alone and starting is refused.
- **Long paths.** ``sun_path`` holds 107 bytes. A longer path is reached as
  ``/proc/self/fd/<folder fd>/<name>`` (Linux); elsewhere it is refused.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import tempfile
from pathlib import Path

from ..errors import PeerError

__all__ = ["MAX_SUN_PATH", "SocketInUse", "UnixListener", "UnixPath", "bind_unix"]

MAX_SUN_PATH = 107  # bytes of a socket path, without the terminating NUL (Linux)
KEY = "[peer.app] listen"


class SocketInUse(PeerError):
    """Another running node serves the socket path (it answered a connection)."""


class UnixPath:
    """A socket path and the address that reaches it: the path itself, or through an
    open descriptor of its folder when the path is too long for ``sun_path``.

    Raises:
        PeerError: the folder does not exist, or the path is too long here.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        try:
            self.dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise PeerError(f"{KEY}: cannot open the folder of {path}: {exc.strerror}") from None
        self.address = str(path)
        if len(os.fsencode(self.address)) > MAX_SUN_PATH:
            self.address = f"/proc/self/fd/{self.dir_fd}/{self.name}"
            if not os.path.isdir("/proc/self/fd") or len(self.address) > MAX_SUN_PATH:
                self.close()
                raise PeerError(
                    f"{KEY}: the socket path {path} is over {MAX_SUN_PATH} bytes;"
                    " choose a shorter one"
                )

    def close(self) -> None:
        if self.dir_fd >= 0:
            os.close(self.dir_fd)
            self.dir_fd = -1

    def stat(self) -> os.stat_result | None:
        """The file at the path, not followed if a link; None if there is none."""
        try:
            return os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def answers(self) -> bool:
        """Whether a server accepts connections on the socket now."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(2.0)
        try:
            probe.connect(self.address)
        except (ConnectionRefusedError, FileNotFoundError):
            return False
        except OSError as exc:
            raise PeerError(f"{KEY}: cannot check {self.path}: {exc.strerror or exc}") from None
        finally:
            probe.close()
        return True


class UnixListener:
    """A bound, listening Unix socket; :meth:`close` removes its file if still ours."""

    def __init__(self, where: UnixPath, sock: socket.socket, identity: tuple[int, int]) -> None:
        self.where = where
        self.socket = sock
        self._identity = identity

    def close(self) -> None:
        """Close the socket and remove its file, unless another took the name since."""
        self.socket.close()
        found = self.where.stat()
        if found is not None and (found.st_dev, found.st_ino) == self._identity:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.where.name, dir_fd=self.where.dir_fd)
        self.where.close()


def bind_unix(path: Path, *, backlog: int = 128) -> UnixListener:
    """Bind and listen on ``path`` (see the module docstring).

    Raises:
        PeerError: another node serves the path, something else is in the way, or
            the folder is missing or not writable; the message names the path and
            ``[peer.app] listen``.
    """
    where = UnixPath(path)
    try:
        _clear(where)
        sock, identity = _bind_private(where, backlog)
    except BaseException:
        where.close()
        raise
    return UnixListener(where, sock, identity)


def _clear(where: UnixPath) -> None:
    """Remove a stale socket file at ``where``; refuse a live one or another file."""
    found = where.stat()
    if found is None:
        return
    if not stat.S_ISSOCK(found.st_mode):
        raise PeerError(f"{KEY}: {where.path} exists and is not a socket; not replacing it")
    if where.answers():
        raise SocketInUse(f"{KEY}: another node is serving {where.path}; not starting a second")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(where.name, dir_fd=where.dir_fd)


def _bind_private(where: UnixPath, backlog: int) -> tuple[socket.socket, tuple[int, int]]:
    """Bind in a private folder, make the file 0600, listen, link it to its name.

    It listens before it is linked: a node starting at the same moment that finds the
    name connects and sees a live node, never a stale file it would remove."""
    parent = str(where.path.parent)
    try:
        private = tempfile.mkdtemp(prefix=".setpeer-", dir=parent)
    except OSError as exc:
        raise PeerError(f"{KEY}: cannot create {where.path}: {exc.strerror}") from None
    temp_name = f"{os.path.basename(private)}/s"
    address = f"{parent}/{temp_name}"
    if len(os.fsencode(address)) > MAX_SUN_PATH:
        address = f"/proc/self/fd/{where.dir_fd}/{temp_name}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(address)
        os.chmod(temp_name, 0o600, dir_fd=where.dir_fd)
        sock.listen(backlog)
        try:
            os.link(temp_name, where.name, src_dir_fd=where.dir_fd, dst_dir_fd=where.dir_fd)
        except FileExistsError:
            raise SocketInUse(
                f"{KEY}: {where.path} was taken by another process while starting"
            ) from None
        found = os.stat(where.name, dir_fd=where.dir_fd, follow_symlinks=False)
    except OSError as exc:
        sock.close()
        raise PeerError(f"{KEY}: cannot bind {where.path}: {exc.strerror or exc}") from None
    except BaseException:
        sock.close()
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temp_name, dir_fd=where.dir_fd)
        with contextlib.suppress(OSError):
            os.rmdir(os.path.basename(private), dir_fd=where.dir_fd)
    return sock, (found.st_dev, found.st_ino)
