"""The PostgreSQL schema and the statements that write it.

The schema comes in versioned steps, applied under an advisory lock; the write
statements are built here as small functions the store's writer runs inside its
group transaction (``postgres.py``).

The tables have the SQLite shape (DESIGN.md "Storage") and the same version
numbers (``base.SCHEMA_VERSION``), with three PostgreSQL twists:

- Text values are stored as ``BYTEA`` (UTF-8). PostgreSQL ``TEXT`` cannot hold
  NUL, and a partner name, jti or token with ``"\\x00"`` must round-trip as it
  does in SQLite and memory (the contract's hostile strings). Read them with
  ``convert_from(col, 'UTF8')``.
- Uniqueness and lookups go through ``sha256()`` of those values: a B-tree entry
  is limited to ~2.7 KB, and a jti may be 4 KiB (``FrameLimits.max_string_bytes``);
  a partner sending long jtis must not turn dedupe into a store error.
- Per-partner counts are kept by statement-level triggers over transition tables:
  a 1,000-row insert updates each partner's counts once, not 1,000 times.

``schema_version`` holds one row. :func:`migrate_connection` takes a transaction
advisory lock first, so two nodes starting at once never both migrate.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeAlias

import psycopg
import psycopg.errors

from ..errors import StoreError
from ..protocol.effects import Acked, AcksSent, Effect, Failed, Sent
from .base import (
    SCHEMA_VERSION,
    Answer,
    DuplicateJti,
    InboundNew,
    InvalidValue,
    OutboundNew,
    check_text,
    encode_claims,
    is_text,
)

__all__ = [
    "CHANNEL",
    "STEPS",
    "Conn",
    "accept_inbound_write",
    "apply_write",
    "db_error",
    "enqueue_rows",
    "insert_outbox",
    "is_retryable",
    "migrate_connection",
    "notify",
    "schema_version",
    "set_session_write",
    "text_of",
]

Conn: TypeAlias = psycopg.AsyncConnection[Any]
Write: TypeAlias = Callable[[Conn], Awaitable[Any]]

CHANNEL = "setpeer_outbox"
"""The NOTIFY channel; the payload is the partner's name ('' for any partner)."""

# NOTIFY payloads are text shorter than 8,000 bytes: a partner name holding NUL or
# longer than this wakes every partner instead (as wake.py does with datagrams).
_MAX_PAYLOAD = 7_000

# pg_advisory_xact_lock key for migrations: "setpee" in ASCII, unlikely to collide.
_MIGRATE_LOCK = 0x736574706565

_COUNTS_SET = """
    pending = c.pending + d.pending, inflight = c.inflight + d.inflight,
    acked = c.acked + d.acked, failed = c.failed + d.failed"""

