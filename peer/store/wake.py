"""Wake-ups across processes: a Unix datagram socket beside the database.

``setpeer send`` is a separate process that commits into the same SQLite file
while ``setpeer run`` runs. After its commit it sends one datagram per partner to
``<db>.wake``; the node listens there and wakes that partner's Link at once
(well under a millisecond), instead of polling the file.

A datagram is only a hint: the outbox row is already committed, and a node that
was not listening loads the outbox when it starts. So every send error is ignored.

Edge cases chosen:

- Unix socket paths are limited to 107 bytes. A longer ``<db>.wake`` falls back to
  a name made from a hash of the database path, inside ``<tmp>/setpeer-<uid>``: a
  folder of ours with mode 0700, so no other local user can bind the name first or
  receive the partner names we send. Before binding or sending there, both
  processes check the folder with ``lstat`` (a real folder, not a symlink, owned by
  us, mode 0700); one that fails the check is never used: the node refuses to start
  with a :class:`~peer.errors.StoreError` naming it, ``send`` sends nothing. Both
  processes need the same temporary folder (systemd's ``PrivateTmp`` or a different
  ``TMPDIR`` breaks this, the path beside the database does not).
  ``$XDG_RUNTIME_DIR`` is not used: ``send`` from cron or a service would not see
  the ``run`` of a login shell.
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

__all__ = ["WakeSender", "listen", "private_dir", "wake_path"]

_SUN_PATH_MAX = 107  # sockaddr_un.sun_path is 108 bytes on Linux, NUL included
_MAX_DATAGRAM = 1024  # a partner name longer than this wakes every Link instead


def wake_path(db: Path) -> str:
    """The socket a node running on ``db`` listens on.

    Args:
        db: the database file (need not exist yet).

    Returns:
        ``<db>.wake`` when it fits in a socket address, else a path in
        :func:`private_dir` named by a hash of the resolved database path.
    """
    resolved = db.resolve()
    beside = f"{resolved}.wake"
    if len(os.fsencode(beside)) <= _SUN_PATH_MAX:
        return beside
    digest = hashlib.sha256(os.fsencode(resolved)).hexdigest()[:24]
    return os.path.join(private_dir(), f"{digest}.wake")


def private_dir() -> str:
    """The folder of our own for wake-up sockets that do not fit beside the database."""
    return os.path.join(tempfile.gettempdir(), f"setpeer-{os.geteuid()}")


def _unsafe(folder: str) -> str | None:
    """Why ``folder`` may not hold our socket (None: it may): checked with lstat,
    so a symlink is refused, never followed."""
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return "it does not exist"
    except OSError as exc:
        return f"cannot inspect it: {exc.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return "it is a symlink" if stat.S_ISLNK(st.st_mode) else "it is not a folder"
    if st.st_uid != os.geteuid():
        return f"it belongs to uid {st.st_uid}, not to us (uid {os.geteuid()})"
    if stat.S_IMODE(st.st_mode) != 0o700:
        return f"its mode is {stat.S_IMODE(st.st_mode):04o}, not 0700"
    return None


def _make_private(folder: str) -> None:
    """Create ``folder`` 0700 if absent; refuse one that is not ours alone."""
    try:
        os.mkdir(folder, 0o700)  # the umask may only narrow it: checked below
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create the wake-up folder {folder}: {exc.strerror}") from None
    reason = _unsafe(folder)
    if reason is not None:
        raise StoreError(
            f"refusing the wake-up folder {folder}: {reason}; remove it, or use a store "
            f"path short enough for the socket to sit beside the database"
        )


class WakeSender:
    """Sends wake-ups after commits; used from the store's writer thread.

    Args:
        path: the socket path (:func:`wake_path`).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._sock: socket.socket | None = None
        # A socket outside the database's folder is only used once its folder
        # checks out; checked until it does (the node may create it later).
        self._checked = os.path.dirname(path) != private_dir()

    def send(self, partners: Iterable[str]) -> None:
        """One datagram per partner; never raises (nobody may be listening)."""
        if not self._checked:
            if _unsafe(private_dir()) is not None:
                return  # absent, or not ours alone: partner names never go there
            self._checked = True
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
        StoreError: another node listens on ``path``, the socket cannot be made, or
            its folder is :func:`private_dir` and not ours alone.
    """
    if os.path.dirname(path) == private_dir():
        _make_private(private_dir())
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
