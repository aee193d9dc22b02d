"""PostgreSQL specifics: two nodes on one database, NOTIFY, schema versions, outages.

Two ``PostgresStore`` instances opened on the same schema play two setpeer nodes
(docs/operations.md, "Several nodes with PostgreSQL"). The outage test stops the
real test server with ``pg_ctl stop -m fast`` and starts it again; it needs the
cluster that ``scripts/_postgres.sh`` made (``SETPEER_TEST_POSTGRES_DATA``).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import anyio
import psycopg
import pytest

from peer.errors import StoreError
from peer.protocol.effects import Acked, Failed, Sent
from peer.store import migrate, open_store
from peer.store.base import (
    SCHEMA_VERSION,
    DuplicateJti,
    InboundNew,
    InvalidValue,
    OutboundNew,
    SharedStore,
    Store,
    shared_store,
)
from peer.store.postgres import PostgresStore
from peer.store.postgres_schema import STEPS
from tests.conftest import MS, seconds

from .conftest import postgres_base_url, with_schema


@pytest.fixture
async def url(pg_schema_url: str) -> str:
    return pg_schema_url


@pytest.fixture
async def nodes(url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one schema: two setpeer nodes sharing a database."""
    first = await open_store(url)
    second = await open_store(url)
    try:
        yield first, second
    finally:
        await first.aclose()
        await second.aclose()


def sql(url: str, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one statement straight on the database (as an operator would)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, args or None)
        return cur.fetchall() if cur.description else []


async def next_wake(watch: AsyncIterator[str | None], seconds: float = 5.0) -> str | None:
    with anyio.fail_after(seconds * 1000 * MS):
        return await anext(watch)


def shared(store: Store) -> SharedStore:
    found = shared_store(store)
    assert found is not None
    return found


async def enqueue_n(store: Store, n: int, partner: str = "b", prefix: str = "j") -> list[str]:
    jtis = [f"{prefix}{i}" for i in range(n)]
    await store.enqueue([OutboundNew(partner, jti, f"token-{jti}") for jti in jtis])
    return jtis


