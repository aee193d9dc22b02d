"""SQLite specifics: schema versions, crash safety, two processes on one file, wake-ups.

The processes here are real: a child that SIGKILLs itself right after ``enqueue``
returned, and a child playing ``setpeer send`` while this process watches.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import sqlite3
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from peer.errors import StoreError
from peer.protocol.effects import Acked, AcksSent, Effect, Failed, Sent
from peer.store import migrate, open_store, sqlite_path
from peer.store.base import SCHEMA_VERSION, Answer, InboundNew, OutboundNew, RefusalNew, Store
from peer.store.memory import MemoryStore
from peer.store.sqlite import SQLiteStore
from peer.store.sqlite_schema import STEPS
from peer.store.wake import wake_path
from tests.conftest import MS, seconds

RECOUNT = """
SELECT partner, SUM(state = 0 AND attempts = 0), SUM(state = 0 AND attempts > 0),
    SUM(state = 1), SUM(state = 2) FROM outbox GROUP BY partner
"""


def recount(db: Path) -> dict[str, tuple[int, ...]]:
    """Counts straight from the rows, to compare with the trigger-kept table."""
    conn = sqlite3.connect(db)
    try:
        counts = {p: (*row, 0, 0) for p, *row in conn.execute(RECOUNT)}
        for partner, received, unhandled in conn.execute(
            "SELECT partner, COUNT(*), SUM(done = 0) FROM inbox GROUP BY partner"
        ):
            counts[partner] = (*counts.get(partner, (0, 0, 0, 0))[:4], received, unhandled)
        kept = {
            p: tuple(row)
            for p, *row in conn.execute(
                "SELECT partner, pending, inflight, acked, failed, received, unhandled FROM counts"
            )
        }
        for partner, row in kept.items():  # a partner with refusals only
            counts.setdefault(partner, (0,) * len(row))
        assert kept == counts
        return {p: row[:5] for p, row in kept.items()}
    finally:
        conn.close()


async def run_child(script: str, *args: str) -> anyio.abc.Process:
    return await anyio.open_process(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdin=-1,
        stdout=-1,
        stderr=-1,
    )


async def read_line(process: anyio.abc.Process) -> str:
    assert process.stdout is not None
    data = b""
    while not data.endswith(b"\n"):
        chunk = await process.stdout.receive(1)
        data += chunk
    return data.decode().strip()


class TestSchema:
    """Versioned schema: created, migrated, and a newer one refused."""

    async def test_newer_schema_is_refused(self, tmp_path: Path) -> None:
        """`run`/`send` and `migrate` refuse a schema newer than they know."""
        assert await migrate("sqlite:///m.db", tmp_path) == SCHEMA_VERSION
        conn = sqlite3.connect(tmp_path / "m.db")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.close()
        with pytest.raises(StoreError, match="schema version"):
            await open_store("sqlite:///m.db", base_dir=tmp_path)
        with pytest.raises(StoreError, match="upgrade setpeer"):
            await migrate("sqlite:///m.db", tmp_path)

    async def test_version_1_file_migrates_with_counts(self, tmp_path: Path) -> None:
        """A file made by schema 1 gets its counts backfilled from its rows."""
        db = tmp_path / "v1.db"
        conn = sqlite3.connect(db)
        conn.executescript(STEPS[1] + "PRAGMA user_version = 1;")
        conn.executemany(
            "INSERT INTO outbox (partner, jti, token, state, attempts, created_at)"
            " VALUES (?, ?, 't', ?, ?, 0)",
            [("b", "1", 0, 0), ("b", "2", 0, 2), ("b", "3", 1, 1), ("c", "4", 2, 5)],
        )
        conn.execute(
            "INSERT INTO inbox (partner, iss, jti, token, claims, received_at)"
            " VALUES ('c', 'i', 'x', 't', '{}', 0)"
        )
        conn.commit()
        conn.close()
        assert await migrate(f"sqlite:///{db}") == SCHEMA_VERSION
        store = await open_store(f"sqlite:///{db}")
        try:
            stats = await store.stats()
            assert (stats["b"].pending, stats["b"].inflight, stats["b"].acked) == (1, 1, 1)
            assert (stats["c"].failed, stats["c"].received) == (1, 1)
            assert stats["b"].max_attempts == 2
            await store.enqueue([OutboundNew("b", "5", "t")])
        finally:
            await store.aclose()
        assert recount(db)["b"] == (2, 1, 1, 0, 0)

    def test_concurrent_first_opens_migrate_once(self, tmp_path: Path) -> None:
        """`run` and `send` creating a fresh file at once: both succeed, one schema.

        Fifty fresh files, four openers each: switching a new file to WAL is refused at
        once ("database is locked") to all but one, which failed ~6 % of such races
        before connect() retried it."""
        from peer.store.sqlite_schema import migrate_file

        for attempt in range(50):
            db = tmp_path / f"race{attempt}.db"
            results: list[Any] = []

            def go(db: Path = db, results: list[Any] = results) -> None:
                try:
                    results.append(migrate_file(db))
                except Exception as exc:  # reported below
                    results.append(exc)

            threads = [threading.Thread(target=go) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert results == [SCHEMA_VERSION] * 4

    async def test_not_a_database(self, tmp_path: Path) -> None:
        """A file that is not SQLite ends in StoreError, not sqlite3.DatabaseError."""
        (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
        with pytest.raises(StoreError):
            await open_store("sqlite:///junk.db", base_dir=tmp_path)
        (tmp_path / "dir.db").mkdir()
        with pytest.raises(StoreError):
            await open_store("sqlite:///dir.db", base_dir=tmp_path)

    async def test_wal_mode(self, tmp_path: Path) -> None:
        """The file is in WAL mode, so readers and a second process run beside the writer."""
        store = await open_store("sqlite:///p.db", base_dir=tmp_path)
        await store.aclose()
        conn = sqlite3.connect(tmp_path / "p.db")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


class TestUrls:
    """`store =` URLs (docs/configuration.md)."""

    def test_relative_and_absolute_paths(self, tmp_path: Path) -> None:
        """Three slashes: relative to the config folder; four: absolute."""
        assert sqlite_path("sqlite:///a/b.db", tmp_path) == tmp_path / "a" / "b.db"
        assert sqlite_path("sqlite:////abs/b.db", tmp_path) == Path("/abs/b.db")

    @pytest.mark.parametrize(
        "url", ["sqlite://b.db", "sqlite:///", "sqlite:///dir/", "redis://x", "", "postgres"]
    )
    async def test_bad_urls(self, url: str, tmp_path: Path) -> None:
        """Unknown schemes and path-less SQLite URLs are StoreError."""
        with pytest.raises(StoreError):
            await open_store(url, base_dir=tmp_path)
        with pytest.raises(StoreError):
            await migrate(url, tmp_path)


class TestCrashSafety:
    """What enqueue returned for survives SIGKILL right after."""

    def test_enqueue_survives_sigkill(self, tmp_path: Path) -> None:
        """A child enqueues (one group of 200, then one), accepts inbound, kills itself."""
        script = f"""
            import asyncio, os, signal
            from pathlib import Path
            from peer.store import open_store
            from peer.store.base import Answer, InboundNew, OutboundNew
            async def main():
                store = await open_store("sqlite:///k.db", base_dir=Path({str(tmp_path)!r}))
                await asyncio.gather(
                    *(store.enqueue([OutboundNew("b", f"g{{i}}", "t")]) for i in range(200))
                )
                await store.accept_inbound("b", [InboundNew("i", "in", "t", {{}})], [Answer("in")])
                await store.enqueue([OutboundNew("b", "last", "t")])
                os.kill(os.getpid(), signal.SIGKILL)
            asyncio.run(main())
        """
        import subprocess

        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True,
            timeout=seconds(60),
        )
        assert done.returncode == -signal.SIGKILL, done.stderr.decode()

        async def check() -> None:
            store = await open_store("sqlite:///k.db", base_dir=tmp_path)
            try:
                rows = await store.load_outbound("b", limit=1000)
                assert [r.jti for r in rows] == [f"g{i}" for i in range(200)] + ["last"]
                assert [r.jti for r in await store.fetch_inbox(after_seq=0, limit=5)] == ["in"]
                assert await store.acks_due("b") == [Answer("in")]
            finally:
                await store.aclose()

        anyio.run(check)
        recount(tmp_path / "k.db")


CHILD_SENDER = """
    import asyncio, sys, time
    from pathlib import Path
    from peer.store import open_store
    from peer.store.base import OutboundNew
    async def main():
        store = await open_store("sqlite:///" + sys.argv[1])
        print("ready", flush=True)
        for line in sys.stdin:
            await store.enqueue([OutboundNew(sys.argv[2], line.strip(), "t")])
            print(time.time(), flush=True)
        await store.aclose()
    asyncio.run(main())
