"""The store contract, run on every backend (memory, SQLite, PostgreSQL).

Each test states one rule of ``peer.store.base.Store``; checklist items are cited
where the rule comes from a spec (PP-23/25, MP-7/9, PUSH-9, pitfall 16: dedupe on
``(iss, jti)``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from peer.errors import StoreError
from peer.protocol.effects import Acked, AcksSent, Failed, Sent
from peer.store.base import (
    NODES_FORGOTTEN,
    Answer,
    DuplicateJti,
    FailureRow,
    InboundNew,
    InvalidValue,
    NodeRow,
    OutboundNew,
    PartnerCounts,
    Store,
)
from tests.timing import MS

from .conftest import Backend

HOSTILE = [
    "ünïcödé ✓ 🚀 עברית",
    "'; DROP TABLE outbox; --",
    '" OR 1=1 --',
    "%_*?[]\\",
    "a\x00b",
    "\r\n\t",
    "\u202e\ufeff\u200b",
    "",
]


def out(partner: str, jti: str, token: str | None = None) -> OutboundNew:
    return OutboundNew(partner, jti, token or f"tok.{partner}.{jti}")


def inbound(iss: str, jti: str, **claims: Any) -> InboundNew:
    return InboundNew(iss, jti, f"tok.{jti}", {"iss": iss, "jti": jti, **claims})


async def jtis(store: Store, partner: str, limit: int = 10_000) -> list[str]:
    return [row.jti for row in await store.load_outbound(partner, limit=limit)]


class TestOutbox:
    """Enqueue, FIFO loading and the jti rule (PP-25, MP-9)."""

    async def test_load_is_fifo_per_partner(self, store: Store) -> None:
        """Rows come back in enqueue order, per partner, with nothing sent yet."""
        await store.enqueue([out("b", "1"), out("c", "x"), out("b", "2")])
        await store.enqueue([out("b", "3")])
        rows = await store.load_outbound("b", limit=10)
        assert [r.jti for r in rows] == ["1", "2", "3"]
        assert [r.token for r in rows] == ["tok.b.1", "tok.b.2", "tok.b.3"]
        assert all(r.partner == "b" and r.attempts == 0 for r in rows)
        assert all(r.next_attempt_at is None for r in rows)
        assert rows[0].seq < rows[1].seq < rows[2].seq
        assert await jtis(store, "c") == ["x"]
        assert await store.load_outbound("nobody", limit=10) == []

    async def test_limit_and_after_seq_page_through(self, store: Store) -> None:
        """``limit`` caps a page; ``after_seq`` starts after the last row seen."""
        await store.enqueue([out("b", str(i)) for i in range(7)])
        first = await store.load_outbound("b", limit=3)
        second = await store.load_outbound("b", limit=3, after_seq=first[-1].seq)
        third = await store.load_outbound("b", limit=3, after_seq=second[-1].seq)
        assert [r.jti for r in first + second + third] == [str(i) for i in range(7)]
        assert await store.load_outbound("b", limit=0) == []

    async def test_empty_enqueue_is_a_no_op(self, store: Store) -> None:
        """Nothing to commit: no transaction, no error."""
        before = store.commits
        await store.enqueue([])
        await store.mark_done([])
        assert store.commits == before

    async def test_duplicate_jti_refused_whole_call(self, store: Store) -> None:
        """MP-9/PP-25: a (partner, jti) is never reused; the call stores nothing."""
        await store.enqueue([out("b", "j1")])
        with pytest.raises(DuplicateJti):
            await store.enqueue([out("b", "fresh"), out("b", "j1")])
        with pytest.raises(DuplicateJti):
            await store.enqueue([out("b", "twice"), out("b", "twice")])
        assert await jtis(store, "b") == ["j1"]
        # The same jti to another partner is another row (a forwarded SET).
        await store.enqueue([out("c", "j1")])
        assert await jtis(store, "c") == ["j1"]

    async def test_duplicate_jti_after_ack_still_refused(self, store: Store) -> None:
        """PP-25: a jti that was acked is never sent again, so never enqueued again."""
        await store.enqueue([out("b", "j1")])
        await store.apply("b", [Acked("j1")])
        with pytest.raises(DuplicateJti):
            await store.enqueue([out("b", "j1")])
        assert isinstance(DuplicateJti("x"), StoreError)


class TestGroupCommit:
    """Concurrent writes share transactions (group commit: peer/store/writer.py)."""

    async def test_one_turn_is_one_commit(self, store: Store) -> None:
        """1,000 concurrent single-SET enqueues finish in a handful of commits, FIFO."""
        before = store.commits
        await asyncio.gather(*(store.enqueue([out("b", f"{i:04}")]) for i in range(1000)))
        assert store.commits - before <= 3
        assert await jtis(store, "b") == [f"{i:04}" for i in range(1000)]

    async def test_waves_coalesce_while_committing(self, store: Store) -> None:
        """100 tasks, each 10 enqueues in a row: far fewer commits than writes."""

        async def worker(n: int) -> None:
            for i in range(10):
                await store.enqueue([out(f"p{n % 3}", f"{n}-{i}")])

        before = store.commits
        await asyncio.gather(*(worker(n) for n in range(100)))
        assert store.commits - before <= 100  # 1,000 writes
        for p in range(3):
            rows = await jtis(store, f"p{p}")
            assert len(rows) == len([n for n in range(100) if n % 3 == p]) * 10
            # Each task's own SETs stay in its order.
            for n in range(p, 100, 3):
                mine = [j for j in rows if j.startswith(f"{n}-")]
                assert mine == [f"{n}-{i}" for i in range(10)]

    async def test_duplicate_does_not_spoil_the_group(self, store: Store) -> None:
        """One failing write in a group fails alone; its neighbours commit."""
        await store.enqueue([out("b", "taken")])
        results = await asyncio.gather(
            store.enqueue([out("b", "a1")]),
            store.enqueue([out("b", "a2"), out("b", "taken")]),
            store.enqueue([out("b", "a3")]),
            store.mark_done([1]),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None and results[3] is None
        assert isinstance(results[1], DuplicateJti)
        assert await jtis(store, "b") == ["taken", "a1", "a3"]


class TestApply:
    """Each effect kind, in one transaction, scoped to the partner."""

    async def test_sent_records_attempts_and_retry(self, store: Store) -> None:
        """Sent: attempts rise (never fall), the next retry time is kept."""
        await store.enqueue([out("b", "j1"), out("b", "j2")])
        await store.apply("b", [Sent("j1", 1, 100.5)])
        await store.apply("b", [Sent("j1", 2, 200.25)])
        await store.apply("b", [Sent("j1", 1, 300.0)])  # a late, stale report
        rows = {r.jti: r for r in await store.load_outbound("b", limit=10)}
        assert (rows["j1"].attempts, rows["j1"].next_attempt_at) == (2, 300.0)
        assert (rows["j2"].attempts, rows["j2"].next_attempt_at) == (0, None)

    async def test_acked_finishes_for_good(self, store: Store) -> None:
        """Acked: never loaded again; later Sent or Failed do not reopen it (MP-9)."""
        await store.enqueue([out("b", "j1"), out("b", "j2")])
        await store.apply("b", [Sent("j1", 1, 1.0), Acked("j1")])
        await store.apply("b", [Sent("j1", 2, 2.0), Failed("j1", "invalid_key", "late")])
        assert await jtis(store, "b") == ["j2"]
        assert await store.failures() == []
        assert (await store.stats())["b"].acked == 1

    async def test_failed_records_reason(self, store: Store) -> None:
        """Failed: the partner's err and description are kept and listed (PP-21)."""
        await store.enqueue([out("b", "j1"), out("b", "j2")])
        await store.apply("b", [Sent("j1", 3, 1.0)])
        await store.apply("b", [Failed("j1", "invalid_issuer", "wrong iss"), Acked("j2")])
        await store.apply("b", [Acked("j1")])  # a late ack does not undo the failure
        assert await jtis(store, "b") == []
        (failure,) = await store.failures()
        assert failure == FailureRow("b", "j1", "invalid_issuer", "wrong iss", 3, failure.at)
        assert failure.at > 0

    async def test_effects_are_scoped_to_the_partner(self, store: Store) -> None:
        """An ack from c for a jti we sent to b changes nothing; unknown jtis are ignored."""
        await store.enqueue([out("b", "j1")])
        await store.apply("c", [Acked("j1"), Failed("j1", "x", "y"), Sent("j1", 1, 1.0)])
        await store.apply("b", [Acked("unknown"), Sent("unknown", 1, 1.0)])
        rows = await store.load_outbound("b", limit=10)
        assert [(r.jti, r.attempts) for r in rows] == [("j1", 0)]

    async def test_acks_sent_pays_the_debt(self, store: Store) -> None:
        """AcksSent deletes exactly those owed answers, for that partner only."""
        await store.accept_inbound("b", [], [Answer("i1"), Answer("i2"), Answer("i3")])
        await store.accept_inbound("c", [], [Answer("i1")])
        await store.apply("b", [AcksSent(("i1", "i3", "never-owed"))])
        assert await store.acks_due("b") == [Answer("i2")]
        assert await store.acks_due("c") == [Answer("i1")]


