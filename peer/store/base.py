"""The store interface: outbox, inbox and the answers we owe.

Small and coarse, like httpx's ``BaseTransport``: each method is one transaction.
Backends: ``memory.py`` (tests, ephemeral use), ``sqlite.py`` (the embedded
default) and ``postgres.py`` (several nodes on one database); the contract suite in
``tests/store/test_contract.py`` runs on each. What they share lives beside them:
argument checks (``checks.py``, re-exported here), the Ledger's effects as one plan
(``plan.py``) and the group-commit writer (``writer.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any, Protocol, cast

from ..errors import DuplicateJti
from ..protocol.effects import Effect
from .checks import (
    MAX_LEASE_TTL,
    MAX_SEQ,
    STREAM_ROLES,
    STREAM_STATUSES,
    InvalidValue,
    StoreClosed,
    UnknownStream,
    check_count,
    check_text,
    check_ttl,
    decode_claims,
    encode_claims,
    is_text,
)

__all__ = [
    "MAX_SEQ",
    "SCHEMA_VERSION",
    "MAX_LEASE_TTL",
    "NODES_FORGOTTEN",
    "Answer",
    "DuplicateJti",
    "FailureRow",
    "InboundNew",
    "InboxRow",
    "InvalidValue",
    "NodeRow",
    "OutboundNew",
    "OutboundRow",
    "PartnerCounts",
    "RefusalNew",
    "RefusalRow",
    "STREAM_ROLES",
    "STREAM_STATUSES",
    "SharedStore",
    "Store",
    "StoreClosed",
    "StreamRow",
    "UnknownStream",
    "check_count",
    "check_ttl",
    "check_text",
    "decode_claims",
    "encode_claims",
    "is_text",
    "shared_store",
    "stream_row",
]

SCHEMA_VERSION = 6
"""1: outbox, inbox, acks_due, sessions. 2: per-partner ``counts`` kept by triggers.
3: ``outbox_leases`` (row leases of nodes sharing a PostgreSQL store). 4: ``refusals``
(a ring per partner), ``outbox.failed_at``, ``counts.unhandled`` and ``counts.refused``.
5: ``streams`` and ``stream_subjects`` (SSF streams, both roles). 6: ``nodes`` (the
heartbeat of each running node, for ``setpeer status``)."""

NODES_FORGOTTEN = 3600.0
"""Seconds after its last beat a node's row is deleted (by another node's beat)."""


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
    """A verified SET to commit to the inbox.

    ``parsed``: the claims are as the strict JSON parser returned them (JSON by
    construction: no NaN, no sets), so the store may write them with orjson
    without checking them again.
    """

    iss: str
    jti: str
    token: str
    claims: Mapping[str, Any]
    parsed: bool = False


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
    """An answer we owe the partner: an ack (``err`` None) or a setErr (PP-23, MP-7)."""

    jti: str
    err: str | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FailureRow:
    """An outbound SET that ended in error (the partner's setErr, or out of attempts).

    ``at``: when it failed, Unix time; 0 for a row that failed before the store kept
    the time (schema 3 and older).
    """

    partner: str
    jti: str
    err: str
    description: str
    attempts: int
    at: float = 0.0


@dataclasses.dataclass(frozen=True, slots=True)
class RefusalNew:
    """A partner's SET we refused (we owe or sent it a setErr), to keep in the ring."""

    partner: str
    jti: str
    err: str
    description: str
    at: float


@dataclasses.dataclass(frozen=True, slots=True)
class RefusalRow:
    """A refusal kept in a partner's ring; ``seq`` orders all partners' refusals."""

    seq: int
    partner: str
    jti: str
    err: str
    description: str
    at: float


@dataclasses.dataclass(frozen=True, slots=True)
class NodeRow:
    """A running node's heartbeat: who (``owner``, unique per run), where (``host``,
    ``pid``), since when and its last beat (Unix times, the node's clock)."""

    owner: str
    host: str
    pid: int
    started_at: float
    beat_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class PartnerCounts:
    """Per-partner counts for ``status``.

    ``pending``: never sent; ``inflight``: sent and not answered; ``received``:
    distinct inbound SETs stored from this partner; ``max_attempts`` and
    ``next_attempt_at`` describe the in-flight rows (most attempts so far,
    earliest planned retry; 0 and None when nothing is in flight); ``unhandled``:
    inbox rows of this partner not yet done; ``refused``: its SETs we refused, ever
    (the ring keeps only the latest).
    """

    pending: int = 0
    inflight: int = 0
    acked: int = 0
    failed: int = 0
    received: int = 0
    max_attempts: int = 0
    next_attempt_at: float | None = None
    unhandled: int = 0
    refused: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class StreamRow:
    """An SSF stream, as the store keeps it; one per ``(partner, role, stream_id)``.

    Attributes:
        partner: the partner's name.
        role: ``"transmitter"``: we transmit to this partner (it is an SSF receiver);
            ``"receiver"``: our stream at this partner (it is an SSF transmitter).
        stream_id: the stream's id (the transmitter's choice).
        config: the stream configuration object (SSF 8.1.1), as last stored.
        status: ``"enabled"``, ``"paused"`` or ``"disabled"``.
        reason: why the status was last set, if said.
        verification: the verification's bookkeeping (e.g. ``state``,
            ``requested_at``, ``received_at``), None before any.
        updated_at: Unix time of the last save; :meth:`Store.save_stream` stamps the
            time of saving when it is 0, and keeps any other value.
    """

    partner: str
    role: str
    stream_id: str
    config: Mapping[str, Any]
    status: str
    reason: str | None = None
    verification: Mapping[str, Any] | None = None
    updated_at: float = 0.0


def stream_row(
    partner: str,
    role: str,
    stream_id: str,
    config: str,
    status: str,
    reason: str | None,
    verification: str | None,
    updated_at: float,
) -> StreamRow:
    """A :class:`StreamRow` from its stored fields (JSON texts decoded)."""
    return StreamRow(
        partner,
        role,
        stream_id,
        decode_claims(config),
        status,
        reason,
        None if verification is None else decode_claims(verification),
        updated_at,
    )


class Store(Protocol):
    """What a backend provides. Every method is one transaction.

    Attributes:
        commits: transactions committed so far; the contract suite counts them to
            check group commit.
    """

    commits: int

    async def enqueue(self, items: Sequence[OutboundNew]) -> None:
        """Commit SETs to the outbox, all or none; durable on return.

        Concurrent calls are committed together (group commit). If the caller is
        cancelled while waiting, the SETs may still be committed.

        Raises:
            DuplicateJti: a ``(partner, jti)`` is already in the outbox, or twice in
                ``items``.
            InvalidValue: a field is not a valid Unicode string.
            StoreError: the store is closed or could not commit.
        """

    async def load_outbound(
        self, partner: str, *, limit: int, after_seq: int = 0
    ) -> list[OutboundRow]:
        """Unfinished rows for ``partner`` with ``seq > after_seq``, oldest first."""

    async def apply(self, partner: str, effects: Sequence[Effect]) -> None:
        """Persist the Ledger's decisions for ``partner`` in one transaction.

        ``Sent`` raises attempts and sets the next retry; ``Acked`` and ``Failed``
        finish a row; ``AcksSent`` pays answers owed. Effects for unknown or already
        finished jtis are ignored: a late ``Sent`` never reopens an acked SET.
        """

    async def accept_inbound(
        self, partner: str, items: Sequence[InboundNew], answers: Sequence[Answer]
    ) -> list[bool]:
        """Store verified SETs (dedupe on ``(iss, jti)``) and owed answers together.

        Returns:
            One flag per item: True if new, False if a duplicate (still answered).
        """

    async def acks_due(self, partner: str) -> list[Answer]:
        """Answers still owed to ``partner`` (after a restart), in no set order."""

    async def fetch_inbox(self, *, after_seq: int, limit: int) -> list[InboxRow]:
        """Inbound SETs not yet done, with ``seq > after_seq``, in inbox order."""

    async def mark_done(self, seqs: Sequence[int]) -> None:
        """The application handled these inbox rows: never hand them out again."""

    async def failures(
        self,
        partner: str | None = None,
        *,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[FailureRow]:
        """Outbound SETs that ended in error, oldest first.

        Args:
            partner: only this partner's (None: all).
            since: only those that failed at or after this Unix time (rows without a
                time, ``at`` 0, are left out then).
            limit: only the newest ``limit`` of them (still oldest first).
        """

    async def record_refusals(
        self,
        items: Sequence[RefusalNew],
        keep: int,
        *,
        dropped: Mapping[str, int] | None = None,
    ) -> None:
        """Keep refused inbound SETs, in one transaction: each partner's ring keeps its
        newest ``keep`` rows (older ones are deleted in the same transaction), and its
        ``refused`` count grows by its items.

        Args:
            items: the refusals, oldest first.
            keep: rows per partner the ring keeps (at least 1).
            dropped: per partner, more refusals older than its items that were never
                itemised (a caller's bounded buffer overflowed): only counted.

        Raises:
            InvalidValue: a field is not text, ``at`` not a finite number, ``keep``
                or a dropped count out of range.
        """

    async def refusals(
        self, *, since: float | None = None, partner: str | None = None, limit: int | None = None
    ) -> list[RefusalRow]:
        """The refusals the rings hold, oldest first; at or after ``since`` (Unix time);
        only the newest ``limit`` of them (still oldest first)."""

    async def stats(self) -> dict[str, PartnerCounts]:
        """Counts per partner that ever had a row; cheap (no table scan)."""

    async def probe_write(self) -> None:
        """Check that a write could commit now (readiness); cheap, changes nothing.

        Takes the write path (SQLite: the write lock; PostgreSQL: the writer's
        connection, refused if read-only or a standby). After a transaction failed as
        a whole (disk full, I/O error), the probe commits a write that changes nothing,
        so the store is writable again only once a write really commits.

        Raises:
            StoreError: why no write can commit (closed, locked, read-only, full...).
        """

    async def save_stream(self, row: StreamRow) -> StreamRow:
        """Insert or replace the stream ``(row.partner, row.role, row.stream_id)``;
        its subjects stay. ``config`` and ``verification`` go through JSON.

        Returns:
            The row as stored (``updated_at`` stamped when it was 0).

        Raises:
            InvalidValue: a name is not text, ``role`` or ``status`` not one of
                :data:`STREAM_ROLES` / :data:`STREAM_STATUSES`, ``config`` or
                ``verification`` not a JSON object, ``updated_at`` not finite.
        """

    async def streams(
        self, *, partner: str | None = None, role: str | None = None
    ) -> list[StreamRow]:
        """The stored streams, those of ``partner`` and ``role`` if given, ordered
        by ``(partner, role, stream_id)`` (code point order)."""

    async def delete_stream(self, partner: str, role: str, stream_id: str) -> bool:
        """Delete the stream and its subjects, in one transaction.

        Returns:
            True if it was there.
        """

    async def add_subject(
        self, partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
    ) -> bool:
        """Add a subject to the stream; idempotent, keyed by the subject's canonical
        JSON (sorted keys, no spaces), so key order does not make a second subject.

        Returns:
            True if new, False if the stream had it already.

        Raises:
            UnknownStream: no such stream.
            InvalidValue: a name is not text, ``subject`` not a JSON object.
        """

    async def remove_subject(
        self, partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
    ) -> bool:
        """Remove a subject (matched by canonical JSON); True if it was there."""

    async def subjects(self, partner: str, role: str, stream_id: str) -> list[Mapping[str, Any]]:
        """The stream's subjects in the order they were first added ([] for none or
        for an unknown stream)."""

    async def set_session(self, partner: str, state: str) -> None:
        """Record the partner's session state for ``setpeer status``."""

    async def sessions(self) -> dict[str, str]:
        """Recorded session states."""

    async def beat(self, node: NodeRow) -> None:
        """Record that ``node`` runs (its row replaced); rows of nodes silent for
        :data:`NODES_FORGOTTEN` seconds before ``node.beat_at`` are deleted.

        Raises:
            InvalidValue: a field is not text, a pid or a finite time.
        """

    async def leave(self, owner: str) -> None:
        """``owner`` stopped: its heartbeat row is deleted."""

    async def nodes(self) -> list[NodeRow]:
        """The heartbeat rows, newest beat first."""

    def watch(self) -> AsyncIterator[str | None]:
        """Partners whose outbox another process changed (None: any), as they happen."""
        ...

    async def aclose(self) -> None:
        """Finish queued writes, then release connections and files."""


class SharedStore(Store, Protocol):
    """A store several nodes share (PostgreSQL; ``shared = True``).

    Each node runs its own sessions to every partner and sends the outbox rows it
    leased (docs/operations.md, "Several nodes with PostgreSQL"); a node that dies
    leaves leases that expire, and the other nodes take its rows over. In-process
    stores (memory, SQLite: one node per store) have no row leases; ask with
    :func:`shared_store`.
    """

    async def lease_outbound(
        self, partner: str, owner: str, *, limit: int, ttl: float
    ) -> list[OutboundRow]:
        """Lease up to ``limit`` unfinished rows of ``partner``, oldest first.

        Rows leased by nobody, or whose lease expired (its node died or lost its
        session), are taken for ``owner`` until ``ttl`` seconds from now by the
        store's clock; rows another node is leasing at this moment are skipped
        (``FOR UPDATE SKIP LOCKED``), never waited for; rows ``owner`` already holds
        are not returned again. Two owners never both hold a live lease on a row.

        Raises:
            InvalidValue: a name is not text, ``limit`` or ``ttl`` out of range.
            StoreError: the store is closed or unreachable.
        """
        ...

    async def enqueue_leased(self, items: Sequence[OutboundNew], owner: str, ttl: float) -> None:
        """:meth:`Store.enqueue`, the rows leased to ``owner`` for ``ttl`` seconds in
        the same transaction: a node sends what it publishes without reading it
        back, and the other nodes are not woken for it.

        Raises:
            DuplicateJti, InvalidValue, StoreError: as :meth:`Store.enqueue`; an
                invalid ``owner`` or ``ttl`` raises InvalidValue.
        """
        ...

    async def renew_outbound(
        self, partner: str, owner: str, ttl: float, *, jtis: Collection[str] | None = None
    ) -> int:
        """Extend the leases ``owner`` holds on ``partner``'s unfinished rows to
        ``ttl`` seconds from now, only those of ``jtis`` if given (the rows the node
        still holds in memory: a lease on any other row runs out, and another node or
        this one leases that row again); returns how many were extended."""
        ...

    async def release_outbound(self, partner: str, owner: str) -> None:
        """Give up ``owner``'s leases on ``partner``'s rows (its session is gone, or a
        graceful stop): another node may send them at once."""
        ...


def shared_store(store: Store) -> SharedStore | None:
    """``store`` as a :class:`SharedStore` if several nodes may share it, else None.

    A node asks once, when it starts: with a shared store it sends only the rows it
    leased; with any other it owns the whole outbox.
    """
    if getattr(store, "shared", False):
        return cast(SharedStore, store)
    return None
