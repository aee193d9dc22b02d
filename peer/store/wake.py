"""Wake-ups across processes: a Unix datagram socket beside the database.

``setpeer send`` is a separate process that commits into the same SQLite file
while ``setpeer run`` runs. After its commit it sends one datagram per partner to
``<db>.wake``; the node listens there and wakes that partner's Link at once
(well under a millisecond), instead of polling the file.

A datagram is only a hint: the outbox row is already committed, and a node that
was not listening loads the outbox when it starts. So every send error is ignored.

Edge cases chosen:

- Unix socket paths are limited to 107 bytes. A longer ``<db>.wake`` falls back to
  a name in the temporary folder made from a hash of the database path; both
  processes then need the same temporary folder (systemd's ``PrivateTmp`` breaks
  this, the path beside the database does not).
- Anyone who may write into the database's folder may also send a wake-up. That
  costs the node one outbox query, nothing more.
- Only one node may listen per database: a second one is refused
  (:class:`~peer.errors.StoreError`); a socket left by a killed node is replaced.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import stat
import tempfile
from collections.abc import AsyncGenerator, Iterable
from pathlib import Path

import anyio.abc

from ..errors import StoreError

__all__ = ["WakeSender", "listen", "wake_path"]

_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes on Linux, NUL included
_MAX_DATAGRAM = 1024  # a partner name longer than this wakes every Link instead


def wake_path(db: Path) -> str:
    """The socket a node running on ``db`` listens on.

    Args:
        db: the database file (need not exist yet).

    Returns:
        ``<db>.wake`` when it fits in a socket address, else a path in the
        temporary folder named by a hash of the resolved database path.
    """
    resolved = db.resolve()
    beside = f"{resolved}.wake"
    if len(os.fsencode(beside)) <= _SUN_PATH_MAX:
        return beside
    digest = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:24]
    return os.path.join(tempfile.gettempdir(), f"setpeer-{digest}.wake")


class WakeSender:
    """Sends wake-ups after commits; used from the store's writer thread.

    Args:
        path: the socket path (:func:`wake_path`).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None

    def send(self, partners: Iterable[str]) -> None:
        """One datagram per partner; never raises (nobody may be listening)."""
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                # Non-blocking: a node that does not read must not stall our commits.
                self._sock.setblocking(False)
            for partner in partners:
                data = partner.encode()
                self._sock.sendto(data if len(data) <= _MAX_DATAGRAM else b"", self.path)
        except OSError:
            pass  # no listener, a stale socket, or a full queue: the hint is dropped

    def close(self) -> None:
        """Release the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _claim(path: str) -> None:
    """Remove a socket left by a dead node; refuse if a live node listens there."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        probe.connect(path)
    except FileNotFoundError:
        return
    except ConnectionRefusedError:
        try:
            if not stat.S_ISSOCK(os.lstat(path).st_mode):
                raise StoreError(f"{path} exists and is not a wake-up socket") from None
            # Bound by a process that is gone (SIGKILL leaves the file behind).
            os.unlink(path)
        except FileNotFoundError:
            pass
        return
    except OSError as exc:
        raise StoreError(f"cannot use wake-up socket {path}: {exc.strerror}") from None
    finally:
        probe.close()
    raise StoreError(f"another setpeer node already runs on this store ({path} is live)")


async def listen(path: str) -> AsyncGenerator[str | None, None]:
    """Yield the partner named by each wake-up datagram (None: every partner).

    Runs until cancelled; the socket file is removed on the way out.

    Raises:
        StoreError: another node listens on ``path``, or the socket cannot be made.
    """
    _claim(path)
    # Bound here, synchronously, rather than with anyio.create_unix_datagram_socket:
    # that binds in a worker thread and then checkpoints, so a cancellation arriving
    # after the bind leaked the socket (the file already existed, the socket had no owner).
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        raw.setblocking(False)
        raw.bind(path)
    except OSError as exc:
        raw.close()
        if exc.errno == errno.EADDRINUSE:
            raise StoreError(f"another setpeer node already runs on this store ({path})") from None
        raise StoreError(f"cannot listen on wake-up socket {path}: {exc.strerror}") from None
    try:
        # Takes ownership without suspending; its aclose() closes the socket at once.
        sock = await anyio.abc.UNIXDatagramSocket.from_socket(raw)
    except BaseException:
        raw.close()
        os.unlink(path)
        raise
    try:
        async with sock:
            while True:
                data, _ = await sock.receive()
                yield data.decode(errors="replace") or None
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