class TestInbound:
    """Dedupe on (iss, jti) and the answers we owe (PP-23, MP-7, PUSH-9)."""

    async def test_dedupe_on_iss_and_jti_across_partners(self, store: Store) -> None:
        """Pitfall 16: jti is unique per issuer; a second copy, via any partner, is dropped."""
        first = await store.accept_inbound("b", [inbound("https://b", "1")], [])
        again = await store.accept_inbound(
            "c",
            [inbound("https://b", "1"), inbound("https://c", "1"), inbound("https://c", "1")],
            [],
        )
        assert first == [True]
        assert again == [False, True, False]
        rows = await store.fetch_inbox(after_seq=0, limit=10)
        assert [(r.partner, r.iss, r.jti) for r in rows] == [
            ("b", "https://b", "1"),
            ("c", "https://c", "1"),
        ]

    async def test_duplicates_and_invalid_sets_are_still_answered(self, store: Store) -> None:
        """PUSH-9/PP-23: a duplicate gets its ack again; an invalid SET its setErr."""
        await store.accept_inbound("b", [inbound("https://b", "1")], [Answer("1")])
        await store.apply("b", [AcksSent(("1",))])
        fresh = await store.accept_inbound(
            "b",
            [inbound("https://b", "1")],
            [Answer("1"), Answer("bad", "invalid_key", "unknown kid")],
        )
        assert fresh == [False]
        owed = await store.acks_due("b")
        assert sorted(owed, key=lambda a: a.jti) == [
            Answer("1"),
            Answer("bad", "invalid_key", "unknown kid"),
        ]

    async def test_latest_answer_wins(self, store: Store) -> None:
        """One answer per (partner, jti): a later verdict replaces the earlier one."""
        await store.accept_inbound("b", [], [Answer("1")])
        await store.accept_inbound("b", [], [Answer("1", "invalid_request", "bad")])
        assert await store.acks_due("b") == [Answer("1", "invalid_request", "bad")]

    async def test_inbox_order_and_done_is_final(self, store: Store) -> None:
        """Inbox order across partners; a row marked done is never handed out again."""
        await store.accept_inbound("b", [inbound("https://b", "1"), inbound("https://b", "2")], [])
        await store.accept_inbound("c", [inbound("https://c", "3")], [])
        await store.accept_inbound("b", [inbound("https://b", "4")], [])
        rows = await store.fetch_inbox(after_seq=0, limit=10)
        assert [r.jti for r in rows] == ["1", "2", "3", "4"]
        assert [r.seq for r in rows] == sorted(r.seq for r in rows)
        await store.mark_done([rows[0].seq, rows[2].seq, 999_999])
        await store.mark_done([rows[0].seq])  # twice is harmless
        left = await store.fetch_inbox(after_seq=0, limit=10)
        assert [r.jti for r in left] == ["2", "4"]
        page = await store.fetch_inbox(after_seq=rows[1].seq, limit=1)
        assert [r.jti for r in page] == ["4"]
        # A done SET arriving again stays done: dedupe outlives the inbox round.
        assert await store.accept_inbound("b", [inbound("https://b", "1")], []) == [False]
        assert [r.jti for r in await store.fetch_inbox(after_seq=0, limit=10)] == ["2", "4"]

    async def test_claims_round_trip(self, store: Store) -> None:
        """Claims come back equal, nested values and non-ASCII text included."""
        claims = {
            "iss": "https://b",
            "jti": "1",
            "iat": 1_700_000_000,
            "events": {"https://e/x": {"reason": "ünïcödé 🚀", "list": [1, 2.5, None, True]}},
            "big": 2**70,
        }
        await store.accept_inbound("b", [InboundNew("https://b", "1", "t", claims)], [])
        (row,) = await store.fetch_inbox(after_seq=0, limit=1)
        assert row.claims == claims
        assert (row.partner, row.iss, row.jti, row.token) == ("b", "https://b", "1", "t")