class TestRowLeases:
    """Outbox rows leased with FOR UPDATE SKIP LOCKED; a dead node's leases expire
    and are taken over (docs/operations.md)."""

    async def test_two_nodes_leasing_at_once_never_share_a_row(
        self, nodes: tuple[Store, Store]
    ) -> None:
        a, b = (shared(n) for n in nodes)
        jtis = await enqueue_n(a, 600)
        got_a: list[str] = []
        got_b: list[str] = []

        async def take(store: SharedStore, owner: str, into: list[str]) -> None:
            while rows := await store.lease_outbound("b", owner, limit=10, ttl=30.0):
                into.extend(row.jti for row in rows)

        # Both with a connection open already: otherwise A may lease all 600 rows
        # while B is still connecting, and "both made progress" says nothing.
        await a.stats()
        await b.stats()

        async with anyio.create_task_group() as tg:
            tg.start_soon(take, a, "node-a", got_a)
            tg.start_soon(take, b, "node-b", got_b)
        assert not set(got_a) & set(got_b)
        assert sorted(got_a + got_b) == sorted(jtis)
        assert got_a and got_b  # both made progress: skipped, never waited

    async def test_rows_come_oldest_first_and_once_per_owner(
        self, nodes: tuple[Store, Store]
    ) -> None:
        a, _ = (shared(n) for n in nodes)
        jtis = await enqueue_n(a, 10)
        first = await a.lease_outbound("b", "node-a", limit=4, ttl=30.0)
        assert [r.jti for r in first] == jtis[:4]
        assert [r.token for r in first] == [f"token-{j}" for j in jtis[:4]]
        rest = await a.lease_outbound("b", "node-a", limit=100, ttl=30.0)
        assert [r.jti for r in rest] == jtis[4:]
        assert await a.lease_outbound("b", "node-a", limit=100, ttl=30.0) == []
        assert await a.lease_outbound("other", "node-a", limit=100, ttl=30.0) == []

    async def test_finished_rows_are_never_leased(self, nodes: tuple[Store, Store]) -> None:
        a, b = (shared(n) for n in nodes)
        await enqueue_n(a, 3)
        await a.apply("b", [Acked("j0"), Failed("j1", "invalid_key", "no")])
        rows = await b.lease_outbound("b", "node-b", limit=10, ttl=30.0)
        assert [r.jti for r in rows] == ["j2"]

    async def test_expired_leases_are_taken_over(self, nodes: tuple[Store, Store]) -> None:
        """Node A dies holding rows: once its leases expire, node B takes them."""
        a, b = (shared(n) for n in nodes)
        jtis = await enqueue_n(a, 5)
        ttl = 300 * MS
        assert len(await a.lease_outbound("b", "node-a", limit=5, ttl=ttl)) == 5
        assert await b.lease_outbound("b", "node-b", limit=5, ttl=30.0) == []
        await asyncio.sleep(ttl * 1.5)
        taken = await b.lease_outbound("b", "node-b", limit=5, ttl=30.0)
        assert [r.jti for r in taken] == jtis

    async def test_renewal_keeps_rows_and_release_frees_them(
        self, nodes: tuple[Store, Store]
    ) -> None:
        a, b = (shared(n) for n in nodes)
        await enqueue_n(a, 4)
        ttl = 400 * MS
        await a.lease_outbound("b", "node-a", limit=4, ttl=ttl)
        await a.apply("b", [Acked("j3")])  # finished rows are no longer counted
        for _ in range(3):
            await asyncio.sleep(ttl / 2)
            assert await a.renew_outbound("b", "node-a", ttl) == 3
        assert await b.lease_outbound("b", "node-b", limit=4, ttl=30.0) == []
        assert await b.renew_outbound("b", "node-b", 30.0) == 0
        await a.release_outbound("b", "node-a")
        assert [r.jti for r in await b.lease_outbound("b", "node-b", limit=4, ttl=30.0)] == [
            "j0",
            "j1",
            "j2",
        ]
        await a.release_outbound("b", "node-a")  # B's leases are not A's to release
        assert await b.renew_outbound("b", "node-b", 30.0) == 3

    async def test_enqueue_leased_rows_are_the_publishers_from_the_commit(
        self, nodes: tuple[Store, Store], url: str
    ) -> None:
        """A node sends what it publishes: the lease is in the enqueue's transaction,
        so no other node can lease the row in between, and no NOTIFY wakes them."""
        a, b = (shared(n) for n in nodes)
        watch = aiter(b.watch())
        try:
            task = asyncio.ensure_future(next_wake(watch))  # LISTEN is issued here
            await asyncio.sleep(50 * MS)
            await a.enqueue_leased(
                [OutboundNew("b", f"own{i}", f"t{i}") for i in range(3)], "node-a", 30.0
            )
            owners = sql(
                url,
                "SELECT o.jti, l.owner FROM outbox o JOIN outbox_leases l USING (seq)"
                " ORDER BY o.seq",
            )
            assert [(bytes(j).decode(), bytes(o).decode()) for j, o in owners] == [
                ("own0", "node-a"),
                ("own1", "node-a"),
                ("own2", "node-a"),
            ]
            assert await b.lease_outbound("b", "node-b", limit=10, ttl=30.0) == []
            assert await a.lease_outbound("b", "node-a", limit=10, ttl=30.0) == []  # held
            await a.enqueue([OutboundNew("c", "free", "t")])  # unleased: any node may send it
            assert await task == "c"  # the leased enqueue woke nobody
            rows = await b.lease_outbound("c", "node-b", limit=10, ttl=30.0)
            assert [r.jti for r in rows] == ["free"]
        finally:
            await watch.aclose()  # type: ignore[attr-defined]

    async def test_enqueue_leased_in_a_group_with_plain_enqueues(
        self, nodes: tuple[Store, Store], url: str
    ) -> None:
        """Leased and unleased enqueues of one turn share a transaction; each row gets
        its own lease (or none), and a duplicate jti fails alone, leaving no lease."""
        a, _ = (shared(n) for n in nodes)
        await a.enqueue([OutboundNew("b", "dup", "t")])
        results = await asyncio.gather(
            a.enqueue_leased([OutboundNew("b", "x1", "t")], "node-a", 30.0),
            a.enqueue([OutboundNew("b", "y1", "t")]),
            a.enqueue_leased([OutboundNew("b", "x2", "t")], "node-x", 30.0),
            a.enqueue_leased([OutboundNew("b", "dup", "t")], "node-a", 30.0),
            return_exceptions=True,
        )
        assert results[:3] == [None, None, None]
        assert isinstance(results[3], DuplicateJti)
        leased = sql(
            url,
            "SELECT o.jti, l.owner FROM outbox o JOIN outbox_leases l USING (seq) ORDER BY o.jti",
        )
        assert [(bytes(j).decode(), bytes(o).decode()) for j, o in leased] == [
            ("x1", "node-a"),
            ("x2", "node-x"),
        ]

    async def test_renewal_by_jti_lets_the_others_run_out(self, nodes: tuple[Store, Store]) -> None:
        """A lease on a row the node does not hold in memory (a publish whose caller
        gave up after the commit) is not renewed: it runs out and is leased again."""
        a, b = (shared(n) for n in nodes)
        ttl = 400 * MS
        await a.enqueue_leased([OutboundNew("b", j, "t") for j in ("held", "stray")], "node-a", ttl)
        for _ in range(3):
            await asyncio.sleep(ttl / 2)
            assert await a.renew_outbound("b", "node-a", ttl, jtis=["held", "gone"]) == 1
        assert [r.jti for r in await b.lease_outbound("b", "node-b", limit=10, ttl=30.0)] == [
            "stray"
        ]
        assert await a.renew_outbound("b", "node-a", ttl, jtis=[]) == 0

    async def test_bad_values_are_refused(self, nodes: tuple[Store, Store]) -> None:
        a, _ = (shared(n) for n in nodes)
        with pytest.raises(InvalidValue):
            await a.enqueue_leased([OutboundNew("b", "j", "t")], "\ud800", 30.0)
        with pytest.raises(InvalidValue):
            await a.enqueue_leased([OutboundNew("b", "j", "t")], "node-a", -1.0)
        with pytest.raises(InvalidValue):
            await a.renew_outbound("b", "node-a", 30.0, jtis=["\udc00"])
        with pytest.raises(InvalidValue):
            await a.lease_outbound("b", "node-a", limit=-1, ttl=30.0)
        with pytest.raises(InvalidValue):
            await a.lease_outbound("b", "node-a", limit=1, ttl=0)
        with pytest.raises(InvalidValue):
            await a.renew_outbound("b", "\ud800", 30.0)
        with pytest.raises(InvalidValue):
            await a.release_outbound(7, "node-a")  # type: ignore[arg-type]


