"""The store interface: outbox, inbox and the answers we owe (DESIGN.md "Storage").

Small and coarse, like httpx's ``BaseTransport``: each method is one transaction.
Backends: ``memory.py`` (tests, ephemeral use) and ``sqlite.py`` (the embedded
default); the contract suite in ``tests/store/test_contract.py`` runs on each, and a
PostgreSQL backend joins it by adding one name to its fixture.

Values are checked here, once, for every backend (:func:`check_text`,
:func:`encode_claims`): the same bad input ends in the same typed error whatever
the backend, never in a driver's ``UnicodeEncodeError`` or ``OverflowError``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any, Protocol

from ..errors import DuplicateJti, StoreError
from ..protocol.effects import Effect

__all__ = [
    "MAX_SEQ",
    "SCHEMA_VERSION",
    "MAX_LEASE_TTL",
    "Answer",
    "DuplicateJti",
    "FailureRow",
    "InboundNew",
    "InboxRow",
    "InvalidValue",
    "OutboundNew",
    "OutboundRow",
    "PartnerCounts",
    "SharedStore",
    "Store",
    "check_count",
    "check_ttl",
    "check_text",
    "decode_claims",
    "encode_claims",
    "is_text",
]

SCHEMA_VERSION = 3
"""1: outbox, inbox, acks_due, sessions. 2: per-partner ``counts`` kept by triggers.
3: ``outbox_leases`` (row leases of nodes sharing a PostgreSQL store)."""

MAX_SEQ = 2**63 - 1
"""Sequence numbers are SQL BIGINTs; a larger ``after_seq`` or limit is a caller's bug."""

MAX_LEASE_TTL = 86_400.0
"""A lease outliving a day is a caller's bug: a dead node would block a partner that long."""


class InvalidValue(StoreError, ValueError):
    """A value no backend can hold: not a string, not valid Unicode, a bad count."""


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
    """An answer we owe the partner: an ack (``err`` None) or a setErr (PP-23, MP-7)."""

    jti: str
    err: str | None = None
    description: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class FailureRow:
    """An outbound SET that ended in error (the partner's setErr, or out of attempts)."""

    partner: str
    jti: str
    err: str
    description: str
    attempts: int


@dataclasses.dataclass(frozen=True, slots=True)
class PartnerCounts:
    """Per-partner counts for ``status``.

    ``pending``: never sent; ``inflight``: sent and not answered; ``received``:
    distinct inbound SETs stored from this partner; ``max_attempts`` and
    ``next_attempt_at`` describe the in-flight rows (most attempts so far,
    earliest planned retry; 0 and None when nothing is in flight).
    """

    pending: int = 0
    inflight: int = 0
    acked: int = 0
    failed: int = 0
    received: int = 0
    max_attempts: int = 0
    next_attempt_at: float | None = None


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

    async def failures(self, partner: str | None = None) -> list[FailureRow]:
        """Outbound SETs that ended in error, oldest first."""

    async def stats(self) -> dict[str, PartnerCounts]:
        """Counts per partner that ever had a row; cheap (no table scan)."""

    async def set_session(self, partner: str, state: str) -> None:
        """Record the partner's session state for ``setpeer status``."""

    async def sessions(self) -> dict[str, str]:
        """Recorded session states."""

    def watch(self) -> AsyncIterator[str | None]:
        """Partners whose outbox another process changed (None: any), as they happen."""
        ...

    async def claim_partner(self, partner: str, owner: str, ttl: float) -> bool:
        """Take or renew the lease on ``partner``'s outbound session for ``ttl`` seconds.

        One owner per partner, for work one node of a cluster should do at a time
        (the node itself sends by row leases, :class:`SharedStore`). A free lease, an
        expired lease (its owner died or stalled), or one ``owner`` already holds
        is taken and runs until ``ttl`` seconds from now; a live lease of another
        owner is refused. The store's clock decides expiry (the database's, for a
        server), so nodes with skewed clocks agree.

        Args:
            partner: the partner's name.
            owner: a name unique to the claiming node (and run).
            ttl: seconds the lease lasts unless renewed, in ``(0, MAX_LEASE_TTL]``.

        Returns:
            True if ``owner`` holds the lease now.

        Raises:
            InvalidValue: a name is not text, or ``ttl`` is not a number in range.
            StoreError: the store is closed or unreachable.
        """

    async def release_partner(self, partner: str, owner: str) -> None:
        """Give up ``owner``'s lease on ``partner`` at once (a graceful stop).

        A lease held by another owner, or none, is left as it is.

        Raises:
            InvalidValue: a name is not text.
            StoreError: the store is closed or unreachable.
        """

    async def aclose(self) -> None:
        """Finish queued writes, then release connections and files."""