STEPS: dict[int, str] = {
    1: """
CREATE TABLE outbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner BYTEA NOT NULL,
    jti BYTEA NOT NULL,
    token BYTEA NOT NULL,
    state SMALLINT NOT NULL DEFAULT 0,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at DOUBLE PRECISION,
    err BYTEA,
    description BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX outbox_partner_jti ON outbox (sha256(partner), sha256(jti));
CREATE INDEX outbox_open ON outbox (sha256(partner), seq) WHERE state = 0;
CREATE TABLE inbox (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner BYTEA NOT NULL,
    iss BYTEA NOT NULL,
    jti BYTEA NOT NULL,
    token BYTEA NOT NULL,
    claims TEXT NOT NULL,
    done BOOLEAN NOT NULL DEFAULT false,
    received_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX inbox_iss_jti ON inbox (sha256(iss), sha256(jti));
CREATE INDEX inbox_new ON inbox (seq) WHERE NOT done;
CREATE TABLE acks_due (
    partner BYTEA NOT NULL,
    jti BYTEA NOT NULL,
    err BYTEA,
    description BYTEA
);
CREATE UNIQUE INDEX acks_due_partner_jti ON acks_due (sha256(partner), sha256(jti));
CREATE TABLE sessions (
    partner BYTEA NOT NULL,
    state BYTEA NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE UNIQUE INDEX sessions_partner ON sessions (sha256(partner));
""",
    # As SQLite's step 2: counts mirror the rows (state 0 with attempts 0 is
    # pending, with attempts > 0 in flight, 1 acked, 2 failed), so stats() reads
    # one row per partner. Leases (several nodes on one store) come with it.
    2: f"""
CREATE TABLE counts (
    partner BYTEA NOT NULL,
    pending BIGINT NOT NULL DEFAULT 0,
    inflight BIGINT NOT NULL DEFAULT 0,
    acked BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    received BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX counts_partner ON counts (sha256(partner));
INSERT INTO counts (partner, pending, inflight, acked, failed)
    SELECT partner, count(*) FILTER (WHERE state = 0 AND attempts = 0),
        count(*) FILTER (WHERE state = 0 AND attempts > 0),
        count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state = 2)
    FROM outbox GROUP BY partner;
INSERT INTO counts AS c (partner, received)
    SELECT partner, count(*) FROM inbox GROUP BY partner
    ON CONFLICT (sha256(partner)) DO UPDATE SET received = excluded.received;
CREATE INDEX outbox_inflight ON outbox (partner, next_attempt_at, attempts)
    WHERE state = 0 AND attempts > 0;
CREATE INDEX outbox_failed ON outbox (seq) WHERE state = 2;

CREATE FUNCTION setpeer_outbox_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counts AS c (partner, pending, inflight, acked, failed)
    SELECT partner, count(*) FILTER (WHERE state = 0 AND attempts = 0),
        count(*) FILTER (WHERE state = 0 AND attempts > 0),
        count(*) FILTER (WHERE state = 1), count(*) FILTER (WHERE state = 2)
    FROM new_rows GROUP BY partner ORDER BY partner
    ON CONFLICT (sha256(partner)) DO UPDATE SET
        pending = c.pending + excluded.pending, inflight = c.inflight + excluded.inflight,
        acked = c.acked + excluded.acked, failed = c.failed + excluded.failed;
    RETURN NULL;
END $$;
CREATE FUNCTION setpeer_outbox_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counts AS c SET {_COUNTS_SET}
    FROM (
        SELECT n.partner,
            sum((n.state = 0 AND n.attempts = 0)::int - (o.state = 0 AND o.attempts = 0)::int)
                AS pending,
            sum((n.state = 0 AND n.attempts > 0)::int - (o.state = 0 AND o.attempts > 0)::int)
                AS inflight,
            sum((n.state = 1)::int - (o.state = 1)::int) AS acked,
            sum((n.state = 2)::int - (o.state = 2)::int) AS failed
        FROM new_rows n JOIN old_rows o ON o.seq = n.seq
        GROUP BY n.partner
    ) d
    WHERE sha256(c.partner) = sha256(d.partner)
        AND (d.pending, d.inflight, d.acked, d.failed) <> (0, 0, 0, 0);
    RETURN NULL;
END $$;
CREATE FUNCTION setpeer_outbox_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counts AS c SET {_COUNTS_SET}
    FROM (
        SELECT partner, -count(*) FILTER (WHERE state = 0 AND attempts = 0) AS pending,
            -count(*) FILTER (WHERE state = 0 AND attempts > 0) AS inflight,
            -count(*) FILTER (WHERE state = 1) AS acked,
            -count(*) FILTER (WHERE state = 2) AS failed
        FROM old_rows GROUP BY partner
    ) d
    WHERE sha256(c.partner) = sha256(d.partner);
    RETURN NULL;
END $$;
CREATE FUNCTION setpeer_inbox_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counts AS c (partner, received)
    SELECT partner, count(*) FROM new_rows GROUP BY partner ORDER BY partner
    ON CONFLICT (sha256(partner)) DO UPDATE SET received = c.received + excluded.received;
    RETURN NULL;
END $$;
CREATE FUNCTION setpeer_inbox_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counts AS c SET received = c.received - d.n
    FROM (SELECT partner, count(*) AS n FROM old_rows GROUP BY partner) d
    WHERE sha256(c.partner) = sha256(d.partner);
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION setpeer_outbox_inserted();
CREATE TRIGGER outbox_counts_update AFTER UPDATE ON outbox
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION setpeer_outbox_updated();
CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION setpeer_outbox_deleted();
CREATE TRIGGER inbox_counts_insert AFTER INSERT ON inbox
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION setpeer_inbox_inserted();
CREATE TRIGGER inbox_counts_delete AFTER DELETE ON inbox
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION setpeer_inbox_deleted();

CREATE TABLE leases (
    partner BYTEA NOT NULL,
    owner BYTEA NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX leases_partner ON leases (sha256(partner));
""",
    # Row leases: every node sends the rows it leased (``lease_outbound``). A narrow
    # table beside the outbox, not columns in it: taking and renewing a lease then
    # rewrites a 40-byte row (HOT, no trigger) instead of a SET-sized outbox row
    # with its four indexes and the counts trigger.
    3: """
CREATE TABLE outbox_leases (
    seq BIGINT PRIMARY KEY,
    owner BYTEA NOT NULL,
    until TIMESTAMPTZ NOT NULL
) WITH (fillfactor = 70);
CREATE INDEX outbox_leases_owner ON outbox_leases (sha256(owner));
""",
}
assert sorted(STEPS) == list(range(1, SCHEMA_VERSION + 1))