class TestInboxAcrossNodes:
    """Dedupe on (iss, jti) holds between nodes (PUSH-9, pitfall 16)."""

    async def test_same_set_stored_by_both_nodes_once(
        self, nodes: tuple[Store, Store], url: str
    ) -> None:
        """Both nodes accept the same 180 SETs at once, frames in opposite orders.

        Each copy waits for the other's commit, then conflicts: exactly one True per
        SET. Opposite orders make the two transactions deadlock now and then; the
        loser's group is rolled back and run again, transparently.
        """
        a, b = nodes
        sets = [InboundNew("https://x", f"j{i}", f"t{i}", {"i": i}) for i in range(180)]

        async def accept(store: Store, items: list[InboundNew]) -> dict[str, bool]:
            flags: dict[str, bool] = {}
            for start in range(0, len(items), 20):  # several frames, several commits
                chunk = items[start : start + 20]
                fresh = await store.accept_inbound("x", chunk, [])
                flags.update(zip((i.jti for i in chunk), fresh, strict=True))
            return flags

        backwards = [s for start in range(0, 180, 20) for s in sets[start : start + 20][::-1]]
        first, second = await asyncio.gather(accept(a, sets), accept(b, backwards))
        assert all(first[s.jti] != second[s.jti] for s in sets)
        rows = await a.fetch_inbox(after_seq=0, limit=1000)
        assert len(rows) == len({(r.iss, r.jti) for r in rows}) == 180
        assert (await b.stats())["x"].received == 180
        assert sql(url, "SELECT received FROM counts") == [(180,)]

    async def test_deadlock_between_nodes_is_retried(self, url: str) -> None:
        """A group chosen as a deadlock victim is rolled back and run again, unseen.

        Another session holds (iss, j2) and then wants j1, which our group holds
        while it waits for j2. Our group waited first, so PostgreSQL picks it as the
        victim after deadlock_timeout; it runs again after the other commits and
        finds both SETs stored: duplicates, still no error for the caller.
        """
        store = await open_store(url)
        try:
            with psycopg.connect(url) as other:  # a transaction, held open
                other.execute(
                    "INSERT INTO inbox (partner, iss, jti, token, claims)"
                    " VALUES ('y', 'i', 'j2', 't', '{}')"
                )
                items = [InboundNew("i", "j1", "t", {}), InboundNew("i", "j2", "t", {})]
                ours = asyncio.ensure_future(store.accept_inbound("x", items, []))
                await asyncio.sleep(100 * MS)  # ours holds j1 and waits for j2
                assert not ours.done()
                await anyio.to_thread.run_sync(
                    other.execute,
                    "INSERT INTO inbox (partner, iss, jti, token, claims)"
                    " VALUES ('y', 'i', 'j1', 't', '{}')",
                )
                other.commit()
            assert await ours == [False, False]
        finally:
            await store.aclose()
        assert sql(url, "SELECT convert_from(partner, 'UTF8'), count(*) FROM inbox GROUP BY 1") == [
            ("y", 2)
        ]

    async def test_duplicate_jti_across_nodes(self, nodes: tuple[Store, Store]) -> None:
        """MP-9: a (partner, jti) enqueued by one node is refused to the other."""
        a, b = nodes
        await a.enqueue([OutboundNew("b", "j1", "t")])
        with pytest.raises(DuplicateJti):
            await b.enqueue([OutboundNew("b", "j1", "t")])
        await b.enqueue([OutboundNew("b", "j2", "t")])
        assert [r.jti for r in await a.load_outbound("b", limit=10)] == ["j1", "j2"]

    async def test_long_jtis_dedupe(self, nodes: tuple[Store, Store]) -> None:
        """4 KiB jtis (FrameLimits.max_string_bytes) fit: keys are indexed by sha256."""
        a, b = nodes
        jti = os.urandom(2048).hex()
        near = jti[:-1] + ("0" if jti[-1] != "0" else "1")
        assert await a.accept_inbound("b", [InboundNew("i", jti, "t", {})], []) == [True]
        assert await b.accept_inbound(
            "b", [InboundNew("i", jti, "t", {}), InboundNew("i", near, "t", {})], []
        ) == [False, True]
        await a.enqueue([OutboundNew("p" * 5000, jti, "t")])
        with pytest.raises(DuplicateJti):
            await b.enqueue([OutboundNew("p" * 5000, jti, "t")])
        await b.apply("p" * 5000, [Sent(jti, 1, 5.0), Failed(jti, "invalid_key", "k" * 5000)])
        ((failure,),) = [await a.failures("p" * 5000)]
        assert (failure.jti, failure.description) == (jti, "k" * 5000)


