"""PostgreSQL stopped and started again under a running node.

Node ``a`` keeps its store in the test PostgreSQL server and exchanges SETs with
``b`` (SQLite). While the server is down ``/readyz`` answers 503, ``publish`` raises
a clear ``PeerError``, and SETs from ``b`` are not acknowledged (so ``b`` keeps
them); once it is back, delivery resumes by itself and nothing acked is lost.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import psycopg
import pytest
from psycopg import sql

from peer import Peer, PeerError
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.store.conftest import postgres_base_url, with_schema
from tests.timing import MS, seconds

pytestmark = pytest.mark.slow

LIMITS = {"reconnect_initial": 0.05, "reconnect_max": 0.5, "ack_timeout": 2.0}


@pytest.fixture
def store_url() -> Iterator[str]:
    base = postgres_base_url()
    if not os.environ.get("SETPEER_TEST_POSTGRES_DATA"):
        pytest.skip("no local test cluster (SETPEER_TEST_POSTGRES_DATA) to stop and start")
    schema = f"outage_{os.getpid()}_{time.monotonic_ns()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    yield with_schema(base, schema)
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


async def pg_ctl(*args: str) -> None:
    data = os.environ["SETPEER_TEST_POSTGRES_DATA"]
    bin_dir = os.environ.get("SETPEER_TEST_POSTGRES_BIN", "")
    user = os.environ.get("SETPEER_TEST_POSTGRES_USER", "")
    command = [os.path.join(bin_dir, "pg_ctl") if bin_dir else "pg_ctl", "-D", data, "-w"]
    runas = ["runuser", "-u", user, "--"] if user else []
    await anyio.run_process([*runas, *command, *args])


async def test_store_outage_then_recovery(tmp_path: Path, store_url: str) -> None:
    a_files, b_files = make_pair(tmp_path)
    received: dict[str, list[str]] = {"a": [], "b": []}
    async with Peer(write_config(b_files, a_files, limits=LIMITS)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        a_config = write_config(a_files, b_files, endpoint=endpoint, store=store_url, limits=LIMITS)
        async with Peer(a_config) as a, anyio.create_task_group() as tg, httpx.AsyncClient() as web:

            async def consume(node: Peer, me: str) -> None:
                async for rx in node.receive():
                    received[me].append(rx.jti)
                    await rx.done()

            tg.start_soon(consume, a, "a")
            tg.start_soon(consume, b, "b")
            sent_a = [await a.publish("b", {SESSION_REVOKED: {}}) for _ in range(50)]
            with anyio.fail_after(20_000 * MS):
                await a.flush(timeout=seconds(30))
            assert (await web.get(a.url + "/readyz")).status_code == 200

            await pg_ctl("-m", "fast", "stop")
            try:
                # b keeps publishing to a: a cannot store them, so it must not ack them.
                sent_b = [await b.publish("a", {SESSION_REVOKED: {}}) for _ in range(50)]
                ready = await web.get(a.url + "/readyz", timeout=seconds(10))
                assert ready.status_code == 503 and ready.json() == {"ready": False}
                assert (await web.get(a.url + "/healthz")).status_code == 200
                with pytest.raises(PeerError, match="(?i)unreachable|store"):
                    await a.publish("b", {SESSION_REVOKED: {}})
                await anyio.sleep(seconds(1))
                assert b.stats()["a"]["acked"] < 50  # nothing acked that a could not store
            finally:
                await pg_ctl(
                    "-l", f"{os.environ['SETPEER_TEST_POSTGRES_DATA']}/../server.log", "start"
                )

            # Back: delivery resumes by itself, both ways.
            with anyio.fail_after(30_000 * MS):
                while (await web.get(a.url + "/readyz")).status_code != 200:  # noqa: ASYNC110
                    await anyio.sleep(100 * MS)
                sent_a += [await a.publish("b", {SESSION_REVOKED: {}}) for _ in range(50)]
                await a.flush(timeout=seconds(30))
                await b.flush(timeout=seconds(30))
                while len(received["a"]) < len(sent_b) or len(received["b"]) < len(sent_a):  # noqa: ASYNC110
                    await anyio.sleep(50 * MS)
            tg.cancel_scope.cancel()
    assert sorted(received["b"]) == sorted(sent_a)
    assert sorted(received["a"]) == sorted(sent_b)  # exactly once
    assert b.failures() == [] and a.failures() == []