"""


class TestWakeUps:
    """`setpeer send` in another process wakes the running node at once."""

    async def test_other_process_wakes_watcher(self, tmp_path: Path) -> None:
        """A child commits; our watch() yields its partner well under 100 ms."""
        db = tmp_path / "w.db"
        store = await open_store(f"sqlite:///{db}")
        child = await run_child(CHILD_SENDER, str(db), "b")
        woken: list[tuple[str | None, float]] = []
        latencies: list[float] = []
        try:

            async def watch() -> None:
                async for partner in store.watch():
                    woken.append((partner, time.time()))

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                assert await read_line(child) == "ready"
                while not os.path.exists(wake_path(db)):  # noqa: ASYNC110
                    await anyio.sleep(1 * MS)
                assert child.stdin is not None
                for i in range(5):
                    await child.stdin.send(f"j{i}\n".encode())
                    committed = float(await read_line(child))
                    with anyio.fail_after(2000 * MS):
                        while len(woken) <= i:  # noqa: ASYNC110
                            await anyio.sleep(0.2 * MS)
                    latencies.append(woken[i][1] - committed)
                tg.cancel_scope.cancel()
            rows = await store.load_outbound("b", limit=10)
        finally:
            if child.stdin is not None:
                await child.stdin.aclose()
            await child.wait()
            await store.aclose()
        print(f"wake latency after the other process's commit: {max(latencies) * 1e3:.2f} ms max")
        assert [p for p, _ in woken] == ["b"] * 5
        assert [r.jti for r in rows] == [f"j{i}" for i in range(5)]
        assert not os.path.exists(wake_path(db))  # cleaned up on the way out

    async def test_own_enqueues_do_not_wake(self, tmp_path: Path) -> None:
        """The node tells its Link itself; only the other store's write arrives."""
        db = tmp_path / "o.db"
        watcher = await open_store(f"sqlite:///{db}")
        other = await open_store(f"sqlite:///{db}")
        woken: list[str | None] = []
        try:

            async def watch() -> None:
                async for partner in watcher.watch():
                    woken.append(partner)

            async with anyio.create_task_group() as tg:
                tg.start_soon(watch)
                while not os.path.exists(wake_path(db)):  # noqa: ASYNC110
                    await anyio.sleep(1 * MS)
                await watcher.enqueue([OutboundNew("mine", "1", "t")])
                await other.enqueue([OutboundNew("theirs", "2", "t")])
                with anyio.fail_after(2000 * MS):
                    while not woken:  # noqa: ASYNC110
                        await anyio.sleep(1 * MS)
                tg.cancel_scope.cancel()
        finally:
            await other.aclose()
            await watcher.aclose()
        assert woken == ["theirs"]

    async def test_second_watcher_refused(self, tmp_path: Path) -> None:
        """Two nodes on one SQLite file is a misconfiguration: the second is refused."""
        db = tmp_path / "two.db"
        first, second = await open_store(f"sqlite:///{db}"), await open_store(f"sqlite:///{db}")
        try:
            async with anyio.create_task_group() as tg:

                async def watch() -> None:
                    async for _ in first.watch():
                        pass

                tg.start_soon(watch)
                while not os.path.exists(wake_path(db)):  # noqa: ASYNC110
                    await anyio.sleep(1 * MS)
                with pytest.raises(StoreError, match="another setpeer node"):
                    async for _ in second.watch():
                        pass
                tg.cancel_scope.cancel()
        finally:
            await first.aclose()
            await second.aclose()

    async def test_stale_socket_is_replaced(self, tmp_path: Path) -> None:
        """A socket file left by a killed node does not stop the next one."""
        db = tmp_path / "stale.db"
        dead = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        dead.bind(wake_path(db))
        dead.close()  # the file stays, as after SIGKILL
        store, other = await open_store(f"sqlite:///{db}"), await open_store(f"sqlite:///{db}")
        try:
            with anyio.fail_after(2000 * MS):
                watching = store.watch()
                task = asyncio.ensure_future(watching.__anext__())
                while not task.done():
                    await other.enqueue([OutboundNew("b", str(time.time()), "t")])
                    await anyio.sleep(5 * MS)
                assert task.result() == "b"
                await watching.aclose()  # type: ignore[attr-defined]
        finally:
            await other.aclose()
            await store.aclose()

    async def test_non_socket_file_is_left_alone(self, tmp_path: Path) -> None:
        """A regular file where the socket goes is never deleted: StoreError instead."""
        db = tmp_path / "f.db"
        Path(wake_path(db)).write_text("mine")
        store = await open_store(f"sqlite:///{db}")
        try:
            with pytest.raises(StoreError):
                async for _ in store.watch():
                    pass
        finally:
            await store.aclose()
        assert Path(wake_path(db)).read_text() == "mine"

    def test_long_paths_fall_back_to_the_temp_folder(self, tmp_path: Path) -> None:
        """Socket paths are limited to 107 bytes: long ones move to a hashed temp name."""
        assert wake_path(tmp_path / "a.db") == f"{(tmp_path / 'a.db').resolve()}.wake"
        deep = tmp_path / ("x" * 120) / "a.db"
        long = wake_path(deep)
        assert long.startswith(tempfile.gettempdir()) and len(long.encode()) <= 107
        assert long == wake_path(deep) != wake_path(tmp_path / ("y" * 120) / "a.db")