class TestCounts:
    """The trigger-kept counts match the rows, whichever node wrote them."""

    async def test_counts_match_rows(self, nodes: tuple[Store, Store], url: str) -> None:
        """After mixed writes from two nodes, counts equal a recount from the rows."""
        a, b = nodes
        await asyncio.gather(
            a.enqueue([OutboundNew(f"p{i % 3}", f"a{i}", "t") for i in range(30)]),
            b.enqueue([OutboundNew(f"p{i % 3}", f"b{i}", "t") for i in range(30)]),
        )
        await a.apply("p0", [Sent(f"a{i}", 1, 9.0) for i in range(0, 30, 3)])
        await b.apply("p0", [Acked(f"a{i}") for i in range(0, 12, 3)])
        await b.apply("p1", [Failed("b1", "invalid_key", "k"), Sent("b4", 2, 1.0)])
        recount = sql(
            url,
            "SELECT convert_from(partner, 'UTF8'),"
            " count(*) FILTER (WHERE state = 0 AND attempts = 0),"
            " count(*) FILTER (WHERE state = 0 AND attempts > 0),"
            " count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state = 2)"
            " FROM outbox GROUP BY partner ORDER BY 1",
        )
        kept = sql(
            url,
            "SELECT convert_from(partner, 'UTF8'), pending, inflight, acked, failed"
            " FROM counts ORDER BY 1",
        )
        assert kept == recount
        assert recount[0] == ("p0", 10, 6, 4, 0)  # b's 10 pending, a's 6 in flight, 4 acked
        stats = await a.stats()
        assert (stats["p0"].max_attempts, stats["p0"].next_attempt_at) == (1, 9.0)
        assert (stats["p1"].failed, stats["p1"].inflight) == (1, 1)
        sql(url, "DELETE FROM outbox WHERE partner = 'p2'::bytea")
        assert (await b.stats())["p2"].pending == 0