class TestStatus:
    """failures() and stats(): what `setpeer status` shows."""

    async def test_failures_oldest_first_and_filtered(self, store: Store) -> None:
        """failures() lists every failed SET in enqueue order; a partner filter narrows."""
        await store.enqueue([out("b", "1"), out("c", "2"), out("b", "3")])
        await store.apply("b", [Failed("3", "delivery_exhausted", "10 attempts")])
        await store.apply("c", [Failed("2", "invalid_audience", "aud")])
        await store.apply("b", [Failed("1", "invalid_key", "kid")])
        assert [f.jti for f in await store.failures()] == ["1", "2", "3"]
        assert [f.jti for f in await store.failures("b")] == ["1", "3"]
        assert await store.failures("nobody") == []

    async def test_stats_counts_every_state(self, store: Store) -> None:
        """pending, inflight, acked, failed, received, and the in-flight summary."""
        assert await store.stats() == {}
        await store.enqueue([out("b", str(i)) for i in range(6)])
        await store.apply("b", [Sent("0", 1, 50.0), Sent("1", 3, 20.0), Sent("2", 1, 10.0)])
        await store.apply("b", [Acked("2"), Failed("3", "invalid_key", "k")])
        await store.accept_inbound("b", [inbound("https://b", "x"), inbound("https://b", "y")], [])
        await store.accept_inbound("b", [inbound("https://b", "x")], [])  # duplicate
        await store.accept_inbound("c", [inbound("https://c", "z")], [Answer("z")])
        stats = await store.stats()
        assert stats["b"] == PartnerCounts(
            pending=2,
            inflight=2,
            acked=1,
            failed=1,
            received=2,
            max_attempts=3,
            next_attempt_at=20.0,
            unhandled=2,
        )
        assert stats["c"] == PartnerCounts(received=1, unhandled=1)
        await store.apply("b", [Acked("0"), Acked("1")])
        assert (await store.stats())["b"] == PartnerCounts(2, 0, 3, 1, 2, 0, None, 2, 0)

    async def test_sessions_recorded(self, store: Store) -> None:
        """The last recorded session state per partner."""
        await store.set_session("b", "connecting")
        await store.set_session("b", "websocket")
        await store.set_session("c", "down")
        assert await store.sessions() == {"b": "websocket", "c": "down"}

    async def test_heartbeats(self, store: Store) -> None:
        """beat() replaces a node's row, leave() deletes it, nodes() lists the newest
        beat first; a node silent for NODES_FORGOTTEN is deleted by another's beat."""
        assert await store.nodes() == []
        await store.beat(NodeRow("n1", "h", 10, 100.0, 101.0))
        await store.beat(NodeRow("n2", "h\x00\n", 20, 100.0, 102.0))
        await store.beat(NodeRow("n1", "h", 10, 100.0, 103.0))
        assert await store.nodes() == [
            NodeRow("n1", "h", 10, 100.0, 103.0),
            NodeRow("n2", "h\x00\n", 20, 100.0, 102.0),
        ]
        await store.leave("n1")
        await store.leave("never-beat")
        assert [n.owner for n in await store.nodes()] == ["n2"]
        await store.beat(NodeRow("n3", "h", 30, 0.0, 102.0 + NODES_FORGOTTEN + 1))
        assert [n.owner for n in await store.nodes()] == ["n3"]
        for bad in (
            NodeRow("n", "h", -1, 0.0, 1.0),
            NodeRow("n", "h", 1, 0.0, float("nan")),
            NodeRow("n", 5, 1, 0.0, 1.0),  # type: ignore[arg-type]
            NodeRow("\ud800", "h", 1, 0.0, 1.0),
        ):
            with pytest.raises(InvalidValue):
                await store.beat(bad)