async def schema_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The version recorded in the current schema (0: none yet)."""
    cur = await conn.execute("SELECT to_regclass('schema_version') IS NOT NULL")
    row = await cur.fetchone()
    if row is None or not row[0]:
        return 0
    cur = await conn.execute("SELECT max(version) FROM schema_version")
    row = await cur.fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


def _newer(version: int) -> StoreError:
    return StoreError(
        f"the PostgreSQL store has schema version {version}; this setpeer knows"
        f" {SCHEMA_VERSION}: upgrade setpeer"
    )


async def migrate_connection(conn: psycopg.AsyncConnection[Any]) -> int:
    """Create or upgrade the schema on ``conn`` (autocommit); refuse a newer one.

    Everything runs in one transaction after ``pg_advisory_xact_lock``: a second
    node starting at the same moment waits, then finds the work done.

    Returns:
        The schema version now there.

    Raises:
        StoreError: a newer schema than this setpeer knows.
        psycopg.Error: the server refused (the caller words it).
    """
    version = await schema_version(conn)
    if version == SCHEMA_VERSION:
        return version  # the usual start: no lock, no write
    if version > SCHEMA_VERSION:
        raise _newer(version)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATE_LOCK,))
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = await schema_version(conn)  # again, under the lock
        if version > SCHEMA_VERSION:
            raise _newer(version)
        for step in range(version + 1, SCHEMA_VERSION + 1):
            await conn.execute(STEPS[step])
        if version < SCHEMA_VERSION:
            await conn.execute("DELETE FROM schema_version")
            await conn.execute(
                "INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION,)
            )
    return SCHEMA_VERSION


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


def enqueue_rows(items: Sequence[OutboundNew]) -> tuple[list[bytes], list[bytes], list[bytes]]:
    """Checked columns for :func:`insert_outbox` (partner, jti, token).

    Raises:
        InvalidValue: a field is not a valid Unicode string.
    """
    partners, jtis, tokens = [], [], []
    for item in items:
        partners.append(check_text(item.partner, "partner").encode())
        jtis.append(check_text(item.jti, "jti").encode())
        tokens.append(check_text(item.token, "token").encode())
    return partners, jtis, tokens


async def insert_outbox(
    conn: Conn,
    rows: tuple[list[bytes], list[bytes], list[bytes]],
    lease: tuple[bytes, float] | None = None,
) -> None:
    """One INSERT for many SETs, in the given order (``seq`` follows it).

    ``lease`` = ``(owner, ttl)``: the rows are leased to ``owner`` in the same
    statement (``enqueue_leased``: a node sends what it publishes).
    """
    insert = (
        "INSERT INTO outbox (partner, jti, token)"
        " SELECT p, j, t FROM unnest(%b::bytea[], %b::bytea[], %b::bytea[])"
        " WITH ORDINALITY AS u(p, j, t, n) ORDER BY n"
    )
    if lease is None:
        await conn.execute(insert, rows)
        return
    await conn.execute(
        f"WITH new AS ({insert} RETURNING seq)"
        " INSERT INTO outbox_leases (seq, owner, until)"
        " SELECT seq, %b, clock_timestamp() + make_interval(secs => %s) FROM new",
        (*rows, *lease),
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


def _retry_at(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    raise InvalidValue(f"retry_at must be a number of seconds, not {type(value).__name__}")


def _attempts(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    raise InvalidValue(f"attempts must be an integer in [0, 2**63-1], got {value!r}")


def apply_write(partner: str, effects: Sequence[Effect]) -> Write:
    """The Ledger's decisions for ``partner``, in the order SQLite applies them.

    Sent first (attempts never fall; the last retry time wins), then Acked, then
    Failed (the first verdict for a jti wins), then the answers paid. Only
    unfinished rows change: a late Sent never reopens an acked SET (MP-9). A jti no
    row can hold (not text) matches nothing, as in the other backends.

    Raises:
        InvalidValue: ``partner``, an ``err`` or a ``description`` is not text, or
            a Sent's attempts or retry time is not a number (SQLite would store it).
    """
    key = check_text(partner, "partner").encode()
    sent: dict[str, tuple[int, float | None]] = {}
    acked: list[bytes] = []
    failed: dict[str, tuple[bytes, bytes]] = {}
    paid: list[bytes] = []
    for e in effects:
        if isinstance(e, Failed):
            err = check_text(e.err, "err").encode()
            description = check_text(e.description, "description").encode()
            if is_text(e.jti):
                failed.setdefault(e.jti, (err, description))
        elif isinstance(e, Sent) and is_text(e.jti):
            before = sent.get(e.jti, (0, None))[0]
            sent[e.jti] = (max(before, _attempts(e.attempts)), _retry_at(e.retry_at))
        elif isinstance(e, Acked) and is_text(e.jti):
            acked.append(e.jti.encode())
        elif isinstance(e, AcksSent):
            paid += [jti.encode() for jti in e.jtis if is_text(jti)]
    # A row acked in this same write needs no attempt count first (one row version
    # instead of two: the usual case when a frame's ack comes quickly).
    for jti in acked:
        sent.pop(jti.decode(), None)
    sent_rows = (
        [jti.encode() for jti in sent],
        [a for a, _ in sent.values()],
        [r for _, r in sent.values()],
    )
    failed_rows = (
        [j.encode() for j in failed],
        [e for e, _ in failed.values()],
        [d for _, d in failed.values()],
    )

    async def write(conn: Conn) -> None:
        match = "sha256(o.partner) = sha256(%s) AND sha256(o.jti) = sha256(u.j) AND o.state = 0"
        if sent_rows[0]:
            await conn.execute(
                "UPDATE outbox o SET attempts = greatest(o.attempts, u.a), next_attempt_at = u.r"
                " FROM unnest(%b::bytea[], %s::bigint[], %s::float8[]) AS u(j, a, r)"
                f" WHERE {match}",
                (*sent_rows, key),
            )
        if acked:
            await conn.execute(
                f"UPDATE outbox o SET state = 1 FROM unnest(%b::bytea[]) AS u(j) WHERE {match}",
                (acked, key),
            )
        if failed_rows[0]:
            await conn.execute(
                "UPDATE outbox o SET state = 2, err = u.e, description = u.d"
                f" FROM unnest(%b::bytea[], %b::bytea[], %b::bytea[]) AS u(j, e, d) WHERE {match}",
                (*failed_rows, key),
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
) -> Write:
    """Store verified SETs (dedupe on ``(iss, jti)``) and owed answers together.

    The write returns one flag per item: True for the copy that was stored.

    Raises:
        InvalidValue: a field is not text, or the claims are not JSON.
    """
    key = check_text(partner, "partner").encode()
    keys = [(check_text(i.iss, "iss").encode(), check_text(i.jti, "jti").encode()) for i in items]
    tokens = [check_text(i.token, "token").encode() for i in items]
    claims = [encode_claims(i.claims) for i in items]
    owed: dict[bytes, tuple[bytes | None, bytes | None]] = {}
    for a in answers:
        jti = check_text(a.jti, "jti").encode()
        err = None if a.err is None else check_text(a.err, "err")
        description = None if a.description is None else check_text(a.description, "description")
        owed.pop(jti, None)  # one answer per jti: the latest wins, as an upsert would
        owed[jti] = (_b(err), _b(description))

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
                (key, list(owed), [e for e, _ in owed.values()], [d for _, d in owed.values()]),
            )
        return fresh

    return write


def set_session_write(partner: str, state: str) -> Write:
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
