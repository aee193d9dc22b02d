"""A real ``setpeer run`` serving its local interface: Client receive and done across
a SIGKILL and a restart (its stale socket replaced), a second node on the same socket
refused with one line, the socket file removed at a graceful stop."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from peer import Client, Peer
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.test_crash import start_run, stop
from tests.timing import seconds

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.2, "retry_initial": 0.05}


@pytest.mark.slow
async def test_receive_done_across_a_restart(tmp_path: Path) -> None:
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files, limits=FAST)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        write_config(a_files, b_files, endpoint=endpoint, limits=FAST)
        socket_path = tmp_path / "a.sock"
        t0 = time.monotonic()
        run = start_run(tmp_path / "a.toml")
        print(f"restart test: setpeer run up in {time.monotonic() - t0:.2f} s")
        try:
            assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o600
            # A second node on the same config: refused, one line naming path and key.
            second = subprocess.run(
                [sys.executable, "-m", "peer", "run", "-c", str(tmp_path / "a.toml")],
                capture_output=True,
                text=True,
                timeout=seconds(30),
            )
            assert second.returncode == 1
            [line] = [x for x in second.stderr.splitlines() if x.startswith("setpeer run:")]
            assert "[peer.app] listen" in line and str(socket_path) in line
            sent = [await b.publish("a", {SESSION_REVOKED: {}}) for _ in range(6)]
            done: list[str] = []
            async with Client(f"unix:{socket_path}") as node:
                with anyio.fail_after(seconds(20)):
                    async for rx in node.receive():
                        if len(done) < 3:
                            await rx.done()
                            done.append(rx.jti)
                        if rx.jti == sent[-1]:
                            break  # all six seen; three done
            print(f"restart test: six received, three done at {time.monotonic() - t0:.2f} s")
            assert stop(run, signal.SIGKILL) == -signal.SIGKILL
            assert stat.S_ISSOCK(os.stat(socket_path).st_mode)  # stale, left behind
        finally:
            if run.poll() is None:
                await anyio.to_thread.run_sync(stop, run)
        run = start_run(tmp_path / "a.toml")  # replaces the stale socket
        try:
            async with Client(f"unix:{socket_path}") as node:
                again: list[str] = []
                with anyio.fail_after(seconds(20)):
                    async for rx in node.receive():
                        again.append(rx.jti)
                        await rx.done()
                        if len(again) == 3:
                            break
            assert sorted(again + done) == sorted(sent)  # nothing lost, none twice
            assert not set(again) & set(done)
            print(
                f"restart test: the other three after the restart at {time.monotonic() - t0:.2f} s"
            )
        finally:
            t1 = time.monotonic()
            # In a thread: b (this event loop) answers a's close meanwhile.
            assert await anyio.to_thread.run_sync(stop, run) == 0
            print(f"restart test: graceful stop in {time.monotonic() - t1:.2f} s")
        assert not socket_path.exists()  # removed at a graceful stop
