"""The memory store: the contract without durability, for tests and ephemeral use.

It keeps the same indexes the SQL backends keep (open rows per partner in FIFO
order, not-done inbox rows, running counts), so a long test run does not turn
quadratic. Writes happen at once; ``commits`` counts event-loop turns with writes,
which is what one group commit covers in the durable backends.
"""

from __future__ import annotations

import asyncio
import bisect
import dataclasses
import time
from collections.abc import AsyncIterator, Sequence

import anyio
import anyio.lowlevel

from ..errors import StoreError
from ..protocol.effects import Acked, AcksSent, Effect, Failed, Sent
from .base import (
    SCHEMA_VERSION,
    Answer,
    DuplicateJti,
    FailureRow,
    InboundNew,
    InboxRow,
    OutboundNew,
    OutboundRow,
    PartnerCounts,
    check_count,
    check_text,
    check_ttl,
    decode_claims,
    encode_claims,
    is_text,
)

__all__ = ["LocalLeases", "MemoryStore"]


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


def _by_seq(row: _Outbound) -> int:
    return row.seq


@dataclasses.dataclass(slots=True)
class _Counts:
    pending: int = 0
    inflight: int = 0
    acked: int = 0
    failed: int = 0
    received: int = 0


class LocalLeases:
    """Partner leases held in this process (memory and SQLite: one node per store).

    The rules are the PostgreSQL ones (``Store.claim_partner``): a live lease of
    another owner is refused until it expires. The clock is monotonic, so a wall
    clock step neither frees nor stretches a lease.
    """

    def __init__(self) -> None:
        self._leases: dict[str, tuple[str, float]] = {}  # partner -> (owner, expires_at)

    def claim(self, partner: object, owner: object, ttl: object) -> bool:
        """Take or renew; True if ``owner`` holds the lease now (checks values first)."""
        name, holder = check_text(partner, "partner"), check_text(owner, "owner")
        seconds = check_ttl(ttl)
        now = time.monotonic()
        current = self._leases.get(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._leases[name] = (holder, now + seconds)
        return True

    def release(self, partner: object, owner: object) -> None:
        """Drop ``owner``'s lease on ``partner``; another owner's lease stays."""
        name, holder = check_text(partner, "partner"), check_text(owner, "owner")
        current = self._leases.get(name)
        if current is not None and current[0] == holder:
            del self._leases[name]


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
        self._leases = LocalLeases()
        self._turn_open = False
        self._closed = False

    # -- bookkeeping ---------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

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
        keys = [
            (
                check_text(i.partner, "partner"),
                check_text(i.jti, "jti"),
                check_text(i.token, "token"),
            )
            for i in items
        ]
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
        check_text(partner, "partner")
        for effect in effects:  # refuse the whole call before changing anything
            if isinstance(effect, Failed):
                check_text(effect.err, "err")
                check_text(effect.description, "description")
        open_rows = self._open.get(partner, {})
        counts = self._count(partner) if open_rows else None
        for effect in effects:
            if isinstance(effect, AcksSent):
                owed = self._acks_due.get(partner, {})
                for jti in effect.jtis:
                    if is_text(jti):
                        owed.pop(jti, None)
                continue
            row = open_rows.get(effect.jti) if is_text(effect.jti) else None
            if row is None or counts is None:
                continue  # unknown or already finished: never reopened (MP-9)
            if isinstance(effect, Sent):
                if row.attempts == 0 and effect.attempts > 0:
                    counts.pending -= 1
                    counts.inflight += 1
                row.attempts = max(row.attempts, effect.attempts)
                row.next_attempt_at = effect.retry_at
                continue
            del open_rows[effect.jti]
            if row.attempts:
                counts.inflight -= 1
            else:
                counts.pending -= 1
            if isinstance(effect, Acked):
                counts.acked += 1
            elif isinstance(effect, Failed):
                counts.failed += 1
                row.err, row.description = effect.err, effect.description
                bisect.insort(self._failed, row, key=_by_seq)  # oldest first, as SQL
        self._committed()
        await anyio.lowlevel.checkpoint()

    # -- inbox ---------------------------------------------------------------------

    async def accept_inbound(
        self, partner: str, items: Sequence[InboundNew], answers: Sequence[Answer]
    ) -> list[bool]:
        self._check_open()
        check_text(partner, "partner")
        checked = [
            (
                check_text(i.iss, "iss"),
                check_text(i.jti, "jti"),
                check_text(i.token, "token"),
                encode_claims(i.claims),
            )
            for i in items
        ]
        owed = [
            Answer(
                check_text(a.jti, "jti"),
                None if a.err is None else check_text(a.err, "err"),
                None if a.description is None else check_text(a.description, "description"),
            )
            for a in answers
        ]
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
            self._count(partner).received += 1
            fresh.append(True)
        due = self._acks_due.setdefault(partner, {})
        for answer in owed:
            due[answer.jti] = answer
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
        for seq in seqs:
            self._inbox_new.pop(check_count(seq, "seq"), None)
        if seqs:
            self._committed()
        await anyio.lowlevel.checkpoint()

    # -- status --------------------------------------------------------------------

    async def failures(self, partner: str | None = None) -> list[FailureRow]:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return [
            FailureRow(r.partner, r.jti, r.err, r.description, r.attempts)
            for r in self._failed
            if partner is None or r.partner == partner
        ]

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
            )
        return result

    async def set_session(self, partner: str, state: str) -> None:
        self._check_open()
        self._sessions[check_text(partner, "partner")] = check_text(state, "state")
        await anyio.lowlevel.checkpoint()

    async def sessions(self) -> dict[str, str]:
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return dict(self._sessions)

    async def claim_partner(self, partner: str, owner: str, ttl: float) -> bool:
        self._check_open()
        held = self._leases.claim(partner, owner, ttl)
        await anyio.lowlevel.checkpoint()
        return held

    async def release_partner(self, partner: str, owner: str) -> None:
        self._check_open()
        self._leases.release(partner, owner)
        await anyio.lowlevel.checkpoint()

    async def watch(self) -> AsyncIterator[str | None]:
        """Never yields: only this process can write to a memory store, and the node
        tells its Links about its own enqueues directly."""
        self._check_open()
        await anyio.sleep_forever()
        yield None  # pragma: no cover

    async def aclose(self) -> None:
        self._closed = True
        await anyio.lowlevel.checkpoint()
