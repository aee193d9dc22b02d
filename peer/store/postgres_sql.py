"""The PostgreSQL statements: each call's SQL as a small function on a connection.

``postgres.py`` runs the writes (``*_write``) in its group transaction (whose
body is :func:`run_all`, or :func:`run_in_savepoint` per write after a failure)
and the reads (``*_read``) on its autocommit read connections; the builders check
their arguments first (``checks.py``), so a bad value never reaches the server.
The schema they work on is in ``postgres_schema.py``: text as ``BYTEA`` (UTF-8),
matched through ``sha256()``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import psycopg
import psycopg.errors

from ..errors import StoreError
from ..protocol.effects import Effect
from .base import (
    Answer,
    DuplicateJti,
    FailureRow,
    InboundNew,
    InboxRow,
    OutboundNew,
    OutboundRow,
    PartnerCounts,
    RefusalNew,
    RefusalRow,
)
from .checks import (
    answers_owed,
    check_count,
    check_text,
    check_time,
    decode_claims,
    inbound_rows,
    outbound_rows,
    refusal_plan,
)
from .plan import plan_effects
from .writer import Result, Write, runs

__all__ = [
    "CHANNEL",
    "Conn",
    "Statement",
    "accept_inbound_write",
    "acks_due_read",
    "apply_write",
    "db_error",
    "enqueue_rows",
    "failures_read",
    "fetch_inbox_read",
    "insert_outbox",
    "is_retryable",
    "load_outbound_read",
    "mark_done_write",
    "notify",
    "probe_write_statement",
    "record_refusals_write",
    "refusals_read",
    "run_all",
    "run_in_savepoint",
    "sessions_read",
    "set_session_write",
    "stats_read",
    "text_of",
]

Conn: TypeAlias = psycopg.AsyncConnection[Any]
Statement: TypeAlias = Callable[[Conn], Awaitable[Any]]

CHANNEL = "setpeer_outbox"
"""The NOTIFY channel; the payload is the partner's name ('' for any partner)."""

# NOTIFY payloads are text shorter than 8,000 bytes: a partner name holding NUL or
# longer than this wakes every partner instead (as wake.py does with datagrams).
_MAX_PAYLOAD = 7_000

# -- values ------------------------------------------------------------------------


def text_of(value: bytes | None) -> Any:
    """A stored ``BYTEA`` back to the string it was (None stays None)."""
    return None if value is None else bytes(value).decode()


def _b(value: str | None) -> bytes | None:
    return None if value is None else value.encode()


def db_error(exc: BaseException) -> StoreError:
    """The typed error for a failed statement (a duplicate jti, or the server's words)."""
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, psycopg.errors.UniqueViolation):
        if exc.diag.constraint_name == "outbox_partner_jti":
            return DuplicateJti("a jti is never reused for one partner (MP-9)")
    if isinstance(exc, psycopg.Error):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StoreError(f"PostgreSQL refused the statement: {first}")
    error = StoreError(f"write failed: {exc!r}")
    error.__cause__ = exc
    return error


def is_retryable(exc: BaseException) -> bool:
    """A deadlock or serialization failure between nodes: run the group again."""
    return isinstance(exc, psycopg.errors.DeadlockDetected | psycopg.errors.SerializationFailure)


# -- writes ------------------------------------------------------------------------


def enqueue_rows(items: Sequence[OutboundNew]) -> list[tuple[Any, ...]]:
    """Checked rows for :func:`insert_outbox`: ``(partner, jti, token)`` as UTF-8.

    Raises:
        InvalidValue: a field is not a valid Unicode string.
    """
    return [(p.encode(), j.encode(), t.encode()) for p, j, t in outbound_rows(items)]