class TestNotify:
    """enqueue NOTIFYs in its transaction; watch() hears other nodes (LISTEN)."""

    async def test_other_nodes_enqueue_wakes_watch(self, nodes: tuple[Store, Store]) -> None:
        """B's enqueue reaches A's watch; A's own enqueue does not (it told its Links)."""
        a, b = nodes
        watch = aiter(a.watch())
        try:
            await asyncio.sleep(50 * MS)  # LISTEN is issued on the first step below
            task = asyncio.ensure_future(next_wake(watch))
            await asyncio.sleep(50 * MS)
            await a.enqueue([OutboundNew("mine", "1", "t")])
            await b.enqueue([OutboundNew("theirs", "1", "t")])
            assert await task == "theirs"
            await b.enqueue([OutboundNew("a\x00b", "1", "t")])  # no NUL in a payload
            assert await next_wake(watch) is None
            start = time.perf_counter()
            await b.enqueue([OutboundNew("fast", "1", "t")])
            assert await next_wake(watch) == "fast"
            print(f"NOTIFY to watch: {(time.perf_counter() - start) * 1e3:.2f} ms")
        finally:
            await watch.aclose()  # type: ignore[attr-defined]

    async def test_send_process_wakes_the_node(self, url: str, nodes: tuple[Store, Store]) -> None:
        """A short-lived store (setpeer send) wakes a watching node after commit."""
        a, _ = nodes
        watch = aiter(a.watch())
        try:
            task = asyncio.ensure_future(next_wake(watch))
            await asyncio.sleep(50 * MS)
            sender = await open_store(url)
            await sender.enqueue([OutboundNew("b", "1", "t"), OutboundNew("c", "1", "t")])
            await sender.aclose()
            assert {await task, await next_wake(watch)} == {"b", "c"}
        finally:
            await watch.aclose()  # type: ignore[attr-defined]

    async def test_failed_enqueue_notifies_nobody(self, nodes: tuple[Store, Store]) -> None:
        """A refused enqueue commits nothing, so it wakes nobody."""
        a, b = nodes
        await b.enqueue([OutboundNew("b", "taken", "t")])
        watch = aiter(a.watch())
        try:
            task = asyncio.ensure_future(next_wake(watch))
            await asyncio.sleep(50 * MS)
            with pytest.raises(DuplicateJti):
                await b.enqueue([OutboundNew("refused", "x", "t"), OutboundNew("b", "taken", "t")])
            await b.enqueue([OutboundNew("later", "1", "t")])
            assert await task == "later"
        finally:
            await watch.aclose()  # type: ignore[attr-defined]

    async def test_watch_ends_when_the_store_closes(self, url: str) -> None:
        """aclose() ends a running watch instead of leaving it reconnecting forever."""
        store = await open_store(url)
        watch = aiter(store.watch())
        task = asyncio.ensure_future(anext(watch, "ended"))
        await asyncio.sleep(50 * MS)
        await store.aclose()
        with anyio.fail_after(5000 * MS):
            assert await task == "ended"