class TestLifecycle:
    """Reopening, closing, and many writers at once."""

    async def test_reopen_keeps_everything(self, backend: Backend) -> None:
        """A durable store closed and reopened holds every row and count."""
        if not backend.durable:
            pytest.skip("the memory store ends with its process by design")
        store = await backend.open()
        await store.enqueue([out("b", "1"), out("b", "2"), out("b", "3")])
        await store.apply("b", [Sent("1", 2, 42.0), Failed("3", "invalid_key", "kid")])
        await store.accept_inbound(
            "b", [inbound("https://b", "i1"), inbound("https://b", "i2")], [Answer("i1")]
        )
        (first, _) = await store.fetch_inbox(after_seq=0, limit=10)
        await store.mark_done([first.seq])
        await store.set_session("b", "websocket")
        stats = await store.stats()
        await store.aclose()

        store = await backend.open()
        try:
            rows = await store.load_outbound("b", limit=10)
            assert [(r.jti, r.attempts, r.next_attempt_at) for r in rows] == [
                ("1", 2, 42.0),
                ("2", 0, None),
            ]
            (failure,) = await store.failures()
            assert failure == FailureRow("b", "3", "invalid_key", "kid", 0, failure.at)
            assert await store.acks_due("b") == [Answer("i1")]
            assert [r.jti for r in await store.fetch_inbox(after_seq=0, limit=10)] == ["i2"]
            assert await store.stats() == stats
            assert await store.sessions() == {"b": "websocket"}
            with pytest.raises(DuplicateJti):
                await store.enqueue([out("b", "1")])
            await store.enqueue([out("b", "4")])
            assert (await store.load_outbound("b", limit=10))[-1].seq > rows[-1].seq
        finally:
            await store.aclose()

    async def test_closed_store_refuses_work(self, backend: Backend) -> None:
        """After aclose() every call raises StoreError; closing twice is fine."""
        store = await backend.open()
        await store.aclose()
        await store.aclose()
        with pytest.raises(StoreError):
            await store.enqueue([out("b", "1")])
        with pytest.raises(StoreError):
            await store.load_outbound("b", limit=1)
        with pytest.raises(StoreError):
            await store.stats()

    async def test_probe_write(self, backend: Backend) -> None:
        """probe_write() passes on an open store, changes nothing, and refuses once
        it is closed (readiness asks it)."""
        store = await backend.open()
        try:
            await store.enqueue([out("b", "1")])
            stats = await store.stats()
            for _ in range(3):
                await store.probe_write()
            assert await store.stats() == stats
            assert await jtis(store, "b") == ["1"]
        finally:
            await store.aclose()
        with pytest.raises(StoreError):
            await store.probe_write()

    async def test_close_finishes_queued_writes(self, backend: Backend) -> None:
        """Writes queued before aclose() are committed, not dropped."""
        store = await backend.open()
        pending = [asyncio.ensure_future(store.enqueue([out("b", str(i))])) for i in range(50)]
        await asyncio.sleep(0)  # the enqueues are queued, not yet committed
        await store.aclose()
        await asyncio.gather(*pending)
        if backend.durable:
            store = await backend.open()
            try:
                assert len(await jtis(store, "b")) == 50
            finally:
                await store.aclose()

    async def test_many_tasks_enqueue_at_once(self, store: Store) -> None:
        """100 tasks × 20 SETs to 4 partners: every SET lands once, per-task order kept."""

        async def worker(n: int) -> None:
            for i in range(0, 20, 2):
                await store.enqueue(
                    [out(f"p{n % 4}", f"{n}.{i}"), out(f"p{n % 4}", f"{n}.{i + 1}")]
                )

        await asyncio.gather(*(worker(n) for n in range(100)))
        seen = []
        for p in range(4):
            rows = await jtis(store, f"p{p}")
            seen += rows
            for n in range(p, 100, 4):
                assert [j for j in rows if j.split(".")[0] == str(n)] == [
                    f"{n}.{i}" for i in range(20)
                ]
        assert len(seen) == len(set(seen)) == 2000
        assert sum(c.pending for c in (await store.stats()).values()) == 2000