async def insert_outbox(
    conn: Conn, rows: Sequence[tuple[Any, ...]], lease: tuple[Any, float] | None = None
) -> None:
    """One INSERT for many SETs, in the given order (``seq`` follows it).

    ``lease`` = ``(owner, ttl)``: the rows are leased to ``owner`` in the same
    statement (``enqueue_leased``: a node sends what it publishes).
    """
    columns = ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    insert = (
        "INSERT INTO outbox (partner, jti, token)"
        " SELECT p, j, t FROM unnest(%b::bytea[], %b::bytea[], %b::bytea[])"
        " WITH ORDINALITY AS u(p, j, t, n) ORDER BY n"
    )
    if lease is None:
        await conn.execute(insert, columns)
        return
    await conn.execute(
        f"WITH new AS ({insert} RETURNING seq)"
        " INSERT INTO outbox_leases (seq, owner, until)"
        " SELECT seq, %b, clock_timestamp() + make_interval(secs => %s) FROM new",
        (*columns, *lease),
    )


async def notify(conn: Conn, partners: Iterable[str]) -> None:
    """``pg_notify`` each partner, delivered to listeners when the transaction commits."""
    payloads = sorted(
        {p if "\x00" not in p and len(p.encode()) <= _MAX_PAYLOAD else "" for p in partners}
    )
    if payloads:
        await conn.execute(
            "SELECT pg_notify(%s, p) FROM unnest(%s::text[]) AS p", (CHANNEL, payloads)
        )


def apply_write(partner: str, effects: Sequence[Effect]) -> Statement:
    """The Ledger's decisions for ``partner``, in the order of ``plan.py``.

    Raises:
        InvalidValue: as :func:`~peer.store.plan.plan_effects`.
    """
    plan = plan_effects(partner, effects)
    key = plan.partner.encode()
    sent = (
        [jti.encode() for jti in plan.sent],
        [a for a, _ in plan.sent.values()],
        [r for _, r in plan.sent.values()],
    )
    acked = [jti.encode() for jti in plan.acked]
    failed = (
        [jti.encode() for jti in plan.failed],
        [e.encode() for e, _ in plan.failed.values()],
        [d.encode() for _, d in plan.failed.values()],
    )
    paid = [jti.encode() for jti in plan.paid]

    async def write(conn: Conn) -> None:
        match = "sha256(o.partner) = sha256(%s) AND sha256(o.jti) = sha256(u.j) AND o.state = 0"
        if sent[0]:
            await conn.execute(
                "UPDATE outbox o SET attempts = greatest(o.attempts, u.a), next_attempt_at = u.r"
                " FROM unnest(%b::bytea[], %s::bigint[], %s::float8[]) AS u(j, a, r)"
                f" WHERE {match}",
                (*sent, key),
            )
        if acked:
            await conn.execute(
                f"UPDATE outbox o SET state = 1 FROM unnest(%b::bytea[]) AS u(j) WHERE {match}",
                (acked, key),
            )
        if failed[0]:
            await conn.execute(
                "UPDATE outbox o SET state = 2, err = u.e, description = u.d,"
                " failed_at = extract(epoch FROM clock_timestamp())"
                f" FROM unnest(%b::bytea[], %b::bytea[], %b::bytea[]) AS u(j, e, d) WHERE {match}",
                (*failed, key),
            )
        if paid:
            await conn.execute(
                "DELETE FROM acks_due a USING unnest(%b::bytea[]) AS u(j)"
                " WHERE sha256(a.partner) = sha256(%s) AND sha256(a.jti) = sha256(u.j)",
                (paid, key),
            )

    return write