async def _enqueue_rate(db: Path, *, full_sync: bool) -> tuple[float, int]:
    store = await SQLiteStore.open(db, full_sync=full_sync)
    try:

        async def worker(n: int) -> None:
            for i in range(100):
                await store.enqueue([OutboundNew("b", f"{n}-{i}", "x" * 743)])

        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(100)))
        elapsed = time.perf_counter() - start
        assert (await store.stats())["b"].pending == 10_000
        return 10_000 / elapsed, store.commits
    finally:
        await store.aclose()


async def test_group_commit_throughput(tmp_path: Path) -> None:
    """10,000 publishes from 100 tasks: many SETs per commit, FULL and NORMAL measured."""
    for full_sync in (True, False):
        rate, commits = await _enqueue_rate(tmp_path / f"{full_sync}.db", full_sync=full_sync)
        mode = "FULL" if full_sync else "NORMAL"
        print(f"enqueue, synchronous={mode}: {rate:,.0f} rows/s, {commits} commits")
        assert commits <= 10_000 / 10
        assert rate > 500


# -- sqlite agrees with the memory store on random workloads -----------------------

PARTNERS = st.sampled_from(["a", "b"])
JTIS = st.sampled_from([str(i) for i in range(8)])
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("enqueue"), PARTNERS, st.lists(JTIS, max_size=3)),
        st.tuples(st.just("sent"), PARTNERS, JTIS, st.integers(1, 4), st.floats(0, 1e6)),
        st.tuples(st.just("acked"), PARTNERS, JTIS),
        st.tuples(st.just("failed"), PARTNERS, JTIS, st.sampled_from(["invalid_key", "x"])),
        st.tuples(st.just("paid"), PARTNERS, st.lists(JTIS, max_size=3)),
        st.tuples(
            st.just("inbound"),
            PARTNERS,
            st.lists(st.tuples(st.sampled_from(["i1", "i2"]), JTIS), max_size=3),
            st.lists(st.tuples(JTIS, st.booleans()), max_size=3),
        ),
        st.tuples(st.just("done"), st.lists(st.integers(1, 10), max_size=3)),
        st.tuples(st.just("refused"), PARTNERS, st.lists(JTIS, max_size=4), st.integers(1, 3)),
    ),
    max_size=25,
)


