"""The memory store: the contract without durability, for tests and ephemeral use.

It keeps the same indexes the SQL backends keep (open rows per partner in FIFO
order, not-done inbox rows, running counts), so a long test run does not turn
quadratic. Writes happen at once; ``commits`` counts event-loop turns with writes,
which is what one group commit covers in the durable backends.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import dataclasses
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import anyio
import anyio.lowlevel

from ..protocol.effects import Effect
from .base import (
    NODES_FORGOTTEN,
    SCHEMA_VERSION,
    Answer,
    DuplicateJti,
    FailureRow,
    InboundNew,
    InboxRow,
    NodeRow,
    OutboundNew,
    OutboundRow,
    PartnerCounts,
    RefusalNew,
    RefusalRow,
    StreamRow,
    UnknownStream,
    stream_row,
)
from .checks import (
    StoreClosed,
    answers_owed,
    canonical_subject,
    check_count,
    check_stream_key,
    check_text,
    check_time,
    decode_claims,
    inbound_rows,
    node_fields,
    outbound_rows,
    refusal_plan,
    stream_fields,
)
from .plan import EffectPlan, plan_effects

__all__ = ["MemoryStore"]


@dataclasses.dataclass(slots=True)
class _Outbound:
    seq: int
    partner: str
    jti: str
    token: str
    attempts: int = 0
    next_attempt_at: float | None = None
    err: str = ""
    description: str = ""
    failed_at: float = 0.0


def _by_seq(row: _Outbound) -> int:
    return row.seq


@dataclasses.dataclass(slots=True)
class _Counts:
    pending: int = 0
    inflight: int = 0
    acked: int = 0
    failed: int = 0
    received: int = 0
    unhandled: int = 0
    refused: int = 0


class MemoryStore:
    """Everything in dicts; ``version`` mirrors the durable backends' schema version."""

    version = SCHEMA_VERSION

    def __init__(self) -> None:
        self.commits = 0
        self._out_seq = 0
        self._in_seq = 0
        self._outbox: set[tuple[str, str]] = set()
        self._open: dict[str, dict[str, _Outbound]] = {}  # partner -> jti -> row, FIFO
        self._failed: list[_Outbound] = []
        self._counts: dict[str, _Counts] = {}
        self._inbox: set[tuple[str, str]] = set()
        self._inbox_new: dict[int, InboxRow] = {}  # seq -> row, inbox order
        self._acks_due: dict[str, dict[str, Answer]] = {}
        self._sessions: dict[str, str] = {}
        self._nodes: dict[str, NodeRow] = {}
        self._refusal_seq = 0
        # partner -> its ring: (ordinal among the partner's refusals, row), oldest first
        self._refusals: dict[str, collections.deque[tuple[int, RefusalRow]]] = {}
        self._streams: dict[tuple[str, str, str], StreamRow] = {}
        # stream key -> its subjects' canonical JSON, in the order first added
        self._subjects: dict[tuple[str, str, str], dict[str, None]] = {}
        self._turn_open = False
        self._closed = False

    # -- bookkeeping ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosed("the store is closed")

    def _committed(self) -> None:
        """Count one commit per event-loop turn, as a group commit would."""
        if not self._turn_open:
            self._turn_open = True
            self.commits += 1
            asyncio.get_running_loop().call_soon(self._end_turn)

    def _end_turn(self) -> None:
        self._turn_open = False

    def _count(self, partner: str) -> _Counts:
        counts = self._counts.get(partner)
        if counts is None:
            counts = self._counts[partner] = _Counts()
        return counts

    # -- outbox --------------------------------------------------------------------

    async def enqueue(self, items: Sequence[OutboundNew]) -> None:
        self._check_open()
        keys = outbound_rows(items)
        pairs = [(partner, jti) for partner, jti, _ in keys]
        if len(set(pairs)) != len(pairs) or not self._outbox.isdisjoint(pairs):
            raise DuplicateJti("a jti is never reused for one partner (MP-9)")
        for partner, jti, token in keys:
            self._out_seq += 1
            self._outbox.add((partner, jti))
            self._open.setdefault(partner, {})[jti] = _Outbound(self._out_seq, partner, jti, token)
            self._count(partner).pending += 1
        if items:
            self._committed()
        await anyio.lowlevel.checkpoint()

    async def load_outbound(
        self, partner: str, *, limit: int, after_seq: int = 0
    ) -> list[OutboundRow]:
        self._check_open()
        check_text(partner, "partner")
        check_count(limit, "limit")
        check_count(after_seq, "after_seq")
        rows: list[OutboundRow] = []
        for row in self._open.get(partner, {}).values():
            if len(rows) >= limit:
                break
            if row.seq > after_seq:
                rows.append(
                    OutboundRow(
                        row.seq, partner, row.jti, row.token, row.attempts, row.next_attempt_at
                    )
                )
        await anyio.lowlevel.checkpoint()
        return rows

    async def apply(self, partner: str, effects: Sequence[Effect]) -> None:
        self._check_open()
        plan = plan_effects(partner, effects)
        if self._open.get(plan.partner):
            self._apply_to_rows(plan)
        owed = self._acks_due.get(plan.partner, {})
        for jti in plan.paid:
            owed.pop(jti, None)
        self._committed()
        await anyio.lowlevel.checkpoint()

    def _apply_to_rows(self, plan: EffectPlan) -> None:
        open_rows, counts = self._open[plan.partner], self._count(plan.partner)
        for jti, (attempts, retry_at) in plan.sent.items():
            if (row := open_rows.get(jti)) is not None:
                if row.attempts == 0 and attempts > 0:
                    counts.pending -= 1
                    counts.inflight += 1
                row.attempts = max(row.attempts, attempts)
                row.next_attempt_at = retry_at
        for jti in plan.acked:
            if self._finish(open_rows, counts, jti) is not None:
                counts.acked += 1
        now = time.time()
        for jti, (err, description) in plan.failed.items():
            if (row := self._finish(open_rows, counts, jti)) is not None:
                counts.failed += 1
                row.err, row.description, row.failed_at = err, description, now
                bisect.insort(self._failed, row, key=_by_seq)  # oldest first, as SQL

    @staticmethod
    def _finish(open_rows: dict[str, _Outbound], counts: _Counts, jti: str) -> _Outbound | None:
        """Take ``jti``'s row out of the open ones (None: unknown or finished already)."""
        row = open_rows.pop(jti, None)
        if row is not None:
            if row.attempts:
                counts.inflight -= 1
            else:
                counts.pending -= 1
        return row

    # -- inbox ---------------------------------------------------------------------

    async def accept_inbound(
        self, partner: str, items: Sequence[InboundNew], answers: Sequence[Answer]
    ) -> list[bool]:
        self._check_open()
        check_text(partner, "partner")
        checked = inbound_rows(items)
        owed = answers_owed(answers)
        fresh: list[bool] = []
        for iss, jti, token, claims in checked:
            # RFC 8417 §2.2: jti is unique per issuer, so (iss, jti) dedupes (pitfall 16).
            if (iss, jti) in self._inbox:
                fresh.append(False)
                continue
            self._inbox.add((iss, jti))
            self._in_seq += 1
            # Through JSON, as the durable backends store it: the same types come back.
            row = InboxRow(self._in_seq, partner, iss, jti, token, decode_claims(claims))
            self._inbox_new[self._in_seq] = row
            counts = self._count(partner)
            counts.received += 1
            counts.unhandled += 1
            fresh.append(True)
        due = self._acks_due.setdefault(partner, {})
        for jti, err, description in owed:
            due[jti] = Answer(jti, err, description)
        self._committed()
        await anyio.lowlevel.checkpoint()
        return fresh

    async def acks_due(self, partner: str) -> list[Answer]:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return list(self._acks_due.get(partner, {}).values())

    async def fetch_inbox(self, *, after_seq: int, limit: int) -> list[InboxRow]:
        self._check_open()
        check_count(after_seq, "after_seq")
        check_count(limit, "limit")
        rows: list[InboxRow] = []
        for seq, row in self._inbox_new.items():
            if len(rows) >= limit:
                break
            if seq > after_seq:
                rows.append(row)
        await anyio.lowlevel.checkpoint()
        return rows

    async def mark_done(self, seqs: Sequence[int]) -> None:
        self._check_open()
        for seq in [check_count(seq, "seq") for seq in seqs]:
            row = self._inbox_new.pop(seq, None)
            if row is not None:
                self._count(row.partner).unhandled -= 1
        if seqs:
            self._committed()
        await anyio.lowlevel.checkpoint()

    # -- status --------------------------------------------------------------------

    async def failures(
        self,
        partner: str | None = None,
        *,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[FailureRow]:
        self._check_open()
        if partner is not None:
            check_text(partner, "partner")
        after = None if since is None else check_time(since, "since")
        rows = [
            FailureRow(r.partner, r.jti, r.err, r.description, r.attempts, r.failed_at)
            for r in self._failed
            if (partner is None or r.partner == partner) and (after is None or r.failed_at >= after)
        ]
        if limit is not None:
            rows = rows[len(rows) - min(len(rows), check_count(limit, "limit")) :]
        await anyio.lowlevel.checkpoint()
        return rows

    async def record_refusals(
        self,
        items: Sequence[RefusalNew],
        keep: int,
        *,
        dropped: Mapping[str, int] | None = None,
    ) -> None:
        self._check_open()
        for partner, (added, rows) in refusal_plan(items, keep, dropped).items():
            counts = self._count(partner)
            counts.refused += added
            ring = self._refusals.setdefault(partner, collections.deque())
            n = counts.refused - len(rows)
            for jti, err, description, at in rows:
                n += 1
                self._refusal_seq += 1
                ring.append((n, RefusalRow(self._refusal_seq, partner, jti, err, description, at)))
            while ring and ring[0][0] <= counts.refused - keep:
                ring.popleft()
            self._committed()
        await anyio.lowlevel.checkpoint()

    async def refusals(
        self, *, since: float | None = None, partner: str | None = None, limit: int | None = None
    ) -> list[RefusalRow]:
        self._check_open()
        after = None if since is None else check_time(since, "since")
        newest = None if limit is None else check_count(limit, "limit")
        rings = (
            [self._refusals.get(check_text(partner, "partner"), ())]
            if partner is not None
            else list(self._refusals.values())
        )
        rows = [row for ring in rings for _, row in ring if after is None or row.at >= after]
        await anyio.lowlevel.checkpoint()
        rows.sort(key=lambda row: row.seq)
        return rows if newest is None else rows[max(0, len(rows) - newest) :]

    async def probe_write(self) -> None:
        self._check_open()
        await anyio.lowlevel.checkpoint()

    async def stats(self) -> dict[str, PartnerCounts]:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        result: dict[str, PartnerCounts] = {}
        for partner, c in self._counts.items():
            inflight = [r for r in self._open.get(partner, {}).values() if r.attempts]
            retries = [r.next_attempt_at for r in inflight if r.next_attempt_at is not None]
            result[partner] = PartnerCounts(
                c.pending,
                c.inflight,
                c.acked,
                c.failed,
                c.received,
                max((r.attempts for r in inflight), default=0),
                min(retries, default=None),
                c.unhandled,
                c.refused,
            )
        return result

    # -- streams -------------------------------------------------------------------

    async def save_stream(self, row: StreamRow) -> StreamRow:
        self._check_open()
        fields = stream_fields(row, time.time())
        # Through JSON, as the durable backends store it: the same types come back.
        saved = self._streams[fields[:3]] = stream_row(*fields)
        self._committed()
        await anyio.lowlevel.checkpoint()
        return saved

    async def streams(
        self, *, partner: str | None = None, role: str | None = None
    ) -> list[StreamRow]:
        self._check_open()
        if partner is not None:
            check_text(partner, "partner")
        if role is not None:
            check_stream_key("", role, "")
        await anyio.lowlevel.checkpoint()
        return [
            row
            for key, row in sorted(self._streams.items())
            if (partner is None or key[0] == partner) and (role is None or key[1] == role)
        ]

    async def delete_stream(self, partner: str, role: str, stream_id: str) -> bool:
        self._check_open()
        key = check_stream_key(partner, role, stream_id)
        self._subjects.pop(key, None)
        found = self._streams.pop(key, None) is not None
        self._committed()
        await anyio.lowlevel.checkpoint()
        return found

    async def add_subject(
        self, partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
    ) -> bool:
        self._check_open()
        key = check_stream_key(partner, role, stream_id)
        text = canonical_subject(subject)
        if key not in self._streams:
            raise UnknownStream(f"no stream {stream_id!r} ({role}) for partner {partner!r}")
        subjects = self._subjects.setdefault(key, {})
        new = text not in subjects
        subjects[text] = None
        self._committed()
        await anyio.lowlevel.checkpoint()
        return new

    async def remove_subject(
        self, partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
    ) -> bool:
        self._check_open()
        key = check_stream_key(partner, role, stream_id)
        text = canonical_subject(subject)
        subjects = self._subjects.get(key, {})
        found = text in subjects
        subjects.pop(text, None)
        self._committed()
        await anyio.lowlevel.checkpoint()
        return found

    async def subjects(self, partner: str, role: str, stream_id: str) -> list[Mapping[str, Any]]:
        self._check_open()
        key = check_stream_key(partner, role, stream_id)
        await anyio.lowlevel.checkpoint()
        return [decode_claims(text) for text in self._subjects.get(key, {})]

    async def set_session(self, partner: str, state: str) -> None:
        self._check_open()
        self._sessions[check_text(partner, "partner")] = check_text(state, "state")
        await anyio.lowlevel.checkpoint()

    async def sessions(self) -> dict[str, str]:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return dict(self._sessions)

    async def beat(self, node: NodeRow) -> None:
        self._check_open()
        owner, host, pid, started_at, beat_at = node_fields(node)
        forgotten = beat_at - NODES_FORGOTTEN
        self._nodes = {k: n for k, n in self._nodes.items() if n.beat_at >= forgotten}
        self._nodes[owner] = NodeRow(owner, host, pid, started_at, beat_at)
        await anyio.lowlevel.checkpoint()

    async def leave(self, owner: str) -> None:
        self._check_open()
        self._nodes.pop(check_text(owner, "owner"), None)
        await anyio.lowlevel.checkpoint()

    async def nodes(self) -> list[NodeRow]:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return sorted(self._nodes.values(), key=lambda n: n.beat_at, reverse=True)

    async def watch(self) -> AsyncIterator[str | None]:
        """Never yields: only this process can write to a memory store, and the node
        tells its Links about its own enqueues directly."""
        self._check_open()
        await anyio.sleep_forever()
        yield None  # pragma: no cover

    async def aclose(self) -> None:
        self._closed = True
        await anyio.lowlevel.checkpoint()
