"""The PostgreSQL schema: its versioned steps and the migration that applies them.

The statements that read and write it are in ``postgres_sql.py`` and
``postgres_leases.py``. A step, once released, is never edited: a change is a new
step.

The tables have the SQLite shape (``sqlite_schema.py``) and the same version
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

from typing import Any

import psycopg

from ..errors import StoreError
from .base import SCHEMA_VERSION

__all__ = ["STEPS", "migrate_connection", "schema_version"]

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
    # one row per partner. The ``leases`` table made here (one owner per partner)
    # is unused: nodes lease outbox rows (step 3). It stays, so that every
    # database at one version has one shape.
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
    # As SQLite's step 4: ``refusals``, a ring per partner (``n`` numbers a
    # partner's refusals; record_refusals deletes those ``keep`` or more behind the
    # newest), ``outbox.failed_at``, and ``counts.unhandled`` / ``counts.refused``.
    # The inbox trigger functions are replaced to keep ``unhandled`` too; an update
    # trigger follows the done marks.
    4: """
CREATE TABLE refusals (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner BYTEA NOT NULL,
    n BIGINT NOT NULL,
    jti BYTEA NOT NULL,
    err BYTEA NOT NULL,
    description BYTEA NOT NULL,
    at DOUBLE PRECISION NOT NULL
);
CREATE INDEX refusals_ring ON refusals (sha256(partner), n);
ALTER TABLE outbox ADD COLUMN failed_at DOUBLE PRECISION;
ALTER TABLE counts ADD COLUMN unhandled BIGINT NOT NULL DEFAULT 0;
ALTER TABLE counts ADD COLUMN refused BIGINT NOT NULL DEFAULT 0;
UPDATE counts AS c SET unhandled = d.n
FROM (SELECT partner, count(*) AS n FROM inbox WHERE NOT done GROUP BY partner) d
WHERE sha256(c.partner) = sha256(d.partner);

CREATE OR REPLACE FUNCTION setpeer_inbox_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO counts AS c (partner, received, unhandled)
    SELECT partner, count(*), count(*) FILTER (WHERE NOT done)
    FROM new_rows GROUP BY partner ORDER BY partner
    ON CONFLICT (sha256(partner)) DO UPDATE SET
        received = c.received + excluded.received,
        unhandled = c.unhandled + excluded.unhandled;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION setpeer_inbox_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counts AS c SET received = c.received - d.n, unhandled = c.unhandled - d.undone
    FROM (
        SELECT partner, count(*) AS n, count(*) FILTER (WHERE NOT done) AS undone
        FROM old_rows GROUP BY partner
    ) d
    WHERE sha256(c.partner) = sha256(d.partner);
    RETURN NULL;
END $$;
CREATE FUNCTION setpeer_inbox_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE counts AS c SET unhandled = c.unhandled + d.delta
    FROM (
        SELECT n.partner, sum((NOT n.done)::int - (NOT o.done)::int) AS delta
        FROM new_rows n JOIN old_rows o ON o.seq = n.seq
        GROUP BY n.partner
    ) d
    WHERE sha256(c.partner) = sha256(d.partner) AND d.delta <> 0;
    RETURN NULL;
END $$;
CREATE TRIGGER inbox_counts_update AFTER UPDATE ON inbox
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION setpeer_inbox_updated();
""",
    # As SQLite's step 5: SSF streams (both roles) and their subjects, keyed by the
    # subject's canonical JSON (``BYTEA``, matched through ``sha256()`` as the rest);
    # ``seq`` keeps the order subjects were added in.
    5: """
CREATE TABLE streams (
    partner BYTEA NOT NULL,
    role BYTEA NOT NULL,
    stream_id BYTEA NOT NULL,
    config TEXT NOT NULL,
    status BYTEA NOT NULL,
    reason BYTEA,
    verification TEXT,
    updated_at DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX streams_key ON streams (sha256(partner), sha256(role), sha256(stream_id));
CREATE TABLE stream_subjects (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    partner BYTEA NOT NULL,
    role BYTEA NOT NULL,
    stream_id BYTEA NOT NULL,
    subject BYTEA NOT NULL
);
CREATE UNIQUE INDEX stream_subjects_key
    ON stream_subjects (sha256(partner), sha256(role), sha256(stream_id), sha256(subject));
""",
    # As SQLite's step 6: each running node's heartbeat (times are the node's clock).
    6: """
CREATE TABLE nodes (
    owner BYTEA NOT NULL,
    host BYTEA NOT NULL,
    pid BIGINT NOT NULL,
    started_at DOUBLE PRECISION NOT NULL,
    beat_at DOUBLE PRECISION NOT NULL
);
CREATE UNIQUE INDEX nodes_owner ON nodes (sha256(owner));
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
