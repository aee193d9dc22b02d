"""Failures in both directions, on every backend (memory, SQLite, PostgreSQL).

Refused inbound SETs are kept in a ring per partner (``record_refusals``: at most
``keep`` rows, the oldest deleted in the same transaction, ``counts.refused``
counting them all); an outbound failure carries the time it failed
(``FailureRow.at``); ``stats()`` counts the inbox rows not yet done
(``unhandled``). Migration from schema 3 keeps every row and fills the counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from peer.protocol.effects import Failed
from peer.store import open_store
from peer.store.base import (
    SCHEMA_VERSION,
    Answer,
    InboundNew,
    InvalidValue,
    OutboundNew,
    RefusalNew,
    Store,
)
from peer.store.postgres_schema import STEPS as PG_STEPS
from peer.store.sqlite_schema import STEPS as SQLITE_STEPS

from .conftest import Backend
from .test_contract import HOSTILE


def refusal(
    partner: str, jti: str, at: float = 1000.0, err: str = "invalid_audience"
) -> RefusalNew:
    return RefusalNew(partner, jti, err, f"why {jti}", at)


async def ring(store: Store, partner: str | None = None) -> list[str]:
    return [r.jti for r in await store.refusals(partner=partner)]


class TestRefusalRing:
    """record_refusals() / refusals(): a bounded ring per partner, a counter beside it."""

    async def test_ring_keeps_the_newest_per_partner(self, store: Store) -> None:
        """keep=3: the oldest go as new ones come, per partner; refused counts all."""
        await store.record_refusals([refusal("b", "1"), refusal("b", "2"), refusal("c", "x")], 3)
        await store.record_refusals([refusal("b", "3"), refusal("b", "4")], 3)
        await store.record_refusals([refusal("b", "5")], 3)
        assert await ring(store, "b") == ["3", "4", "5"]
        assert await ring(store, "c") == ["x"]
        assert await ring(store) == ["x", "3", "4", "5"]  # every partner, oldest first
        assert await ring(store, "nobody") == []
        rows = await store.refusals(partner="b")
        assert [(r.partner, r.err, r.description, r.at) for r in rows][0] == (
            "b",
            "invalid_audience",
            "why 3",
            1000.0,
        )
        assert rows[0].seq < rows[1].seq < rows[2].seq
        # limit: the newest of them, still oldest first (status shows a few).
        assert [r.jti for r in await store.refusals(partner="b", limit=2)] == ["4", "5"]
        assert [r.jti for r in await store.refusals(limit=1)] == ["5"]
        assert await store.refusals(partner="b", limit=0) == []
        for bad in (-1, True, 1.5):
            with pytest.raises(InvalidValue):
                await store.refusals(limit=bad)  # type: ignore[arg-type]
        stats = await store.stats()
        assert (stats["b"].refused, stats["c"].refused) == (5, 1)
        assert stats["b"].received == stats["b"].unhandled == 0

    async def test_a_flood_writes_only_the_ring(self, store: Store) -> None:
        """1,000 refusals with keep=10 in one call: 10 rows. ``dropped`` refusals are
        counted and, newer than the ring's rows, push them out."""
        await store.record_refusals([refusal("b", str(i)) for i in range(1000)], 10)
        assert await ring(store, "b") == [str(i) for i in range(990, 1000)]
        await store.record_refusals([refusal("b", "next")], 10, dropped={"b": 2})
        assert await ring(store, "b") == [*(str(i) for i in range(993, 1000)), "next"]
        await store.record_refusals([refusal("b", "last")], 10, dropped={"b": 500, "c": 7})
        assert await ring(store, "b") == ["last"]
        stats = await store.stats()
        assert (stats["b"].refused, stats["c"].refused) == (1504, 7)
        assert await ring(store, "c") == []
        # A smaller keep later trims at once.
        await store.record_refusals([refusal("b", "tiny")], 2)
        assert await ring(store, "b") == ["last", "tiny"]

    async def test_since_filters_by_time(self, store: Store) -> None:
        """refusals(since=T): those at or after T."""
        await store.record_refusals([refusal("b", str(t), at=t) for t in (100, 200, 300)], 10)
        assert await ring(store) == ["100", "200", "300"]
        assert [r.jti for r in await store.refusals(since=200)] == ["200", "300"]
        assert [r.jti for r in await store.refusals(since=200.5, partner="b")] == ["300"]
        assert await store.refusals(since=301) == []

    async def test_one_turn_with_the_inbox_is_one_commit(self, store: Store) -> None:
        """Refusals recorded beside a frame's SETs share its transaction."""
        before = store.commits
        await asyncio.gather(
            store.accept_inbound("b", [InboundNew("https://b", "ok", "t", {})], [Answer("ok")]),
            store.record_refusals([refusal("b", str(i)) for i in range(50)], 1000),
        )
        assert store.commits - before == 1
        assert len(await ring(store, "b")) == 50

    @pytest.mark.parametrize("text", HOSTILE)
    async def test_hostile_strings_round_trip(self, store: Store, text: str) -> None:
        """Partner names, jtis, codes and descriptions come back exactly."""
        await store.record_refusals([RefusalNew(text, text, text, text, 5.5)], 10)
        (row,) = await store.refusals(partner=text)
        assert (row.partner, row.jti, row.err, row.description, row.at) == (
            text,
            text,
            text,
            text,
            5.5,
        )
        assert (await store.stats())[text].refused == 1

    async def test_long_jtis_and_descriptions(self, store: Store) -> None:
        """A partner's 4 KiB jti and a long description are kept whole."""
        jti, description = "j" * 4096, "d" * 20_000
        await store.record_refusals([RefusalNew("b", jti, "invalid_request", description, 1)], 5)
        (row,) = await store.refusals()
        assert (row.jti, row.description) == (jti, description)

    @pytest.mark.parametrize(
        ("items", "keep", "dropped"),
        [
            ([refusal("b", "1")], 0, None),
            ([refusal("b", "1")], 1_000_001, None),
            ([refusal("b", "1")], True, None),
            ([refusal("b", "1", at=math.nan)], 5, None),
            ([refusal("b", "1", at=math.inf)], 5, None),
            ([RefusalNew("b", "1", "e", "d", "now")], 5, None),  # type: ignore[arg-type]
            ([RefusalNew("b", 1, "e", "d", 0)], 5, None),  # type: ignore[arg-type]
            ([RefusalNew("b", "\ud800", "e", "d", 0)], 5, None),
            ([RefusalNew("b", "1", None, "d", 0)], 5, None),  # type: ignore[arg-type]
            ([refusal("b", "1")], 5, {"b": -1}),
            ([refusal("b", "1")], 5, {"b": 1.5}),
        ],
    )
    async def test_unstorable_refused_before_anything(
        self, store: Store, items: list[RefusalNew], keep: Any, dropped: Any
    ) -> None:
        """Bad values raise InvalidValue, the same on every backend, nothing written."""
        with pytest.raises(InvalidValue):
            await store.record_refusals([refusal("b", "0"), *items], keep, dropped=dropped)
        assert await store.refusals() == []
        assert await store.stats() == {}

    @pytest.mark.parametrize("since", [math.nan, "1", True])
    async def test_bad_since_refused(self, store: Store, since: Any) -> None:
        with pytest.raises(InvalidValue):
            await store.refusals(since=since)
        with pytest.raises(InvalidValue):
            await store.failures(since=since)

    async def test_empty_call_is_a_no_op(self, store: Store) -> None:
        before = store.commits
        await store.record_refusals([], 5)
        await store.record_refusals([], 5, dropped={"b": 0})
        assert store.commits == before
        assert await store.stats() == {}

    async def test_reopen_keeps_the_ring(self, backend: Backend) -> None:
        """A durable store reopened holds the ring and counts on from where it was."""
        if not backend.durable:
            pytest.skip("the memory store ends with its process by design")
        store = await backend.open()
        await store.record_refusals([refusal("b", str(i)) for i in range(4)], 3)
        await store.aclose()
        store = await backend.open()
        try:
            assert await ring(store, "b") == ["1", "2", "3"]
            await store.record_refusals([refusal("b", "4")], 3)
            assert await ring(store, "b") == ["2", "3", "4"]
            assert (await store.stats())["b"].refused == 5
        finally:
            await store.aclose()


