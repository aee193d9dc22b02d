"""Two nodes on one PostgreSQL database serve the same partner; one dies (issue 7).

Nodes ``x1`` and ``x2`` are separate processes sharing one store, one issuer and one
key; their partner ``p`` is a third node in this process. SETs are published through
both; the node holding ``p``'s lease is killed with SIGKILL while SETs are being
published and delivered; the other takes ``p`` over within the lease time, and every
SET whose ``publish`` returned reaches ``p``'s application exactly once.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import anyio
import psycopg
import pytest
from psycopg import sql

from peer import Peer
from peer.node import LEASE_TTL
from tests.peers import NodeFiles, write_config
from tests.store.conftest import postgres_base_url, with_schema

MS = 0.001 * float(os.environ.get("SETPEER_TEST_TIMEOUT_FACTOR", "1"))
TOTAL = 5000
FIRST = 1500  # each node's first batch; the survivor publishes the rest

NODE = textwrap.dedent("""
    import sys, anyio
    from peer import Peer, load_config
    EVENT = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"

    async def publish(node, count):
        for _ in range(count):
            print("jti", await node.publish("p", {EVENT: {}}), flush=True)
            await anyio.sleep(0.001)
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
                if command == "publish":
                    tg.start_soon(publish, node, int(arg))
                elif command == "leased":
                    print("leased", node.links["p"].leased, flush=True)

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
        self.published = 0  # batches finished

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def read_available(self, timeout: float = 0.0) -> list[str]:
        """Lines ready on stdout (waiting up to ``timeout`` for the first)."""
        assert self.process.stdout is not None
        lines = []
        while select.select([self.process.stdout], [], [], timeout)[0]:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
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
            for line in self.read_available(0.05):
                if line.startswith(prefix):
                    return line
        raise AssertionError(f"no {prefix!r} from the node within {timeout}s")

    def leased(self) -> bool:
        self.send("leased")
        return self.wait_for("leased", 10).split()[1] == "True"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
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
            x_files, p_files, endpoint=endpoint, store=shared_store, limits=limits
        )
        del config
        nodes = []
        for name in ("x1", "x2"):
            path = tmp_path / f"{name}.toml"
            path.write_text((tmp_path / "x.toml").read_text())
            nodes.append(Node(path))
        try:
            async with anyio.create_task_group() as tg:

                async def consume() -> None:
                    async for rx in p.receive():
                        received.append(rx.jti)
                        await rx.done()

                tg.start_soon(consume)
                for node in nodes:
                    await anyio.to_thread.run_sync(node.wait_for, "ready", 30)
                for node in nodes:
                    node.send(f"publish {FIRST}")

                # Kill the lease holder mid-stream: publishing and delivering.
                async def leased(node: Node) -> bool:
                    return await anyio.to_thread.run_sync(node.leased)

                with anyio.fail_after(30_000 * MS):
                    while not (await leased(nodes[0]) or await leased(nodes[1])):  # noqa: ASYNC110
                        await anyio.sleep(0.1)
                first_holds = await leased(nodes[0])
                holder, survivor = (nodes[0], nodes[1]) if first_holds else (nodes[1], nodes[0])
                with anyio.fail_after(30_000 * MS):
                    while len(holder.jtis) < FIRST // 3:
                        await anyio.to_thread.run_sync(holder.read_available, 0.05)
                holder.process.send_signal(signal.SIGKILL)
                killed_at = time.monotonic()
                await anyio.to_thread.run_sync(holder.process.wait)
                holder.read_available()  # every jti it printed: their publish returned
                assert len(holder.jtis) < FIRST, "killed before it finished publishing"

                # The survivor publishes the rest, so both together published TOTAL.
                await anyio.to_thread.run_sync(survivor.wait_for, "published", 60)
                rest = TOTAL - FIRST - len(holder.jtis)
                survivor.send(f"publish {rest}")
                with anyio.fail_after(30_000 * MS):
                    while not await leased(survivor):  # noqa: ASYNC110
                        await anyio.sleep(0.2)
                took_over = time.monotonic() - killed_at
                assert took_over < LEASE_TTL + 5, took_over
                await anyio.to_thread.run_sync(survivor.wait_for, "published", 60)

                published = holder.jtis + survivor.jtis
                assert len(published) == TOTAL == len(set(published))
                with anyio.fail_after(60_000 * MS):
                    while len(set(received)) < TOTAL:  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                await anyio.sleep(0.5)  # a duplicate would show up now
                tg.cancel_scope.cancel()
        finally:
            for node in nodes:
                node.stop()
    assert sorted(received) == sorted(published)  # exactly once, none lost
    assert p.stats()["x"]["received"] == TOTAL
