"""Two nodes on one PostgreSQL database serve the same partner; one dies.

Nodes ``x1`` and ``x2`` are separate processes sharing one store, one issuer and one
key; their partner ``p`` is a third node in this process. Each node has its own
session to ``p`` and sends the outbox rows it leased (docs/operations.md, "Several
nodes with PostgreSQL"). SETs are published through both, and both deliver; one is
killed with SIGKILL while SETs are being published and delivered; the other takes its
leased rows over within the lease time, and every SET whose ``publish`` returned
reaches ``p``'s application exactly once.

The nodes lease for ``lease_ttl`` = 3 s (the shortest allowed), not the default 10 s:
the takeover is timed against it, so a node that ignored the setting would fail the test.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import anyio
import psycopg
import pytest
from psycopg import sql

from peer import Peer
from peer.link.leases import TAKEOVER_POLL
from tests.peers import NodeFiles, write_config
from tests.store.conftest import postgres_base_url, with_schema
from tests.timing import MS, seconds

pytestmark = pytest.mark.slow

TOTAL = 5000
FIRST = 1000  # each node's first batch; the survivor publishes the rest
TTL = 3.0  # the x nodes' lease_ttl: a takeover waits for it

NODE = textwrap.dedent("""
    import sys, anyio
    from peer import Peer, load_config
    EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

    async def publish(node, count, tasks):
        async def one(n):
            for _ in range(n):
                print("jti", await node.publish("p", {EVENT: {}}), flush=True)
                await anyio.sleep(0.001)

        async with anyio.create_task_group() as publishers:
            for i in range(tasks):
                publishers.start_soon(one, count // tasks + (i < count % tasks))
        print("published", flush=True)

    async def main():
        async with Peer(load_config(sys.argv[1])) as node, anyio.create_task_group() as tg:
            print("ready", flush=True)
            while True:
                line = await anyio.to_thread.run_sync(sys.stdin.readline)
                if not line:
                    tg.cancel_scope.cancel()
                    return
                command, _, arg = line.strip().partition(" ")
                if command == "publish":  # publish COUNT TASKS
                    tg.start_soon(publish, node, *map(int, arg.split()))
                elif command == "acked":
                    print("acked", node.links["p"].counters.acked, flush=True)
                elif command == "owner":
                    print("owner", node.owner, flush=True)

    anyio.run(main)
""")


class Node:
    """One ``x`` node in its own process, driven line by line."""

    def __init__(self, config: Path) -> None:
        root = Path(__file__).resolve().parents[1]
        self.process = subprocess.Popen(
            [sys.executable, "-c", NODE, str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(root)},
        )
        self.jtis: list[str] = []
        self._partial = b""  # the start of a line not complete yet
        self.published = 0  # batches finished

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read_available(self, timeout: float = 0.0) -> list[str]:
        """Lines ready on stdout (waiting up to ``timeout`` for the first).

        Read from the pipe's descriptor, not the buffered file: a readline() may
        buffer lines that select() then no longer sees.
        """
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        lines = []
        while select.select([fd], [], [], timeout)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            lines.extend(line.decode().strip() for line in complete)
            timeout = 0.0
        for line in lines:
            if line.startswith("jti "):
                self.jtis.append(line[4:])
            elif line == "published":
                self.published += 1
        return lines

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.read_available(50 * MS):
                if line.startswith(prefix):
                    return line
        raise AssertionError(f"no {prefix!r} from the node within {timeout}s")

    def wait_published(self, batches: int, timeout: float) -> None:
        """Until ``batches`` publish commands finished (their line may have been read
        while waiting for another answer)."""
        deadline = time.monotonic() + timeout
        while self.published < batches:
            assert time.monotonic() < deadline, (
                f"{batches} batches not published in {timeout}s ({len(self.jtis)} SETs)"
            )
            self.read_available(50 * MS)

    def ask(self, command: str) -> str:
        self.send(command)
        return self.wait_for(command, seconds(10)).split(maxsplit=1)[1]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=seconds(30))
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def shared_store() -> str:
    """A fresh schema on the test PostgreSQL server, dropped afterwards."""
    base = postgres_base_url()
    schema = f"multinode_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield with_schema(base, schema)  # type: ignore[misc]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


async def test_takeover_after_sigkill_delivers_every_set_once(
    tmp_path: Path, shared_store: str
) -> None:
    # x: the identity both nodes share; p: their partner, a node in this process.
    x_files, p_files = NodeFiles("x", tmp_path), NodeFiles("p", tmp_path)
    x_files.make_keys()
    p_files.make_keys()
    limits = {"reconnect_initial": 0.05, "reconnect_max": 0.5, "ack_timeout": 2.0}
    received: list[str] = []
    async with Peer(write_config(p_files, x_files, limits=limits)) as p:
        endpoint = p.url.replace("http://", "ws://") + "/pushpull"
        config = write_config(
            x_files,
            p_files,
            endpoint=endpoint,
            store=shared_store,
            limits=limits | {"lease_ttl": TTL},
        )
        del config
        nodes = []
        for name in ("x1", "x2"):
            path = tmp_path / f"{name}.toml"
            # One config, two processes: each its own local interface socket.
            text = (tmp_path / "x.toml").read_text()
            path.write_text(text.replace('"unix:x.sock"', f'"unix:{name}.sock"'))
            nodes.append(Node(path))
        try:
            async with anyio.create_task_group() as tg:

                async def consume() -> None:
                    async for rx in p.receive():
                        received.append(rx.jti)
                        await rx.done()

                tg.start_soon(consume)
                for node in nodes:
                    await anyio.to_thread.run_sync(node.wait_for, "ready", seconds(30))
                for node in nodes:
                    node.send(f"publish {FIRST} 1")

                # Both nodes deliver: each leases rows for its own session to p.
                async def acked(node: Node) -> int:
                    return int(await anyio.to_thread.run_sync(node.ask, "acked"))

                with anyio.fail_after(30_000 * MS):
                    while not (await acked(nodes[0]) and await acked(nodes[1])):  # noqa: ASYNC110
                        await anyio.sleep(50 * MS)

                # Kill one mid-stream: publishing, and holding leases on rows in flight.
                victim, survivor = nodes
                owner = await anyio.to_thread.run_sync(survivor.ask, "owner")
                with anyio.fail_after(30_000 * MS):
                    while len(victim.jtis) < FIRST // 3:
                        await anyio.to_thread.run_sync(victim.read_available, 50 * MS)
                victim.process.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                await anyio.to_thread.run_sync(victim.process.wait)
                victim.read_available()  # every jti it printed: their publish returned
                assert len(victim.jtis) < FIRST, "killed before it finished publishing"

                # Takeover: no unfinished row is left leased by the dead node.
                def held_by_others() -> int:
                    with psycopg.connect(shared_store, autocommit=True) as conn:
                        row = conn.execute(
                            "SELECT count(*) FROM outbox o JOIN outbox_leases l USING (seq)"
                            " WHERE o.state = 0 AND l.owner <> %s",
                            (owner.encode(),),
                        ).fetchone()
                        assert row is not None
                        return int(row[0])

                with anyio.fail_after(30_000 * MS):
                    while await anyio.to_thread.run_sync(held_by_others):  # noqa: ASYNC110
                        await anyio.sleep(200 * MS)
                took_over = time.monotonic() - killed_at
                # Within the TTL and a look for expired leases, with a margin for the
                # shared machine (unscaled, the default 10 s TTL would not fit).
                assert took_over < TTL + TAKEOVER_POLL + seconds(3), took_over

                # The survivor publishes the rest, so both together published TOTAL; by
                # several tasks at once (its commits grouped): it is not killed, so its
                # SETs need not come one at a time.
                await anyio.to_thread.run_sync(survivor.wait_published, 1, seconds(60))
                rest = TOTAL - FIRST - len(victim.jtis)
                survivor.send(f"publish {rest} 8")
                await anyio.to_thread.run_sync(survivor.wait_published, 2, seconds(60))

                published = victim.jtis + survivor.jtis
                assert len(published) == TOTAL == len(set(published))
                with anyio.fail_after(60_000 * MS):
                    while not set(published) <= set(received):  # noqa: ASYNC110
                        await anyio.sleep(50 * MS)
                await anyio.sleep(500 * MS)  # a duplicate would show up now
                tg.cancel_scope.cancel()
            outbox = await anyio.to_thread.run_sync(stored_jtis, shared_store)
        finally:
            for node in nodes:
                node.stop()
    # Exactly once: no SET reached p's application twice, and none was lost.
    duplicates = sorted(j for j, n in Counter(received).items() if n > 1)
    assert not duplicates, duplicates
    assert set(published) <= set(received)
    # The victim may have been killed after a SET committed but before its publish
    # returned (and the jti was printed): that SET is in the outbox, so it is delivered
    # too. It publishes one SET at a time, so there is at most one such SET.
    extra = set(received) - set(published)
    assert extra <= outbox, extra - outbox
    assert len(extra) <= 1, extra
    assert p.stats()["x"]["received"] == len(received)


def stored_jtis(url: str) -> set[str]:
    """Every jti in the shared outbox."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT jti FROM outbox").fetchall()
    return {bytes(row[0]).decode() for row in rows}
