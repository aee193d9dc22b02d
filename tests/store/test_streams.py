"""SSF streams and their subjects, on every backend (memory, SQLite, PostgreSQL).

A stream is kept per ``(partner, role, stream_id)`` with its configuration, status,
reason and verification bookkeeping (``save_stream`` upserts); its subjects are
keyed by canonical JSON (``add_subject`` is idempotent whatever the key order) and
leave with it (``delete_stream``). Schema 5 adds the two tables; a schema-4 store
migrates with its rows.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from peer.store import open_store
from peer.store.base import (
    SCHEMA_VERSION,
    InvalidValue,
    OutboundNew,
    Store,
    StreamRow,
    UnknownStream,
)
from peer.store.postgres_schema import STEPS as PG_STEPS
from peer.store.sqlite_schema import STEPS as SQLITE_STEPS

from .conftest import Backend
from .test_contract import HOSTILE

T, R = "transmitter", "receiver"
EMAIL = {"format": "email", "email": "a@example.com"}
COMPLEX = {"format": "complex", "user": {"format": "opaque", "id": "u1"}, "tenant": EMAIL}


def stream(partner: str = "b", stream_id: str = "s1", role: str = T, **kw: Any) -> StreamRow:
    config = {"stream_id": stream_id, "iss": "https://a", "aud": partner, "delivery": {}}
    return StreamRow(
        partner, role, stream_id, kw.pop("config", config), kw.pop("status", "enabled"), **kw
    )


class TestStreams:
    """save_stream() / streams() / delete_stream()."""

    async def test_round_trip_and_upsert(self, store: Store) -> None:
        """A saved row comes back as saved (through JSON); a second save replaces it."""
        before = time.time()
        saved = await store.save_stream(stream(config={"n": [1, 2.5, None, True], "s": "é"}))
        assert before <= saved.updated_at <= time.time()
        assert await store.streams() == [saved]
        later = stream(
            status="paused",
            reason="operator",
            verification={"state": "x", "requested_at": 5.0},
            updated_at=1234.5,
            config={"new": 1},
        )
        assert await store.save_stream(later) == later
        assert await store.streams() == [later]

    async def test_filters_and_order(self, store: Store) -> None:
        """Ordered by (partner, role, stream_id); filtered by partner and role."""
        for partner, role, sid in [("c", T, "1"), ("b", R, "z"), ("b", T, "y"), ("b", T, "x")]:
            await store.save_stream(stream(partner, sid, role, updated_at=1.0))
        keys = [(r.partner, r.role, r.stream_id) for r in await store.streams()]
        assert keys == [("b", R, "z"), ("b", T, "x"), ("b", T, "y"), ("c", T, "1")]
        assert [r.stream_id for r in await store.streams(partner="b", role=T)] == ["x", "y"]
        assert [r.stream_id for r in await store.streams(role=R)] == ["z"]
        assert await store.streams(partner="nobody") == []

    async def test_delete_takes_its_subjects(self, store: Store) -> None:
        """delete_stream: True once, False after; the subjects go too, the others stay."""
        await store.save_stream(stream(stream_id="s1"))
        await store.save_stream(stream(stream_id="s2"))
        await store.add_subject("b", T, "s1", EMAIL)
        await store.add_subject("b", T, "s2", EMAIL)
        assert await store.delete_stream("b", T, "s1") is True
        assert await store.delete_stream("b", T, "s1") is False
        assert await store.delete_stream("b", R, "s2") is False  # the role is in the key
        assert await store.subjects("b", T, "s1") == []
        assert await store.subjects("b", T, "s2") == [EMAIL]
        await store.save_stream(stream(stream_id="s1"))  # made again: no subjects back
        assert await store.subjects("b", T, "s1") == []


class TestSubjects:
    """add_subject() / remove_subject() / subjects()."""

    async def test_idempotent_whatever_the_key_order(self, store: Store) -> None:
        """A subject is added once (canonical JSON); subjects keep the order added."""
        await store.save_stream(stream())
        assert await store.add_subject("b", T, "s1", COMPLEX) is True
        assert await store.add_subject("b", T, "s1", EMAIL) is True
        reordered = {"tenant": {"email": "a@example.com", "format": "email"}, **COMPLEX}
        assert await store.add_subject("b", T, "s1", dict(reversed(reordered.items()))) is False
        assert await store.subjects("b", T, "s1") == [COMPLEX, EMAIL]
        assert await store.remove_subject(
            "b", T, "s1", {"email": "a@example.com", "format": "email"}
        )
        assert await store.remove_subject("b", T, "s1", EMAIL) is False
        assert await store.subjects("b", T, "s1") == [COMPLEX]

    async def test_subjects_are_per_stream_and_role(self, store: Store) -> None:
        """The same subject on two streams and two roles: four separate entries."""
        for role in (T, R):
            for sid in ("s1", "s2"):
                await store.save_stream(stream(stream_id=sid, role=role))
                assert await store.add_subject("b", role, sid, EMAIL) is True
        assert await store.remove_subject("b", R, "s2", EMAIL) is True
        assert await store.subjects("b", R, "s2") == []
        assert await store.subjects("b", T, "s2") == [EMAIL]

    async def test_unknown_stream(self, store: Store) -> None:
        """Adding to a stream that is not stored raises UnknownStream; nothing lands,
        and a write committed beside it is not spoiled."""
        await store.save_stream(stream(stream_id="s1"))
        results = await asyncio.gather(
            store.add_subject("b", T, "nope", EMAIL),
            store.enqueue([OutboundNew("b", "j1", "t")]),
            store.add_subject("b", T, "s1", EMAIL),
            return_exceptions=True,
        )
        assert isinstance(results[0], UnknownStream) and results[1:] == [None, True]
        assert await store.subjects("b", T, "nope") == []
        assert [r.jti for r in await store.load_outbound("b", limit=5)] == ["j1"]
        assert await store.remove_subject("b", T, "nope", EMAIL) is False


class TestHostileStreams:
    """Strings are data; bad values end in InvalidValue before anything is written."""

    @pytest.mark.parametrize("text", HOSTILE)
    async def test_hostile_strings_round_trip(self, store: Store, text: str) -> None:
        """Unicode, NUL, quotes and SQL in every text field and in the JSON."""
        row = StreamRow(text, R, text, {text: [text]}, "disabled", text, {text: text}, 7.0)
        assert await store.save_stream(row) == row
        assert await store.streams(partner=text, role=R) == [row]
        subject = {"format": "opaque", "id": text, text: text}
        assert await store.add_subject(text, R, text, subject) is True
        assert await store.subjects(text, R, text) == [subject]
        assert await store.delete_stream(text, R, text) is True

    async def test_large_config_and_subject(self, store: Store) -> None:
        """A 256 KiB configuration and an 8 KiB subject are kept whole (hashed keys)."""
        big = {"description": "d" * 262_144}
        await store.save_stream(stream(config=big))
        subject = {"format": "opaque", "id": "x" * 8192}
        assert await store.add_subject("b", T, "s1", subject) is True
        assert await store.add_subject("b", T, "s1", subject) is False
        assert (await store.streams())[0].config == big
        assert await store.subjects("b", T, "s1") == [subject]

    @pytest.mark.parametrize(
        "row",
        [
            stream(role="sender"),
            stream(status="on"),
            stream(status="ENABLED"),
            stream(partner="\ud800"),
            stream(stream_id=7),  # type: ignore[arg-type]
            stream(config=[1]),  # type: ignore[arg-type]
            stream(config={"x": math.nan}),
            stream(config={"x": {1, 2}}),
            stream(reason=b"why"),  # type: ignore[arg-type]
            stream(verification="state"),  # type: ignore[arg-type]
            stream(updated_at=math.inf),
            stream(updated_at=True),  # type: ignore[arg-type]
        ],
    )
    async def test_unstorable_stream_refused(self, store: Store, row: StreamRow) -> None:
        """A bad role, status, name, JSON or time is InvalidValue; nothing is stored."""
        with pytest.raises(InvalidValue):
            await store.save_stream(row)
        assert await store.streams() == []

    async def test_bad_subjects_and_keys_refused(self, store: Store) -> None:
        """A subject that is no JSON object, or a bad role, is InvalidValue."""
        await store.save_stream(stream())
        for subject in ([1], "email", {"x": math.inf}, {"k": object()}):
            with pytest.raises(InvalidValue):
                await store.add_subject("b", T, "s1", subject)  # type: ignore[arg-type]
            with pytest.raises(InvalidValue):
                await store.remove_subject("b", T, "s1", subject)  # type: ignore[arg-type]
        with pytest.raises(InvalidValue):
            await store.subjects("b", "both", "s1")
        with pytest.raises(InvalidValue):
            await store.streams(role="both")
        with pytest.raises(InvalidValue):
            await store.delete_stream("b", T, "\udfff")
        assert await store.subjects("b", T, "s1") == []


async def test_reopen_keeps_streams(backend: Backend) -> None:
    """A durable store closed and reopened holds its streams and subjects."""
    if not backend.durable:
        pytest.skip("the memory store ends with its process by design")
    store = await backend.open()
    saved = await store.save_stream(stream(status="paused", verification={"state": "s"}))
    await store.add_subject("b", T, "s1", COMPLEX)
    await store.add_subject("b", T, "s1", EMAIL)
    await store.aclose()
    store = await backend.open()
    try:
        assert await store.streams() == [saved]
        assert await store.subjects("b", T, "s1") == [COMPLEX, EMAIL]
    finally:
        await store.aclose()


# -- migration from schema 4, with rows in it ----------------------------------------


def _sqlite_v4(db: Path) -> None:
    conn = sqlite3.connect(db)
    for step in (1, 2, 3, 4):
        conn.executescript(SQLITE_STEPS[step])
    conn.executescript(
        "INSERT INTO outbox (partner, jti, token, created_at) VALUES ('b', 'o', 't', 5);"
        " PRAGMA user_version = 4;"
    )
    conn.close()


def _postgres_v4(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for step in (1, 2, 3, 4):
            conn.execute(PG_STEPS[step])
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (4)")
        conn.execute("INSERT INTO outbox (partner, jti, token) VALUES ('b', 'o', 't')")


async def test_schema_4_migrates_with_its_rows(backend: Backend, tmp_path: Path) -> None:
    """A schema-4 store gains the stream tables and keeps its outbox and counts."""
    if backend.name == "memory":
        pytest.skip("the memory store has no schema to migrate")
    if backend.name == "sqlite":
        db = tmp_path / "v4.db"
        _sqlite_v4(db)
        url = f"sqlite:///{db}"
    else:
        _postgres_v4(backend.url)
        url = backend.url
    assert SCHEMA_VERSION >= 5
    store = await open_store(url)
    try:
        assert [r.jti for r in await store.load_outbound("b", limit=5)] == ["o"]
        assert (await store.stats())["b"].pending == 1
        assert await store.streams() == []
        await store.save_stream(stream())
        assert await store.add_subject("b", T, "s1", EMAIL) is True
        assert [r.stream_id for r in await store.streams()] == ["s1"]
    finally:
        await store.aclose()
    if backend.name == "sqlite":
        assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