class TestHostileInput:
    """Strings are data, never SQL; bad values end in InvalidValue."""

    @pytest.mark.parametrize("text", HOSTILE)
    async def test_hostile_strings_round_trip(self, store: Store, text: str) -> None:
        """Unicode, NUL, quotes and SQL in every text field come back unchanged."""
        await store.enqueue([OutboundNew(text, text, text + "tok")])
        await store.apply(text, [Sent(text, 1, 1.0), Failed(text, text, text)])
        (failure,) = await store.failures(text)
        assert failure == FailureRow(text, text, text, text, 1, failure.at)
        fresh = await store.accept_inbound(
            text, [InboundNew(text, text, text, {text: text})], [Answer(text, text, text)]
        )
        assert fresh == [True]
        (row,) = await store.fetch_inbox(after_seq=0, limit=5)
        assert (row.partner, row.iss, row.jti, row.token, row.claims) == (
            text,
            text,
            text,
            text,
            {text: text},
        )
        assert await store.acks_due(text) == [Answer(text, text, text)]
        assert (await store.stats())[text].failed == 1

    async def test_large_tokens(self, store: Store) -> None:
        """64 KiB tokens (and a 1 MiB one) are stored and returned whole."""
        tokens = [("x" * 65_536) + str(i) for i in range(20)] + ["y" * 1_048_576]
        await store.enqueue([out("b", str(i), t) for i, t in enumerate(tokens)])
        assert [r.token for r in await store.load_outbound("b", limit=100)] == tokens
        await store.accept_inbound("b", [InboundNew("i", "1", tokens[-1], {"k": tokens[0]})], [])
        (row,) = await store.fetch_inbox(after_seq=0, limit=1)
        assert row.token == tokens[-1] and row.claims == {"k": tokens[0]}

    @pytest.mark.parametrize(
        "item",
        [
            OutboundNew("b", "\ud800", "t"),
            OutboundNew("\udfff", "j", "t"),
            OutboundNew("b", "j", "t\ud83d"),
            OutboundNew("b", b"j", "t"),  # type: ignore[arg-type]
            OutboundNew("b", 7, "t"),  # type: ignore[arg-type]
            OutboundNew(None, "j", "t"),  # type: ignore[arg-type]
        ],
    )
    async def test_unstorable_outbound_refused(self, store: Store, item: OutboundNew) -> None:
        """A lone surrogate or a non-string is InvalidValue, and nothing of the call lands."""
        with pytest.raises(InvalidValue):
            await store.enqueue([out("b", "ok"), item])
        assert await jtis(store, "b") == []

    async def test_unstorable_inbound_refused(self, store: Store) -> None:
        """Bad inbound values and claims that are not JSON are refused whole."""
        bad_items = [
            InboundNew("i", "\ud800", "t", {}),
            InboundNew("i", "j", "t", {"x": {1, 2}}),
            InboundNew("i", "j", "t", {"x": float("nan")}),
            InboundNew("i", "j", "t", ["not", "a", "mapping"]),  # type: ignore[arg-type]
        ]
        for item in bad_items:
            with pytest.raises(InvalidValue):
                await store.accept_inbound("b", [inbound("i", "ok"), item], [Answer("ok")])
        with pytest.raises(InvalidValue):
            await store.accept_inbound("b", [], [Answer("j", "\udc00")])
        assert await store.fetch_inbox(after_seq=0, limit=5) == []
        assert await store.acks_due("b") == []

    async def test_inbox_pages_of_every_size(self, store: Store) -> None:
        """fetch_inbox returns the rows not done after ``after_seq``, in order, up to
        ``limit``, whatever the page size (SQLite reads the first rows of a page on
        the event loop and the rest in a worker thread: both halves, joined)."""
        await store.accept_inbound("b", [inbound("https://b", f"j{i:02}") for i in range(40)], [])
        everything = await store.fetch_inbox(after_seq=0, limit=100)
        assert [row.jti for row in everything] == [f"j{i:02}" for i in range(40)]
        await store.mark_done([row.seq for row in everything[5:30:2]])
        left = [row for row in everything if row not in everything[5:30:2]]
        for limit in (0, 1, 15, 16, 17, 27, 28, 40):
            page = await store.fetch_inbox(after_seq=0, limit=limit)
            assert page == left[:limit], limit
        after = left[3].seq
        assert await store.fetch_inbox(after_seq=after, limit=20) == left[4:24]

    async def test_parsed_claims_read_back_exactly(self, store: Store) -> None:
        """Claims from the strict parser (``parsed``, written by orjson) read back equal:
        integers beyond 64 bits stay exact ints, non-ASCII text and floats as given."""
        claims = {
            "big": 2**70,
            "edge": [2**63 - 1, -(2**63), 2**64 - 1, 10**19],
            "name": "Zoë 😀 \u2028",
            "f": [0.1, -0.0, 1e300],
            "nested": {"a": [None, True, False, {}]},
        }
        items = [InboundNew("i", f"p{p}", "t", claims, parsed=p) for p in (True, False)]
        await store.accept_inbound("b", items, [])
        rows = await store.fetch_inbox(after_seq=0, limit=5)
        assert [row.claims for row in rows] == [claims, claims]
        assert all(type(row.claims["big"]) is int for row in rows)

    async def test_apply_with_unstorable_values(self, store: Store) -> None:
        """Effects naming an impossible jti match nothing; a bad err refuses the call."""
        await store.enqueue([out("b", "j1"), out("b", "j2")])
        await store.accept_inbound("b", [], [Answer("i1")])
        await store.apply(
            "b",
            [Acked("\ud800"), Sent(None, 1, 1.0), AcksSent(("\udfff", 5))],  # type: ignore[arg-type]
        )
        with pytest.raises(InvalidValue):
            await store.apply("b", [Acked("j2"), Failed("j1", "\ud800", "d")])
        assert await jtis(store, "b") == ["j1", "j2"]
        assert await store.acks_due("b") == [Answer("i1")]

    @pytest.mark.parametrize("value", [-1, 2**63, True, 1.5, "3"])
    async def test_bad_counts_refused(self, store: Store, value: Any) -> None:
        """Negative, oversized, bool, float or string limits and seqs are InvalidValue."""
        with pytest.raises(InvalidValue):
            await store.load_outbound("b", limit=value)
        with pytest.raises(InvalidValue):
            await store.load_outbound("b", limit=5, after_seq=value)
        with pytest.raises(InvalidValue):
            await store.fetch_inbox(after_seq=value, limit=5)
        with pytest.raises(InvalidValue):
            await store.mark_done([value])


async def test_stats_is_cheap(store: Store) -> None:
    """stats() stays fast with a large finished outbox (it must run every second)."""
    await store.enqueue([out("b", str(i)) for i in range(20_000)])
    await store.apply("b", [Acked(str(i)) for i in range(19_990)])
    start = time.perf_counter()
    for _ in range(20):
        stats = await store.stats()
    per_call = (time.perf_counter() - start) / 20
    assert stats["b"].acked == 19_990 and stats["b"].pending == 10
    print(f"stats() with 20,000 outbox rows: {per_call * 1e3:.2f} ms")
    assert per_call < 50 * MS
