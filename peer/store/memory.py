"""The memory store: the contract without durability, for tests and ephemeral use."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

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
)

__all__ = ["MemoryStore"]

PENDING, ACKED, FAILED = 0, 1, 2


class MemoryStore:
    """Everything in dicts; ``version`` mirrors the durable backends' schema version."""

    version = SCHEMA_VERSION

    def __init__(self) -> None:
        self._seq = 0
        self._outbox: dict[tuple[str, str], dict[str, Any]] = {}
        self._inbox: dict[tuple[str, str], dict[str, Any]] = {}
        self._acks_due: dict[tuple[str, str], Answer] = {}
        self._sessions: dict[str, str] = {}
        self.commits = 0

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    async def enqueue(self, items: Sequence[OutboundNew]) -> None:
        keys = [(item.partner, item.jti) for item in items]
        if len(set(keys)) != len(keys) or any(key in self._outbox for key in keys):
            raise DuplicateJti("a jti is never reused for one partner (MP-9)")
        for item in items:
            self._outbox[(item.partner, item.jti)] = {
                "seq": self._next(),
                "partner": item.partner,
                "jti": item.jti,
                "token": item.token,
                "state": PENDING,
                "attempts": 0,
                "next_attempt_at": None,
                "err": None,
                "description": None,
            }
        self.commits += 1
        await anyio.lowlevel.checkpoint()

    async def load_outbound(
        self, partner: str, *, limit: int, after_seq: int = 0
    ) -> list[OutboundRow]:
        rows = sorted(
            (
                r
                for (p, _), r in self._outbox.items()
                if p == partner and r["state"] == PENDING and r["seq"] > after_seq
            ),
            key=lambda r: r["seq"],
        )[:limit]
        await anyio.lowlevel.checkpoint()
        return [
            OutboundRow(
                r["seq"], partner, r["jti"], r["token"], r["attempts"], r["next_attempt_at"]
            )
            for r in rows
        ]

    async def apply(self, partner: str, effects: Sequence[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, AcksSent):
                for jti in effect.jtis:
                    self._acks_due.pop((partner, jti), None)
                continue
            row = self._outbox.get((partner, effect.jti))
            if row is None or row["state"] != PENDING:
                continue
            if isinstance(effect, Sent):
                row["attempts"] = max(row["attempts"], effect.attempts)
                row["next_attempt_at"] = effect.retry_at
            elif isinstance(effect, Acked):
                row["state"] = ACKED
            elif isinstance(effect, Failed):
                row["state"] = FAILED
                row["err"], row["description"] = effect.err, effect.description
        self.commits += 1
        await anyio.lowlevel.checkpoint()

    async def accept_inbound(
        self, partner: str, items: Sequence[InboundNew], answers: Sequence[Answer]
    ) -> list[bool]:
        fresh: list[bool] = []
        for item in items:
            key = (item.iss, item.jti)
            if key in self._inbox:
                fresh.append(False)
                continue
            self._inbox[key] = {
                "seq": self._next(),
                "partner": partner,
                "iss": item.iss,
                "jti": item.jti,
                "token": item.token,
                "claims": dict(item.claims),
                "done": False,
            }
            fresh.append(True)
        for answer in answers:
            self._acks_due[(partner, answer.jti)] = answer
        self.commits += 1
        await anyio.lowlevel.checkpoint()
        return fresh

    async def acks_due(self, partner: str) -> list[Answer]:
        await anyio.lowlevel.checkpoint()
        return [a for (p, _), a in self._acks_due.items() if p == partner]

    async def fetch_inbox(self, *, after_seq: int, limit: int) -> list[InboxRow]:
        rows = sorted(
            (r for r in self._inbox.values() if not r["done"] and r["seq"] > after_seq),
            key=lambda r: r["seq"],
        )[:limit]
        await anyio.lowlevel.checkpoint()
        return [
            InboxRow(r["seq"], r["partner"], r["iss"], r["jti"], r["token"], r["claims"])
            for r in rows
        ]

    async def mark_done(self, seqs: Sequence[int]) -> None:
        wanted = set(seqs)
        for row in self._inbox.values():
            if row["seq"] in wanted:
                row["done"] = True
        self.commits += 1
        await anyio.lowlevel.checkpoint()

    async def failures(self, partner: str | None = None) -> list[FailureRow]:
        await anyio.lowlevel.checkpoint()
        rows = sorted(
            (
                r
                for r in self._outbox.values()
                if r["state"] == FAILED and (partner is None or r["partner"] == partner)
            ),
            key=lambda r: r["seq"],
        )
        return [
            FailureRow(r["partner"], r["jti"], r["err"], r["description"], r["attempts"])
            for r in rows
        ]

    async def stats(self) -> dict[str, PartnerCounts]:
        await anyio.lowlevel.checkpoint()
        counts: dict[str, dict[str, Any]] = {}
        for row in self._outbox.values():
            c = counts.setdefault(row["partner"], _zero())
            if row["state"] == ACKED:
                c["acked"] += 1
            elif row["state"] == FAILED:
                c["failed"] += 1
            else:
                c["inflight" if row["attempts"] else "pending"] += 1
                c["max_attempts"] = max(c["max_attempts"], row["attempts"])
                if row["attempts"] and row["next_attempt_at"] is not None:
                    nxt = c["next_attempt_at"]
                    c["next_attempt_at"] = (
                        min(nxt, row["next_attempt_at"]) if nxt else row["next_attempt_at"]
                    )
        for row in self._inbox.values():
            counts.setdefault(row["partner"], _zero())["received"] += 1
        return {partner: PartnerCounts(**c) for partner, c in counts.items()}

    async def set_session(self, partner: str, state: str) -> None:
        self._sessions[partner] = state
        await anyio.lowlevel.checkpoint()

    async def sessions(self) -> dict[str, str]:
        await anyio.lowlevel.checkpoint()
        return dict(self._sessions)

    async def watch(self) -> AsyncIterator[str | None]:
        # Nothing outside this process can write to a memory store.
        await anyio.sleep_forever()
        yield None  # pragma: no cover

    async def aclose(self) -> None:
        await anyio.lowlevel.checkpoint()


def _zero() -> dict[str, Any]:
    return {
        "pending": 0,
        "inflight": 0,
        "acked": 0,
        "failed": 0,
        "received": 0,
        "max_attempts": 0,
        "next_attempt_at": None,
    }
