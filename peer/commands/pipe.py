"""Write a line and know it was read: for commands that mark what they print done.

A write to a pipe succeeds as soon as the kernel buffers it, whether or not the reader
ever reads it: ``setpeer receive | head -n 5`` could hand ``head`` a sixth line that
``head`` never prints, and marking it done would lose it. So after each line written
to a pipe we wait until the pipe is empty (``FIONREAD`` is 0: the reader took it) or
the reader has closed its end (``POLLERR`` on ours). A reader takes one line at a time
this way, so it cannot swallow a line it does not print. Files and terminals keep
what is written: no wait.
"""

from __future__ import annotations

import fcntl
import os
import select
import stat
import struct
import termios
from typing import BinaryIO

__all__ = ["ReaderGone", "write_and_wait"]

POLL_MS = 5  # how often an unread pipe is looked at again


class ReaderGone(Exception):
    """The reader of standard output went away: what was last written was not read."""


def write_and_wait(out: BinaryIO, data: bytes) -> None:
    """Write ``data`` and flush; on a pipe, return only once the reader has read it.

    Raises:
        ReaderGone: the reader closed its end first (the line may be unread).
    """
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:
        raise ReaderGone from None
    fd = out.fileno()
    if not stat.S_ISFIFO(os.fstat(fd).st_mode):
        return
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are reported whatever is asked
    while _unread(fd):
        # The reader may take the line and close at once (``head``): gone only if
        # the line is still there once it has closed.
        if poller.poll(POLL_MS) and _unread(fd):
            raise ReaderGone


def _unread(fd: int) -> int:
    """Bytes written to the pipe ``fd`` and not yet read (Linux: either end)."""
    answer = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int(struct.unpack("i", answer)[0])