class TestSchema:
    """Versioned migrations in schema_version, under an advisory lock."""

    async def test_fresh_schema_and_concurrent_start(self, url: str) -> None:
        """Four nodes starting at once on an empty schema: one migrates, all open."""
        stores = await asyncio.gather(*(open_store(url) for _ in range(4)))
        for store in stores:
            await store.aclose()
        assert sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
        assert await migrate(url) == SCHEMA_VERSION

    async def test_newer_schema_refused(self, url: str) -> None:
        """A database migrated by a newer setpeer is refused by open and migrate."""
        assert await migrate(url) == SCHEMA_VERSION
        sql(url, "UPDATE schema_version SET version = %s", SCHEMA_VERSION + 1)
        with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
            await open_store(url)
        with pytest.raises(StoreError, match="upgrade setpeer"):
            await migrate(url)

    async def test_version_1_upgrades_with_counts(self, url: str) -> None:
        """A version-1 database gets counts filled from its rows by step 2."""
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(STEPS[1])
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version VALUES (1)")
            conn.execute(
                "INSERT INTO outbox (partner, jti, token, state, attempts) VALUES"
                " ('b', '1', 't', 0, 0), ('b', '2', 't', 0, 3), ('b', '3', 't', 1, 1)"
            )
            conn.execute(
                "INSERT INTO inbox (partner, iss, jti, token, claims)"
                " VALUES ('b', 'i', '1', 't', '{}')"
            )
        store = await open_store(url)
        try:
            counts = (await store.stats())["b"]
            assert (counts.pending, counts.inflight, counts.acked, counts.received) == (1, 1, 1, 1)
        finally:
            await store.aclose()
        assert sql(url, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


class TestUrls:
    """``postgresql://`` and ``postgres://`` both open a PostgresStore (docs/configuration.md)."""

    @pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
    async def test_both_schemes(self, url: str, scheme: str) -> None:
        """Either spelling; query options (here search_path) are libpq's."""
        spelled = scheme + url.split("://", 1)[1]
        store = await open_store(spelled)
        try:
            assert isinstance(store, PostgresStore)
            await store.enqueue([OutboundNew("b", "1", "t")])
        finally:
            await store.aclose()
        assert await migrate(spelled) == SCHEMA_VERSION
        assert sql(url, "SELECT count(*) FROM outbox") == [(1,)]


class TestUnreachable:
    """A server that is not there: StoreError with a clear message, then recovery."""

    async def test_no_server_at_open(self) -> None:
        """Nothing listens on the port: open and migrate fail fast with StoreError."""
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dead = f"postgresql://setpeer@127.0.0.1:{port}/x"
        start = time.perf_counter()
        with pytest.raises(StoreError, match=f"cannot connect to PostgreSQL at 127.0.0.1:{port}/x"):
            await open_store(dead)
        with pytest.raises(StoreError, match="unreachable"):
            await migrate(dead)
        assert time.perf_counter() - start < seconds(5)

    @pytest.mark.parametrize("bad", ["postgresql://h/db?nonsense=1", "postgres://[::1/x"])
    async def test_bad_url(self, bad: str) -> None:
        """A URL libpq cannot parse is StoreError, not a driver exception."""
        with pytest.raises(StoreError):
            await open_store(bad)

    async def test_server_restart(self, url: str) -> None:
        """pg_ctl stop -m fast: calls raise StoreError; started again: they work again."""
        data = os.environ.get("SETPEER_TEST_POSTGRES_DATA")
        if not data:
            pytest.skip("no local test cluster (SETPEER_TEST_POSTGRES_DATA) to stop and start")
        bin_dir = os.environ.get("SETPEER_TEST_POSTGRES_BIN", "")
        user = os.environ.get("SETPEER_TEST_POSTGRES_USER", "")
        pg_ctl = [os.path.join(bin_dir, "pg_ctl") if bin_dir else "pg_ctl", "-D", data, "-w"]
        runas = ["runuser", "-u", user, "--"] if user else []

        store = await open_store(url)
        watcher = await open_store(url)
        watch = aiter(watcher.watch())
        watching = asyncio.ensure_future(next_wake(watch, 60))
        try:
            await asyncio.sleep(50 * MS)
            await store.enqueue([OutboundNew("b", "before", "t")])
            assert await watching == "b"
            watching = asyncio.ensure_future(next_wake(watch, 60))
            await anyio.run_process([*runas, *pg_ctl, "-m", "fast", "stop"])
            try:
                with pytest.raises(StoreError, match="unreachable"):
                    await store.enqueue([OutboundNew("b", "during", "t")])
                with pytest.raises(StoreError, match="unreachable"):
                    await store.load_outbound("b", limit=10)
                with pytest.raises(StoreError, match="unreachable"):
                    await shared(store).lease_outbound("b", "node", limit=10, ttl=5.0)
                with pytest.raises(StoreError, match="unreachable"):
                    await store.apply("b", [Acked("before")])
            finally:
                await anyio.run_process([*runas, *pg_ctl, "-l", f"{data}/../server.log", "start"])
            # Same store objects, no reopen: the connections are replaced.
            await store.enqueue([OutboundNew("b", "after", "t")])
            assert [r.jti for r in await store.load_outbound("b", limit=10)] == [
                "before",
                "after",
            ]
            leased = await shared(store).lease_outbound("b", "node", limit=10, ttl=5.0)
            assert [r.jti for r in leased] == ["before", "after"]
            # The watch reconnected: it says "anything may have changed", then
            # hears new commits again.
            assert await watching is None
            other = await open_store(url)
            try:
                await other.enqueue([OutboundNew("c", "1", "t")])
            finally:
                await other.aclose()
            heard = [await next_wake(watch)]
            if heard[0] == "b":  # "after", if the watch was back before it committed
                heard.append(await next_wake(watch))
            assert heard[-1] == "c"
        finally:
            watching.cancel()
            await watch.aclose()  # type: ignore[attr-defined]
            await store.aclose()
            await watcher.aclose()


async def test_probe_write_refuses_read_only_transactions(url: str) -> None:
    """With ``default_transaction_read_only`` every write fails, reads work:
    probe_write() says so (readiness 503), stats() alone did not."""
    store = await open_store(url)
    await store.aclose()
    option = quote("-cdefault_transaction_read_only=on", safe="")
    read_only = await open_store(url.replace("options=", f"options={option}%20", 1))
    try:
        await read_only.stats()  # reads still answer
        with pytest.raises(StoreError, match="read-only"):
            await read_only.probe_write()
        with pytest.raises(StoreError):
            await read_only.set_session("b", "down")
    finally:
        await read_only.aclose()


def test_test_server_keeps_fsync() -> None:
    """The test server must not cheat on durability (fsync stays on)."""
    base = postgres_base_url()
    assert sql(base, "SHOW fsync") == [("on",)]
    assert with_schema(base, "s").endswith("options=-csearch_path%3Ds")
