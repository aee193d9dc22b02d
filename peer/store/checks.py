"""Argument checks every backend runs, once, before touching its storage.

The same bad input ends in the same typed error whatever the backend
(:class:`InvalidValue`), never in a driver's ``UnicodeEncodeError`` or
``OverflowError``, and always before anything of the call is written. The
functions at the bottom check a whole call's arguments and return them in the
plain shapes the backends store.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from ..errors import StoreError

if TYPE_CHECKING:
    from .base import Answer, InboundNew, NodeRow, OutboundNew, RefusalNew, StreamRow

__all__ = [
    "MAX_LEASE_TTL",
    "MAX_SEQ",
    "STREAM_ROLES",
    "STREAM_STATUSES",
    "InvalidValue",
    "StoreClosed",
    "StreamFields",
    "UnknownStream",
    "answers_owed",
    "MAX_KEEP",
    "RefusalPlan",
    "canonical_subject",
    "check_count",
    "check_stream_key",
    "check_text",
    "check_time",
    "check_ttl",
    "decode_claims",
    "encode_claims",
    "inbound_rows",
    "is_text",
    "node_fields",
    "outbound_rows",
    "refusal_plan",
    "stream_fields",
]

MAX_SEQ = 2**63 - 1
"""Sequence numbers are SQL BIGINTs; a larger ``after_seq`` or limit is a caller's bug."""

MAX_LEASE_TTL = 86_400.0
"""A lease outliving a day is a caller's bug: a dead node would block a partner that long."""


MAX_KEEP = 1_000_000
"""Refusals one partner's ring keeps at most (``failures_kept``'s bound)."""


STREAM_ROLES = ("transmitter", "receiver")
"""A stream's ``role``: we transmit to the partner, or the partner transmits to us."""

STREAM_STATUSES = ("enabled", "paused", "disabled")
"""A stream's ``status`` (SSF 8.1.2)."""


class StoreClosed(StoreError):
    """The store was closed: nothing can be read from or written to it any more (not a
    passing fault: retrying cannot help)."""


class InvalidValue(StoreError, ValueError):
    """A value no backend can hold: not a string, not valid Unicode, a bad count."""


class UnknownStream(StoreError, LookupError):
    """No stream with that ``(partner, role, stream_id)`` is stored."""


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


def node_fields(node: NodeRow) -> tuple[str, str, int, float, float]:
    """A heartbeat row checked: ``(owner, host, pid, started_at, beat_at)``.

    Raises:
        InvalidValue: a field is not text, a count or a finite time.
    """
    return (
        check_text(node.owner, "owner"),
        check_text(node.host, "host"),
        check_count(node.pid, "pid"),
        check_time(node.started_at, "started_at"),
        check_time(node.beat_at, "beat_at"),
    )


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


def check_time(value: object, what: str = "at") -> float:
    """Return ``value`` as a float if it is a finite real number (a Unix time).

    Raises:
        InvalidValue: not an int or float (``bool`` included), NaN or infinite.
    """
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        raise InvalidValue(f"{what} must be a finite number (Unix time), got {value!r}")
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


def encode_inbound_claims(claims: Mapping[str, Any], *, parsed: bool) -> str:
    """A received SET's claims as stored. Claims the strict parser returned
    (``parsed``) are written by orjson, compact UTF-8 (a fifth of :func:`encode_claims`'
    cost, on every SET received; orjson would write NaN as null, but parsed claims
    hold none); others, and what orjson cannot write (integers beyond 64 bits), as
    :func:`encode_claims` does. :func:`decode_claims` reads both.

    Raises:
        InvalidValue: not JSON.
    """
    if parsed and isinstance(claims, dict):
        try:
            return orjson.dumps(claims).decode()
        except orjson.JSONEncodeError:
            pass
    return encode_claims(claims)


# A run of digits orjson may read as a float (integers beyond 64 bits): such text is
# read by the stdlib, which keeps every integer exact.
_LONG_DIGITS = re.compile(r"\d{19}")


def decode_claims(text: str) -> dict[str, Any]:
    """Inverse of :func:`encode_claims` and :func:`encode_inbound_claims`."""
    value: dict[str, Any] = json.loads(text) if _LONG_DIGITS.search(text) else orjson.loads(text)
    return value


# -- whole calls -------------------------------------------------------------------


def outbound_rows(items: Sequence[OutboundNew]) -> list[tuple[str, str, str]]:
    """``enqueue``'s SETs as ``(partner, jti, token)``, in order.

    Raises:
        InvalidValue: a field is not a valid Unicode string.
    """
    return [
        (
            check_text(i.partner, "partner"),
            check_text(i.jti, "jti"),
            check_text(i.token, "token"),
        )
        for i in items
    ]