def accept_inbound_write(
    partner: str, items: Sequence[InboundNew], answers: Sequence[Answer]
) -> Statement:
    """Store verified SETs (dedupe on ``(iss, jti)``) and owed answers together.

    The write returns one flag per item: True for the copy that was stored.

    Raises:
        InvalidValue: a field is not text, or the claims are not JSON.
    """
    key = check_text(partner, "partner").encode()
    rows = inbound_rows(items)
    keys = [(iss.encode(), jti.encode()) for iss, jti, _, _ in rows]
    tokens = [token.encode() for _, _, token, _ in rows]
    claims = [claims for _, _, _, claims in rows]
    owed = [(jti.encode(), _b(err), _b(desc)) for jti, err, desc in answers_owed(answers)]

    async def write(conn: Conn) -> list[bool]:
        stored: set[tuple[bytes, bytes]] = set()
        if keys:
            # RFC 8417 §2.2: jti is unique per issuer, so (iss, jti) dedupes (PUSH-9);
            # a copy another node is storing right now waits for its commit, then
            # conflicts: exactly one of them is new.
            cur = await conn.execute(
                "INSERT INTO inbox (partner, iss, jti, token, claims)"
                " SELECT %s, i, j, t, c FROM unnest(%b::bytea[], %b::bytea[], %b::bytea[],"
                " %s::text[]) WITH ORDINALITY AS u(i, j, t, c, n) ORDER BY n"
                " ON CONFLICT (sha256(iss), sha256(jti)) DO NOTHING RETURNING iss, jti",
                (key, [i for i, _ in keys], [j for _, j in keys], tokens, claims),
            )
            stored = {(bytes(i), bytes(j)) for i, j in await cur.fetchall()}
        fresh = []
        for k in keys:  # the first copy of a key in items is the one stored
            fresh.append(k in stored)
            stored.discard(k)
        if owed:
            await conn.execute(
                "INSERT INTO acks_due AS a (partner, jti, err, description)"
                " SELECT %s, j, e, d FROM unnest(%b::bytea[], %b::bytea[], %b::bytea[])"
                " AS u(j, e, d)"
                " ON CONFLICT (sha256(partner), sha256(jti)) DO UPDATE"
                " SET err = excluded.err, description = excluded.description",
                (key, *(list(column) for column in zip(*owed, strict=True))),
            )
        return fresh

    return write


def record_refusals_write(
    items: Sequence[RefusalNew], keep: int, dropped: Mapping[str, int] | None
) -> Statement | None:
    """Refusals into each partner's ring, the ring trimmed to ``keep`` rows, and
    ``counts.refused`` raised (None: nothing to record). The counts row's lock orders
    nodes recording for one partner at once: each gets its own ordinals.

    Raises:
        InvalidValue: as :func:`~peer.store.checks.refusal_plan`.
    """
    plan = refusal_plan(items, keep, dropped)
    if not plan:
        return None

    async def write(conn: Conn) -> None:
        for partner, (added, rows) in sorted(plan.items()):
            key = partner.encode()
            cur = await conn.execute(
                "INSERT INTO counts AS c (partner, refused) VALUES (%s, %s)"
                " ON CONFLICT (sha256(partner)) DO UPDATE"
                " SET refused = c.refused + excluded.refused RETURNING refused",
                (key, added),
            )
            row = await cur.fetchone()
            assert row is not None
            total = int(row[0])
            if rows:
                await conn.execute(
                    "INSERT INTO refusals (partner, n, jti, err, description, at)"
                    " SELECT %s, %s + u.i, u.j, u.e, u.d, u.a FROM unnest("
                    "%b::bytea[], %b::bytea[], %b::bytea[], %s::float8[]"
                    ") WITH ORDINALITY AS u(j, e, d, a, i) ORDER BY u.i",
                    (
                        key,
                        total - len(rows),
                        [j.encode() for j, _, _, _ in rows],
                        [e.encode() for _, e, _, _ in rows],
                        [d.encode() for _, _, d, _ in rows],
                        [a for _, _, _, a in rows],
                    ),
                )
            await conn.execute(
                "DELETE FROM refusals WHERE sha256(partner) = sha256(%s) AND n <= %s",
                (key, total - keep),
            )

    return write


def mark_done_write(seqs: Sequence[int]) -> Statement | None:
    """The application handled these inbox rows (None: no rows named).

    Raises:
        InvalidValue: a seq is not a count.
    """
    rows = [check_count(seq, "seq") for seq in seqs]
    if not rows:
        return None

    async def write(conn: Conn) -> None:
        await conn.execute(
            "UPDATE inbox SET done = true WHERE seq = ANY(%s::bigint[]) AND NOT done", (rows,)
        )

    return write


