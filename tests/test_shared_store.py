"""Several nodes in one process on one PostgreSQL schema (docs/operations.md).

Nodes ``a1`` and ``a2`` share the identity ``a`` and one database; ``b`` (SQLite) is
their partner. A node that can send to the partner leases what it publishes in the
same transaction and sends it without reading it back; a node with no way out
leaves its SETs unleased, and a node that has one sends them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import psycopg
import pytest

from peer import Peer
from peer.config import AppConfig
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.store.conftest import _pg_schemas, pg_schema_url  # noqa: F401 (fixtures)
from tests.timing import MS, seconds

LIMITS = {"reconnect_initial": 0.05, "reconnect_max": 0.5, "ack_timeout": 2.0}


@pytest.fixture
def store_url(request: pytest.FixtureRequest) -> str:
    """A fresh schema on the test server (tests/store/conftest.py's fixture)."""
    return str(request.getfixturevalue("pg_schema_url"))


@contextlib.contextmanager
def socketless_port() -> Iterator[int]:
    """A loopback port bound but never listening: dials to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def lease_owners(url: str, jtis: list[str]) -> dict[str, str | None]:
    """jti -> the owner of its row lease (None: unleased), read as an operator would."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT o.jti, l.owner FROM outbox o LEFT JOIN outbox_leases l USING (seq)"
            " WHERE o.jti = ANY(%s)",
            ([j.encode() for j in jtis],),
        ).fetchall()
    return {bytes(j).decode(): None if o is None else bytes(o).decode() for j, o in rows}


async def consume(node: Peer, into: list[str]) -> None:
    async for rx in node.receive():
        into.append(rx.jti)
        await rx.done()


async def wait_for_session(node: Peer) -> None:
    with anyio.fail_after(10_000 * MS):
        while node.stats()["b"]["session"] == "down":  # noqa: ASYNC110
            await anyio.sleep(10 * MS)


async def test_each_node_sends_what_it_publishes(tmp_path: Path, store_url: str) -> None:
    a_files, b_files = make_pair(tmp_path)
    received: list[str] = []
    async with Peer(write_config(b_files, a_files, limits=LIMITS)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        config = write_config(a_files, b_files, endpoint=endpoint, store=store_url, limits=LIMITS)
        # Two nodes of one config on one host: each its own local interface socket.
        other = dataclasses.replace(config, app=AppConfig(listen="unix:a2.sock"))
        async with Peer(config) as a1, Peer(other) as a2, anyio.create_task_group() as tg:
            tg.start_soon(consume, b, received)
            await wait_for_session(a1)
            await wait_for_session(a2)
            published: dict[str, list[str]] = {"a1": [], "a2": []}

            async def publish(node: Peer, name: str) -> None:
                for _ in range(100):
                    jti = await node.publish("b", {SESSION_REVOKED: {}})
                    published[name].append(jti)

            async with anyio.create_task_group() as publishers:
                for _ in range(4):
                    publishers.start_soon(publish, a1, "a1")
                    publishers.start_soon(publish, a2, "a2")
            with anyio.fail_after(30_000 * MS):
                await a1.flush(timeout=seconds(30))
                await a2.flush(timeout=seconds(30))
                while len(received) < 800:  # noqa: ASYNC110
                    await anyio.sleep(20 * MS)
            # Leases of acked rows linger until the next renewal; while they do, each
            # row is leased to the node that published it, never to the other.
            for node, name in ((a1, "a1"), (a2, "a2")):
                owners = lease_owners(store_url, published[name])
                assert set(owners.values()) <= {node.owner, None}
            # Each node delivered exactly its own SETs: none went through the other.
            assert a1.stats()["b"]["acked"] == 400
            assert a2.stats()["b"]["acked"] == 400
            tg.cancel_scope.cancel()
    assert sorted(received) == sorted(published["a1"] + published["a2"])  # exactly once


async def test_a_node_without_a_session_leaves_its_sets_to_one_with(
    tmp_path: Path, store_url: str
) -> None:
    """a2 dials an endpoint nobody answers: what it publishes is not leased to it
    (it could not send it), and a1, which has a session, sends it."""
    a_files, b_files = make_pair(tmp_path)
    received: list[str] = []
    async with Peer(write_config(b_files, a_files, limits=LIMITS)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        good = write_config(a_files, b_files, endpoint=endpoint, store=store_url, limits=LIMITS)
        with socketless_port() as port:
            dead = f"ws://127.0.0.1:{port}/pushpull"
            bad = write_config(
                a_files, b_files, endpoint=dead, store=store_url, limits=LIMITS, app="unix:a2.sock"
            )
            async with Peer(good) as a1, Peer(bad) as a2, anyio.create_task_group() as tg:
                tg.start_soon(consume, b, received)
                await wait_for_session(a1)
                assert a2.stats()["b"]["session"] == "down"
                sent = [await a2.publish("b", {SESSION_REVOKED: {}}) for _ in range(30)]
                with anyio.fail_after(15_000 * MS):
                    while len(received) < 30:  # noqa: ASYNC110
                        await anyio.sleep(20 * MS)
                assert set(lease_owners(store_url, sent).values()) <= {a1.owner, None}
                assert a1.stats()["b"]["acked"] == 30
                assert a2.stats()["b"]["acked"] == 0
                tg.cancel_scope.cancel()
    assert sorted(received) == sorted(sent)