class TestOutboundFailures:
    """failures(): when each failed, ``since`` and ``limit``."""

    async def test_failures_carry_their_time(self, store: Store) -> None:
        await store.enqueue([OutboundNew("b", str(i), "t") for i in range(4)])
        before = time.time()
        await store.apply("b", [Failed("0", "invalid_key", "kid"), Failed("1", "x", "y")])
        after = time.time()
        rows = await store.failures("b")
        assert [r.jti for r in rows] == ["0", "1"]
        # PostgreSQL's clock is the server's: the same machine here, a little margin.
        assert all(before - 1 <= r.at <= after + 1 for r in rows)
        await store.apply("b", [Failed("3", "delivery_exhausted", "20 attempts")])
        assert [r.jti for r in await store.failures(limit=2)] == ["1", "3"]
        assert [r.jti for r in await store.failures("b", limit=1)] == ["3"]
        assert await store.failures(limit=0) == []
        assert len(await store.failures(since=before - 1)) == 3
        assert await store.failures(since=after + 3600) == []
        with pytest.raises(InvalidValue):
            await store.failures(limit=-1)


class TestUnhandled:
    """stats().unhandled: inbox rows not yet done, kept without a scan."""

    async def test_unhandled_follows_done_marks(self, store: Store) -> None:
        items = [InboundNew("https://b", str(i), "t", {}) for i in range(3)]
        await store.accept_inbound("b", items, [])
        await store.accept_inbound("b", items[:1], [])  # a duplicate is not a new row
        await store.accept_inbound("c", [InboundNew("https://c", "z", "t", {})], [])
        assert (await store.stats())["b"].unhandled == 3
        first, second, *_ = await store.fetch_inbox(after_seq=0, limit=10)
        await store.mark_done([first.seq, second.seq, first.seq])
        await store.mark_done([first.seq, 999])  # again, and unknown: no change
        stats = await store.stats()
        assert (stats["b"].unhandled, stats["b"].received) == (1, 3)
        assert (stats["c"].unhandled, stats["c"].refused) == (1, 0)