def inbound_rows(items: Sequence[InboundNew]) -> list[tuple[str, str, str, str]]:
    """``accept_inbound``'s SETs as ``(iss, jti, token, claims as JSON)``, in order.

    Raises:
        InvalidValue: a field is not text, or the claims are not JSON.
    """
    return [
        (
            check_text(i.iss, "iss"),
            check_text(i.jti, "jti"),
            check_text(i.token, "token"),
            encode_inbound_claims(i.claims, parsed=i.parsed),
        )
        for i in items
    ]


def answers_owed(answers: Sequence[Answer]) -> list[tuple[str, str | None, str | None]]:
    """The answers to record as ``(jti, err, description)``, one per jti: the latest
    for a jti wins, as an upsert would.

    Raises:
        InvalidValue: a field is not text.
    """
    owed: dict[str, tuple[str, str | None, str | None]] = {}
    for a in answers:
        jti = check_text(a.jti, "jti")
        err = None if a.err is None else check_text(a.err, "err")
        description = None if a.description is None else check_text(a.description, "description")
        owed.pop(jti, None)  # the latest one's place, as a delete-then-insert
        owed[jti] = (jti, err, description)
    return list(owed.values())


RefusalPlan = dict[str, tuple[int, list[tuple[str, str, str, float]]]]
"""Per partner: refusals to count, and the newest ``keep`` of them to store as
``(jti, err, description, at)``, oldest first."""


def refusal_plan(
    items: Sequence[RefusalNew], keep: int, dropped: Mapping[str, int] | None
) -> RefusalPlan:
    """``record_refusals``'s arguments checked and grouped per partner: only the rows
    the ring would keep are written (a flood never writes rows to delete them).

    Raises:
        InvalidValue: a field is not text, ``at`` not a finite number, ``keep`` not in
            ``[1, MAX_KEEP]`` or a dropped count negative.
    """
    if type(keep) is not int or not 1 <= keep <= MAX_KEEP:
        raise InvalidValue(f"keep must be an integer in [1, {MAX_KEEP}], got {keep!r}")
    plan: RefusalPlan = {}
    for partner, count in (dropped or {}).items():
        plan[check_text(partner, "partner")] = (check_count(count, "dropped"), [])
    for item in items:
        row = (
            check_text(item.jti, "jti"),
            check_text(item.err, "err"),
            check_text(item.description, "description"),
            check_time(item.at),
        )
        count, rows = plan.get(check_text(item.partner, "partner"), (0, []))
        rows.append(row)
        plan[item.partner] = (count + 1, rows)
    return {partner: (count, rows[-keep:]) for partner, (count, rows) in plan.items() if count}


# -- streams -------------------------------------------------------------------------


def check_stream_key(partner: object, role: object, stream_id: object) -> tuple[str, str, str]:
    """A stream's key, checked: three texts, ``role`` one of :data:`STREAM_ROLES`.

    Raises:
        InvalidValue: not text, or an unknown role.
    """
    key = (
        check_text(partner, "partner"),
        check_text(role, "role"),
        check_text(stream_id, "stream_id"),
    )
    if key[1] not in STREAM_ROLES:
        raise InvalidValue(f"role must be one of {', '.join(STREAM_ROLES)}, got {role!r}")
    return key


def _json_object(value: object, what: str, *, sort: bool = False) -> str:
    if not isinstance(value, Mapping):
        raise InvalidValue(f"{what} must be a mapping, not {type(value).__name__}")
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, sort_keys=sort)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidValue(f"{what} is not JSON: {exc}") from None


def canonical_subject(subject: object) -> str:
    """A subject's key: its JSON with sorted keys, no spaces, non-ASCII escaped.

    Raises:
        InvalidValue: not a mapping, or not JSON.
    """
    return _json_object(subject, "subject", sort=True)


StreamFields = tuple[str, str, str, str, str, "str | None", "str | None", float]
"""``(partner, role, stream_id, config JSON, status, reason, verification JSON, updated_at)``."""


def stream_fields(row: StreamRow, now: float) -> StreamFields:
    """``save_stream``'s row checked and flattened; ``updated_at`` 0 becomes ``now``.

    Raises:
        InvalidValue: see :meth:`Store.save_stream`.
    """
    partner, role, stream_id = check_stream_key(row.partner, row.role, row.stream_id)
    status = check_text(row.status, "status")
    if status not in STREAM_STATUSES:
        raise InvalidValue(f"status must be one of {', '.join(STREAM_STATUSES)}, got {status!r}")
    reason = None if row.reason is None else check_text(row.reason, "reason")
    verification = (
        None if row.verification is None else _json_object(row.verification, "verification")
    )
    at = check_time(row.updated_at, "updated_at") or now
    config = _json_object(row.config, "config")
    return (partner, role, stream_id, config, status, reason, verification, at)