async def _run(store: Store, op: tuple[Any, ...]) -> object:
    kind = op[0]
    try:
        if kind == "enqueue":
            await store.enqueue([OutboundNew(op[1], j, f"t{j}") for j in op[2]])
            return None
        effects: list[Effect] = []
        if kind == "sent":
            effects = [Sent(op[2], op[3], op[4])]
        elif kind == "acked":
            effects = [Acked(op[2])]
        elif kind == "failed":
            effects = [Failed(op[2], op[3], "why")]
        elif kind == "paid":
            effects = [AcksSent(tuple(op[2]))]
        elif kind == "inbound":
            items = [InboundNew(iss, j, "t", {"jti": j}) for iss, j in op[2]]
            answers = [
                Answer(j, None if ok else "invalid_key", None if ok else "d") for j, ok in op[3]
            ]
            return await store.accept_inbound(op[1], items, answers)
        elif kind == "done":
            await store.mark_done(op[1])
            return None
        elif kind == "refused":
            refusals = [RefusalNew(op[1], j, "invalid_key", "d", 1.0) for j in op[2]]
            await store.record_refusals(refusals, op[3])
            return None
        await store.apply(op[1], effects)
        return None
    except StoreError as exc:
        return type(exc)


async def _observe(store: Store) -> object:
    return (
        [await store.load_outbound(p, limit=100) for p in ("a", "b")],
        [dataclasses.replace(f, at=0.0) for f in await store.failures()],  # clocks differ
        await store.refusals(),
        await store.stats(),
        [sorted(await store.acks_due(p), key=lambda a: a.jti) for p in ("a", "b")],
        await store.fetch_inbox(after_seq=0, limit=100),
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=OPS)
async def test_sqlite_agrees_with_memory(ops: list[tuple[Any, ...]]) -> None:
    """Any sequence of calls gives the same results, rows, seqs and counts on both."""
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "h.db"
        sqlite = await SQLiteStore.open(db, full_sync=False)
        memory = MemoryStore()
        try:
            for op in ops:
                assert await _run(sqlite, op) == await _run(memory, op), op
            assert await _observe(sqlite) == await _observe(memory)
        finally:
            await sqlite.aclose()
        recount(db)