class SharedStore(Store, Protocol):
    """A store several nodes share (PostgreSQL; ``shared = True``).

    Each node runs its own sessions to every partner and sends the outbox rows it
    leased (DESIGN.md "Storage"); a node that dies leaves leases that expire, and
    the other nodes take its rows over. In-process stores (memory, SQLite: one node
    per store) have no row leases.
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


def check_text(value: object, what: str) -> str:
    """Return ``value`` if it is a ``str`` that UTF-8 can encode.

    A lone surrogate (``"\\ud800"``) is a valid Python string but no valid text in
    SQLite or PostgreSQL; refuse it the same way in every backend.

    Raises:
        InvalidValue: not a string, or not encodable.
    """
    if type(value) is not str:
        raise InvalidValue(f"{what} must be a string, not {type(value).__name__}")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise InvalidValue(f"{what} is not valid Unicode (lone surrogate)") from None
    return value


def is_text(value: object) -> bool:
    """True if :func:`check_text` would accept ``value``.

    ``apply`` uses it to skip effects naming a jti no row can have, the same way
    in every backend, rather than fail the whole batch.
    """
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_count(value: object, what: str, *, minimum: int = 0) -> int:
    """Return ``value`` if it is an ``int`` in ``[minimum, MAX_SEQ]``.

    SQLite reads ``LIMIT -1`` as "no limit" and a list slice reads ``[:-1]`` as
    "all but one": a negative count is refused rather than given either meaning.

    Raises:
        InvalidValue: not an int (``bool`` included), or out of range.
    """
    if type(value) is not int or not minimum <= value <= MAX_SEQ:
        raise InvalidValue(f"{what} must be an integer in [{minimum}, 2**63-1], got {value!r}")
    return value


def check_ttl(value: object, what: str = "ttl") -> float:
    """Return ``value`` as a float if it is a real number in ``(0, MAX_LEASE_TTL]``.

    NaN, infinities, zero and negative durations would make a lease that never
    expires or never holds; they are refused the same way in every backend.

    Raises:
        InvalidValue: not an int or float (``bool`` included), or out of range.
    """
    if (
        not isinstance(value, (int, float))
        or isinstance(value, bool)
        or not 0 < value <= MAX_LEASE_TTL
    ):
        raise InvalidValue(f"{what} must be a number of seconds in (0, 86400], got {value!r}")
    return float(value)


def encode_claims(claims: Mapping[str, Any]) -> str:
    """The claims as stored: compact JSON, non-ASCII escaped, so it round-trips.

    Raises:
        InvalidValue: not JSON (a set, NaN, a cycle, nesting deeper than Python's
            recursion limit).
    """
    if not isinstance(claims, Mapping):
        raise InvalidValue(f"claims must be a mapping, not {type(claims).__name__}")
    try:
        return json.dumps(claims, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidValue(f"claims are not JSON: {exc}") from None


def decode_claims(text: str) -> dict[str, Any]:
    """Inverse of :func:`encode_claims`."""
    value: dict[str, Any] = json.loads(text)
    return value