# -- migration from schema 3, with rows in it ----------------------------------------


def _sqlite_v3(db: Path) -> None:
    conn = sqlite3.connect(db)
    for step in (1, 2, 3):
        conn.executescript(SQLITE_STEPS[step])
    conn.executescript(
        """
        INSERT INTO outbox (partner, jti, token, state, err, description, created_at)
            VALUES ('b', 'f', 't', 2, 'invalid_key', 'kid', 5), ('b', 'o', 't', 0, NULL, NULL, 5);
        INSERT INTO inbox (partner, iss, jti, token, claims, done, received_at)
            VALUES ('b', 'i', '1', 't', '{}', 0, 0), ('b', 'i', '2', 't', '{}', 1, 0),
                   ('c', 'i', '3', 't', '{}', 0, 0);
        PRAGMA user_version = 3;
        """
    )
    conn.close()


def _postgres_v3(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for step in (1, 2, 3):
            conn.execute(PG_STEPS[step])
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (3)")
        conn.execute(
            "INSERT INTO outbox (partner, jti, token, state, err, description) VALUES"
            " ('b', 'f', 't', 2, 'invalid_key', 'kid'), ('b', 'o', 't', 0, NULL, NULL)"
        )
        conn.execute(
            "INSERT INTO inbox (partner, iss, jti, token, claims, done) VALUES"
            " ('b', 'i', '1', 't', '{}', false), ('b', 'i', '2', 't', '{}', true),"
            " ('c', 'i', '3', 't', '{}', false)"
        )


async def test_schema_3_migrates_with_its_rows(backend: Backend, tmp_path: Path) -> None:
    """A schema-3 store: failures keep at 0 (time unknown), unhandled is counted from
    the inbox, refused starts at 0, and the triggers keep them from then on."""
    if backend.name == "memory":
        pytest.skip("the memory store has no schema to migrate")
    if backend.name == "sqlite":
        db = tmp_path / "v3.db"
        _sqlite_v3(db)
        url = f"sqlite:///{db}"
    else:
        _postgres_v3(backend.url)
        url = backend.url
    assert SCHEMA_VERSION >= 4
    store = await open_store(url)
    try:
        failures = await store.failures()
        assert [dataclasses.astuple(f) for f in failures] == [
            ("b", "f", "invalid_key", "kid", 0, 0.0)
        ]
        assert await store.failures(since=0.5) == []
        stats = await store.stats()
        assert (stats["b"].unhandled, stats["b"].received, stats["b"].refused) == (1, 2, 0)
        assert stats["c"].unhandled == 1
        await store.accept_inbound("b", [InboundNew("https://b", "4", "t", {})], [])
        (row, *_) = await store.fetch_inbox(after_seq=0, limit=10)
        await store.mark_done([row.seq])
        await store.record_refusals([refusal("b", "r")], 5)
        await store.apply("b", [Failed("o", "x", "y")])
        stats = await store.stats()
        assert (stats["b"].unhandled, stats["b"].refused, stats["b"].failed) == (1, 1, 2)
        assert (await store.failures())[-1].at > 0
    finally:
        await store.aclose()
