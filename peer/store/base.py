"""The store interface: outbox, inbox and the answers we owe (DESIGN.md "Storage").

Small and coarse, like httpx's ``BaseTransport``: each method is one transaction.
Backends: ``memory.py`` (tests, ephemeral use) and ``sqlite.py`` (the embedded
default); the contract suite in ``tests/store/test_contract.py`` runs on each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from ..errors import StoreError
from ..protocol.effects import Effect

__all__ = [
    "Answer",
    "DuplicateJti",
    "FailureRow",
    "InboundNew",
    "InboxRow",
    "OutboundNew",
    "OutboundRow",
    "PartnerCounts",
    "SCHEMA_VERSION",
    "Store",
]

SCHEMA_VERSION = 1


class DuplicateJti(StoreError, ValueError):
    """A jti was enqueued twice for one partner: a jti is never reused (MP-9)."""


@dataclasses.dataclass(frozen=True, slots=True)
class OutboundNew:
    """A signed SET to commit to the outbox."""

    partner: str
    jti: str
    token: str


@dataclasses.dataclass(frozen=True, slots=True)
class OutboundRow:
    """An outbox row not yet acked or failed, in FIFO order (``seq``)."""

    seq: int
    partner: str
    jti: str
    token: str
    attempts: int
    next_attempt_at: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class InboundNew:
    """A verified SET to commit to the inbox."""

    iss: str
    jti: str
    token: str
    claims: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class InboxRow:
    """An inbox row the application has not marked done."""

    seq: int
    partner: str
    iss: str
    jti: str
    token: str
    claims: Mapping[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """An answer we owe the partner: an ack (``err`` None) or a setErr."""

    jti: str
    err: str | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FailureRow:
    """An outbound SET that ended in error."""

    partner: str
    jti: str
    err: str
    description: str
    attempts: int


@dataclasses.dataclass(frozen=True, slots=True)
class PartnerCounts:
    """Per-partner counts for ``status``.

    ``pending``: never sent; ``inflight``: sent and not answered; ``received``:
    distinct inbound SETs; ``max_attempts`` and ``next_attempt_at`` describe the
    unanswered rows (most attempts so far, earliest planned retry).
    """

    pending: int = 0
    inflight: int = 0
    acked: int = 0
    failed: int = 0
    received: int = 0
    max_attempts: int = 0
    next_attempt_at: float | None = None


class Store(Protocol):
    """What a backend provides. Every method is one transaction."""

    async def enqueue(self, items: Sequence[OutboundNew]) -> None:
        """Commit SETs to the outbox; durable on return. Raises DuplicateJti."""

    async def load_outbound(
        self, partner: str, *, limit: int, after_seq: int = 0
    ) -> list[OutboundRow]:
        """Unfinished rows for ``partner`` with ``seq > after_seq``, oldest first."""

    async def apply(self, partner: str, effects: Sequence[Effect]) -> None:
        """Persist the Ledger's decisions for ``partner`` in one transaction."""

    async def accept_inbound(
        self, partner: str, items: Sequence[InboundNew], answers: Sequence[Answer]
    ) -> list[bool]:
        """Store verified SETs (dedupe on ``(iss, jti)``) and owed answers together.

        Returns one flag per item: True if new, False if a duplicate.
        """

    async def acks_due(self, partner: str) -> list[Answer]:
        """Answers still owed to ``partner`` (after a restart)."""

    async def fetch_inbox(self, *, after_seq: int, limit: int) -> list[InboxRow]:
        """Inbound SETs not yet done, with ``seq > after_seq``, in inbox order."""

    async def mark_done(self, seqs: Sequence[int]) -> None:
        """The application handled these inbox rows: never hand them out again."""

    async def failures(self, partner: str | None = None) -> list[FailureRow]:
        """Outbound SETs that ended in error, oldest first."""

    async def stats(self) -> dict[str, PartnerCounts]:
        """Counts per partner that has any row."""

    async def set_session(self, partner: str, state: str) -> None:
        """Record the partner's session state for ``setpeer status``."""

    async def sessions(self) -> dict[str, str]:
        """Recorded session states."""

    def watch(self) -> AsyncIterator[str | None]:
        """Partners whose outbox another process changed (None: any), as they happen."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
