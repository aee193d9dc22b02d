"""The wake-up socket of a store whose path is too long to sit beside the database.

It goes into ``<tmp>/setpeer-<uid>``, a folder of ours alone (0700), never at a name
another local user can bind first. Each test runs with its own temporary folder
(``tempfile.tempdir``), so the folder names are the real ones, only elsewhere.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from peer.errors import StoreError
from peer.store import open_store
from peer.store.base import OutboundNew, Store
from peer.store.wake import wake_path
from tests.store.test_sqlite import read_line, run_child
from tests.timing import MS

SQUATTER = """
    import socket, sys, time
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sys.argv[1])
    print("bound", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def tmp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A short temporary folder standing in for /tmp."""
    short = Path(tempfile.mkdtemp(prefix="w", dir="/tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(short))
    try:
        yield short
    finally:
        for root, dirs, files in os.walk(short, topdown=False):
            for name in files:
                os.unlink(os.path.join(root, name))
            for name in dirs:
                path = os.path.join(root, name)
                os.unlink(path) if os.path.islink(path) else os.rmdir(path)
        os.rmdir(short)


def long_db(tmp_path: Path) -> Path:
    db = tmp_path / ("x" * 120) / "a.db"
    db.parent.mkdir()
    return db


async def first_wake(watcher: Store, other: Store, check: str | None = None) -> str | None:
    """Start watching, enqueue from ``other`` until the watcher is woken; then
    check that the socket ``check`` is one in a folder of ours alone."""
    with anyio.fail_after(2000 * MS):
        watching = watcher.watch()
        task = asyncio.ensure_future(watching.__anext__())
        started = time.perf_counter()
        while not task.done():
            await other.enqueue([OutboundNew("b", str(time.time()), "t")])
            await anyio.sleep(5 * MS)
        print(f"first wake-up after {(time.perf_counter() - started) * 1e3:.1f} ms")
        woken = task.result()
        if check is not None:  # the generator still holds its socket
            st = os.lstat(os.path.dirname(check))
            assert stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid()
            assert stat.S_IMODE(st.st_mode) == 0o700
            assert stat.S_ISSOCK(os.lstat(check).st_mode)
        await watching.aclose()  # type: ignore[attr-defined]
        return woken


async def test_long_path_socket_sits_in_a_folder_of_ours(tmp_path: Path, tmp: Path) -> None:
    """The socket is inside a 0700 folder owned by us, and wakes still work."""
    db = long_db(tmp_path)
    path = wake_path(db)
    assert len(os.fsencode(path)) <= 107
    folder = Path(path).parent
    assert folder == tmp / f"setpeer-{os.geteuid()}"
    watcher, other = await open_store(f"sqlite:///{db}"), await open_store(f"sqlite:///{db}")
    try:
        assert await first_wake(watcher, other, check=path) == "b"
    finally:
        await other.aclose()
        await watcher.aclose()


def _squat(folder: Path, how: str) -> Path:
    """Make ``folder`` as another user could; return where its socket lives."""
    if how == "symlink":
        target = folder.parent / "elsewhere"
        target.mkdir(mode=0o700)
        folder.symlink_to(target)
        return target
    folder.mkdir()
    if how == "mode":
        os.chmod(folder, 0o777)
    else:  # owner
        os.chmod(folder, 0o700)
        try:
            os.chown(folder, 65534, 65534)
        except PermissionError:
            pytest.skip("giving a folder away needs root")
    return folder


@pytest.mark.parametrize("how", ["mode", "owner", "symlink"])
async def test_squatted_folder_is_never_used(tmp_path: Path, tmp: Path, how: str) -> None:
    """A folder not ours alone: the node refuses it with a StoreError naming it,
    and `send` (another store on the file) sends it no partner name."""
    db = long_db(tmp_path)
    folder = tmp / f"setpeer-{os.geteuid()}"
    real = _squat(folder, how)
    # The squatter listens at the name the node would use inside its folder.
    name = hashlib.sha256(os.fsencode(db.resolve())).hexdigest()[:24] + ".wake"
    trap = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    trap.bind(str(real / name))
    trap.settimeout(0.2)
    watcher, sender = await open_store(f"sqlite:///{db}"), await open_store(f"sqlite:///{db}")
    try:
        with pytest.raises(StoreError, match=str(folder)) as refused:
            with anyio.fail_after(2000 * MS):
                async for _ in watcher.watch():
                    pass
        print(f"refused: {refused.value}")
        await sender.enqueue([OutboundNew("secret-partner", "1", "t")])
        with pytest.raises(TimeoutError):
            trap.recv(1024)  # nothing arrives within 200 ms
    finally:
        trap.close()
        await sender.aclose()
        await watcher.aclose()


async def test_old_tmp_name_squatted_does_not_stop_the_node(tmp_path: Path, tmp: Path) -> None:
    """Another process bound the hashed name straight in /tmp (where it used to
    be): the node starts anyway, and wakes arrive."""
    db = long_db(tmp_path)
    digest = hashlib.sha256(os.fsencode(db.resolve())).hexdigest()[:24]
    old = str(tmp / f"setpeer-{digest}.wake")
    squatter = await run_child(SQUATTER, old)
    watcher, other = await open_store(f"sqlite:///{db}"), await open_store(f"sqlite:///{db}")
    try:
        assert await read_line(squatter) == "bound"
        assert await first_wake(watcher, other) == "b"
        assert os.path.dirname(wake_path(db)) == str(tmp / f"setpeer-{os.geteuid()}")
    finally:
        await other.aclose()
        await watcher.aclose()
        assert squatter.stdin is not None
        await squatter.stdin.aclose()
        await squatter.wait()