def set_session_write(partner: str, state: str) -> Statement:
    """Record the partner's session state (the last one wins).

    Raises:
        InvalidValue: a value is not text.
    """
    row = (check_text(partner, "partner").encode(), check_text(state, "state").encode())

    async def write(conn: Conn) -> None:
        await conn.execute(
            "INSERT INTO sessions AS s (partner, state) VALUES (%s, %s)"
            " ON CONFLICT (sha256(partner)) DO UPDATE"
            " SET state = excluded.state, updated_at = clock_timestamp()",
            row,
        )

    return write


# -- the group transaction's body ---------------------------------------------------


async def run_all(conn: Conn, batch: list[Write[Statement]]) -> list[Result]:
    """Every write in order; runs of enqueues (leased alike) as one INSERT."""
    results: list[Result] = []
    for writes, rows in runs(batch):
        if rows is None:
            results.append((True, await writes[0].fn(conn)))
        else:
            await insert_outbox(conn, rows, writes[0].lease)
            results.extend((True, None) for _ in writes)
    return results


async def run_in_savepoint(conn: Conn, write: Write[Statement]) -> Result:
    """One write in its own SAVEPOINT: its failure is its own."""
    await conn.execute("SAVEPOINT one")
    try:
        result: Result = (True, await write.fn(conn))
    except Exception as exc:
        if conn.broken or (isinstance(exc, psycopg.Error) and is_retryable(exc)):
            raise
        await conn.execute("ROLLBACK TO SAVEPOINT one")
        result = (False, db_error(exc))
    await conn.execute("RELEASE SAVEPOINT one")
    return result


# -- reads -------------------------------------------------------------------------


def probe_write_statement(where: str, failed: Callable[[], bool]) -> Statement:
    """Refused on a standby or with read-only transactions; after a failed
    transaction (``failed()``), a row of ``sessions`` rewritten unchanged."""

    async def probe(conn: Conn) -> None:
        cur = await conn.execute(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
        )
        row = await cur.fetchone()
        assert row is not None
        if row[0]:
            raise StoreError(f"PostgreSQL at {where} is a standby (read-only)")
        if row[1] == "on":
            raise StoreError(
                f"PostgreSQL at {where} runs read-only transactions (default_transaction_read_only)"
            )
        if failed():
            await conn.execute(
                "UPDATE sessions SET state = state"
                " WHERE partner = (SELECT partner FROM sessions LIMIT 1)"
            )

    return probe


def load_outbound_read(partner: str, *, limit: int, after_seq: int) -> Statement:
    """Unfinished rows for ``partner`` after ``after_seq``, oldest first.

    Raises:
        InvalidValue: a bad name or count.
    """
    args = (
        check_text(partner, "partner").encode(),
        check_count(after_seq, "after_seq"),
        check_count(limit, "limit"),
    )

    async def read(conn: Conn) -> list[OutboundRow]:
        cur = await conn.execute(
            "SELECT seq, jti, token, attempts, next_attempt_at FROM outbox"
            " WHERE sha256(partner) = sha256(%s) AND state = 0 AND seq > %s"
            " ORDER BY seq LIMIT %s",
            args,
            binary=True,  # tokens as raw bytes, not hex text: half the bytes to parse
        )
        return [
            OutboundRow(seq, partner, text_of(jti), text_of(token), attempts, nxt)
            for seq, jti, token, attempts, nxt in await cur.fetchall()
        ]

    return read


def acks_due_read(partner: str) -> Statement:
    """Answers still owed to ``partner``.

    Raises:
        InvalidValue: a bad name.
    """
    key = check_text(partner, "partner").encode()

    async def read(conn: Conn) -> list[Answer]:
        cur = await conn.execute(
            "SELECT jti, err, description FROM acks_due WHERE sha256(partner) = sha256(%s)",
            (key,),
            binary=True,
        )
        return [
            Answer(text_of(jti), text_of(err), text_of(description))
            for jti, err, description in await cur.fetchall()
        ]

    return read


