"""One partner floods a real node while another partner's SETs are timed.

Node ``b`` runs as ``setpeer run`` in a subprocess (its RSS and store files are
measured); partner ``a`` is the attacker (raw WebSocket or HTTP, a's real
credentials); partner ``c`` is a real in-process ``Peer`` that dials ``b`` and
publishes SETs, whose time to be acknowledged is the figure.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio

from peer import Peer
from tests.hostile.helpers import Attacker, process_rss
from tests.peers import SESSION_REVOKED, NodeFiles, make_pair, write_config
from tests.timing import MS, seconds

__all__ = ["Flooded", "deliver", "flooded_node", "sample_rss", "start_flood"]


@dataclass
class Flooded:
    """Node ``b`` (a process), the attacker ``a`` and the well-behaved partner ``c``."""

    process: subprocess.Popen[str]
    folder: Path
    attacker: Attacker
    c: Peer

    def rss(self) -> int:
        """Resident set size of node ``b``, bytes."""
        return process_rss(self.process.pid)

    def log_bytes(self) -> int:
        """Bytes ``b`` has logged so far."""
        return (self.folder / "b.log").stat().st_size

    def store_bytes(self) -> int:
        """Bytes of ``b``'s SQLite store, its WAL included."""
        return sum(p.stat().st_size for p in self.folder.glob("b.db*"))


@asynccontextmanager
async def flooded_node(
    folder: Path, limits: dict[str, float] | None = None
) -> AsyncIterator[Flooded]:
    """``b`` running with partners ``a`` and ``c``; ``c`` connected to it."""
    a_files, b_files = make_pair(folder)
    c_files = NodeFiles("c", folder)
    c_files.make_keys()
    # b.toml names both partners: c's block, then a's config with it appended.
    config_path = folder / "b.toml"
    write_config(b_files, c_files)
    text = config_path.read_text()
    c_block = text[text.index("[[partners]]") :]
    write_config(b_files, a_files, limits=limits)
    config_path.write_text(config_path.read_text() + "\n" + c_block)
    log_file = (folder / "b.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "peer", "run", "-c", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=log_file,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("setpeer listening on "), line
        url = line.split()[-1]
        endpoint = url.replace("http://", "ws://") + "/pushpull"
        async with Peer(write_config(c_files, b_files, endpoint=endpoint)) as c:
            with anyio.fail_after(seconds(10)):
                while c.stats()["b"]["session"] == "down":  # noqa: ASYNC110
                    await anyio.sleep(10 * MS)
            yield Flooded(process, folder, Attacker(url, a_files, b_files), c)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=seconds(30))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        log_file.close()


async def deliver(c: Peer, count: int = 1000, tag: str = "") -> float:
    """Seconds for ``c`` to publish ``count`` SETs to ``b`` and have every one acked."""
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        indexes = iter(range(count))

        async def produce() -> None:
            for i in indexes:
                await c.publish(
                    "b", {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": f"{tag}{i}"}
                )

        for _ in range(8):
            tg.start_soon(produce)
    await c.flush(timeout=seconds(120))
    elapsed = time.monotonic() - started
    stats = c.stats()["b"]
    assert stats["failed"] == 0 and stats["pending"] == 0 and stats["inflight"] == 0, stats
    return elapsed


def start_flood(
    node: Flooded, mode: str, duration: float, connections: int = 1
) -> subprocess.Popen[bytes]:
    """Partner ``a``'s flood ``mode`` (see tests/hostile/flooder.py) in its own process."""
    attacker = node.attacker
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.hostile.flooder",
            mode,
            attacker.ws,
            attacker.bearer,
            str(node.folder),
            str(duration),
            str(connections),
        ],
        stdout=subprocess.DEVNULL,
    )


async def sample_rss(node: Flooded, peak: list[int]) -> None:
    """Record ``b``'s peak RSS in ``peak[0]`` every 50 ms until cancelled."""
    while True:
        peak[0] = max(peak[0], node.rss())
        await anyio.sleep(50 * MS)