def fetch_inbox_read(*, after_seq: int, limit: int) -> Statement:
    """Inbound SETs not yet done, after ``after_seq``, in inbox order.

    Raises:
        InvalidValue: a bad count.
    """
    args = (check_count(after_seq, "after_seq"), check_count(limit, "limit"))

    async def read(conn: Conn) -> list[InboxRow]:
        cur = await conn.execute(
            "SELECT seq, partner, iss, jti, token, claims FROM inbox"
            " WHERE NOT done AND seq > %s ORDER BY seq LIMIT %s",
            args,
            binary=True,
        )
        return [
            InboxRow(
                seq, text_of(p), text_of(iss), text_of(jti), text_of(token), decode_claims(claims)
            )
            for seq, p, iss, jti, token, claims in await cur.fetchall()
        ]

    return read


def failures_read(
    partner: str | None, *, since: float | None = None, limit: int | None = None
) -> Statement:
    """Outbound SETs that ended in error, oldest first (all partners: None); those
    failed at or after ``since``; the newest ``limit``.

    Raises:
        InvalidValue: a bad name, time or count.
    """
    query = (
        "SELECT seq, partner, jti, err, description, attempts, failed_at FROM outbox"
        " WHERE state = 2"
    )
    args: list[Any] = []
    if partner is not None:
        query += " AND sha256(partner) = sha256(%s)"
        args.append(check_text(partner, "partner").encode())
    if since is not None:
        query += " AND failed_at >= %s"
        args.append(check_time(since, "since"))
    query += " ORDER BY seq DESC"
    if limit is not None:
        query += " LIMIT %s"
        args.append(check_count(limit, "limit"))

    async def read(conn: Conn) -> list[FailureRow]:
        cur = await conn.execute(f"SELECT * FROM ({query}) f ORDER BY seq", args)
        return [
            FailureRow(text_of(p), text_of(j), text_of(e) or "", text_of(d) or "", a, at or 0.0)
            for _, p, j, e, d, a, at in await cur.fetchall()
        ]

    return read


def refusals_read(
    *, since: float | None, partner: str | None, limit: int | None = None
) -> Statement:
    """The refusals the rings hold, oldest first; the newest ``limit``.

    Raises:
        InvalidValue: a bad name or time.
    """
    query = "SELECT seq, partner, jti, err, description, at FROM refusals WHERE true"
    args: list[Any] = []
    if partner is not None:
        query += " AND sha256(partner) = sha256(%s)"
        args.append(check_text(partner, "partner").encode())
    if since is not None:
        query += " AND at >= %s"
        args.append(check_time(since, "since"))
    query += " ORDER BY seq DESC"
    if limit is not None:
        query += " LIMIT %s"
        args.append(check_count(limit, "limit"))

    async def read(conn: Conn) -> list[RefusalRow]:
        cur = await conn.execute(f"SELECT * FROM ({query}) r ORDER BY seq", args)
        return [
            RefusalRow(seq, text_of(p), text_of(j), text_of(e), text_of(d), at)
            for seq, p, j, e, d, at in await cur.fetchall()
        ]

    return read


async def stats_read(conn: Conn) -> dict[str, PartnerCounts]:
    """Counts per partner: one statement, one snapshot of the counts table (one row
    per partner) and the partial index of in-flight rows."""
    cur = await conn.execute(
        "SELECT c.partner, c.pending, c.inflight, c.acked, c.failed, c.received,"
        " coalesce(f.most, 0), f.soonest, c.unhandled, c.refused FROM counts c LEFT JOIN ("
        "  SELECT partner, max(attempts) AS most, min(next_attempt_at) AS soonest"
        "  FROM outbox WHERE state = 0 AND attempts > 0 GROUP BY partner"
        " ) f ON f.partner = c.partner"
    )
    return {text_of(p): PartnerCounts(*counts) for p, *counts in await cur.fetchall()}


async def sessions_read(conn: Conn) -> dict[str, str]:
    """Recorded session states."""
    cur = await conn.execute("SELECT partner, state FROM sessions")
    return {text_of(p): text_of(s) for p, s in await cur.fetchall()}
