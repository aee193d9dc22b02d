"""The SQLite schema: its versioned steps, the connection settings, migration.

``STEPS`` maps a schema version to the script that makes it from the one before;
:func:`migrate_file` runs the missing ones in order, inside one transaction, and
records the version in ``PRAGMA user_version``. A step, once released, is never
edited (version 1 is kept verbatim so files made by it migrate): a change is a new
step. The version numbers are PostgreSQL's too (``base.SCHEMA_VERSION``).

Integer primary keys, unique indexes on ``(partner, jti)`` and ``(iss, jti)``;
per-partner counts are kept by triggers so ``stats()`` never scans a table.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from ..errors import StoreError
from .base import SCHEMA_VERSION

__all__ = ["BUSY_TIMEOUT", "STEPS", "connect", "migrate_file"]

BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for another process's transaction."""

STEPS: dict[int, str] = {
    1: """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY,
    partner TEXT NOT NULL,
    jti TEXT NOT NULL,
    token TEXT NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    err TEXT,
    description TEXT,
    created_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS outbox_partner_jti ON outbox (partner, jti);
CREATE INDEX IF NOT EXISTS outbox_open ON outbox (partner, seq) WHERE state = 0;
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY,
    partner TEXT NOT NULL,
    iss TEXT NOT NULL,
    jti TEXT NOT NULL,
    token TEXT NOT NULL,
    claims TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    received_at REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS inbox_iss_jti ON inbox (iss, jti);
CREATE INDEX IF NOT EXISTS inbox_new ON inbox (seq) WHERE done = 0;
CREATE TABLE IF NOT EXISTS acks_due (
    partner TEXT NOT NULL,
    jti TEXT NOT NULL,
    err TEXT,
    description TEXT,
    PRIMARY KEY (partner, jti)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
    partner TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    updated_at REAL NOT NULL
);
""",
    # Counts mirror the rows (state 0 with attempts 0 is pending, with attempts > 0
    # in flight, 1 acked, 2 failed): stats() reads one row per partner instead of
    # scanning an outbox that only grows. Small partial indexes serve the in-flight
    # summary and failures().
    2: """
CREATE TABLE counts (
    partner TEXT PRIMARY KEY,
    pending INTEGER NOT NULL DEFAULT 0,
    inflight INTEGER NOT NULL DEFAULT 0,
    acked INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    received INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
INSERT INTO counts (partner, pending, inflight, acked, failed)
    SELECT partner, SUM(state = 0 AND attempts = 0), SUM(state = 0 AND attempts > 0),
        SUM(state = 1), SUM(state = 2)
    FROM outbox GROUP BY partner;
INSERT INTO counts (partner, received)
    SELECT partner, COUNT(*) FROM inbox WHERE true GROUP BY partner
    ON CONFLICT (partner) DO UPDATE SET received = excluded.received;
CREATE INDEX outbox_inflight ON outbox (partner, next_attempt_at, attempts)
    WHERE state = 0 AND attempts > 0;
CREATE INDEX outbox_failed ON outbox (seq) WHERE state = 2;
CREATE TRIGGER outbox_counts_insert AFTER INSERT ON outbox BEGIN
    INSERT INTO counts (partner, pending, inflight, acked, failed) VALUES (
        NEW.partner, NEW.state = 0 AND NEW.attempts = 0, NEW.state = 0 AND NEW.attempts > 0,
        NEW.state = 1, NEW.state = 2)
    ON CONFLICT (partner) DO UPDATE SET
        pending = pending + excluded.pending, inflight = inflight + excluded.inflight,
        acked = acked + excluded.acked, failed = failed + excluded.failed;
END;
CREATE TRIGGER outbox_counts_update AFTER UPDATE OF state, attempts ON outbox
WHEN OLD.state != NEW.state OR (OLD.attempts > 0) != (NEW.attempts > 0) BEGIN
    UPDATE counts SET
        pending = pending - (OLD.state = 0 AND OLD.attempts = 0)
            + (NEW.state = 0 AND NEW.attempts = 0),
        inflight = inflight - (OLD.state = 0 AND OLD.attempts > 0)
            + (NEW.state = 0 AND NEW.attempts > 0),
        acked = acked - (OLD.state = 1) + (NEW.state = 1),
        failed = failed - (OLD.state = 2) + (NEW.state = 2)
    WHERE partner = NEW.partner;
END;
CREATE TRIGGER outbox_counts_delete AFTER DELETE ON outbox BEGIN
    UPDATE counts SET
        pending = pending - (OLD.state = 0 AND OLD.attempts = 0),
        inflight = inflight - (OLD.state = 0 AND OLD.attempts > 0),
        acked = acked - (OLD.state = 1), failed = failed - (OLD.state = 2)
    WHERE partner = OLD.partner;
END;
CREATE TRIGGER inbox_counts_insert AFTER INSERT ON inbox BEGIN
    INSERT INTO counts (partner, received) VALUES (NEW.partner, 1)
    ON CONFLICT (partner) DO UPDATE SET received = received + 1;
END;
CREATE TRIGGER inbox_counts_delete AFTER DELETE ON inbox BEGIN
    UPDATE counts SET received = received - 1 WHERE partner = OLD.partner;
END;
""",
    # Row leases: used by PostgreSQL, where several nodes share the outbox; the
    # table is here too so both stores have one shape and one version.
    3: """
CREATE TABLE outbox_leases (
    seq INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    until REAL NOT NULL
);
""",
    # Failures in both directions. ``refusals``: the partner's SETs we refused, a ring
    # per partner (``n`` numbers a partner's refusals; record_refusals deletes those
    # ``keep`` or more behind the newest, through the index). ``outbox.failed_at``:
    # when an outbound SET failed (NULL for rows that failed before). ``counts``
    # gains ``refused`` (refusals ever) and ``unhandled`` (inbox rows not done, kept
    # by the inbox triggers, now remade to count it too).
    4: """
CREATE TABLE refusals (
    seq INTEGER PRIMARY KEY,
    partner TEXT NOT NULL,
    n INTEGER NOT NULL,
    jti TEXT NOT NULL,
    err TEXT NOT NULL,
    description TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX refusals_ring ON refusals (partner, n);
ALTER TABLE outbox ADD COLUMN failed_at REAL;
ALTER TABLE counts ADD COLUMN unhandled INTEGER NOT NULL DEFAULT 0;
ALTER TABLE counts ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
UPDATE counts SET unhandled = (
    SELECT COUNT(*) FROM inbox WHERE inbox.partner = counts.partner AND done = 0);
DROP TRIGGER inbox_counts_insert;
DROP TRIGGER inbox_counts_delete;
CREATE TRIGGER inbox_counts_insert AFTER INSERT ON inbox BEGIN
    INSERT INTO counts (partner, received, unhandled) VALUES (NEW.partner, 1, NEW.done = 0)
    ON CONFLICT (partner) DO UPDATE SET
        received = received + 1, unhandled = unhandled + excluded.unhandled;
END;
CREATE TRIGGER inbox_counts_done AFTER UPDATE OF done ON inbox
WHEN (OLD.done = 0) != (NEW.done = 0) BEGIN
    UPDATE counts SET unhandled = unhandled + (NEW.done = 0) - (OLD.done = 0)
    WHERE partner = NEW.partner;
END;
CREATE TRIGGER inbox_counts_delete AFTER DELETE ON inbox BEGIN
    UPDATE counts SET received = received - 1, unhandled = unhandled - (OLD.done = 0)
    WHERE partner = OLD.partner;
END;
""",
    # SSF streams, both roles (``role``: "transmitter" or "receiver"), and the
    # subjects added to them, keyed by canonical JSON; ``seq`` keeps the order
    # they were added in. ``config`` and ``verification`` are JSON objects.
    5: """
CREATE TABLE streams (
    partner TEXT NOT NULL,
    role TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    verification TEXT,
    updated_at REAL NOT NULL,
    PRIMARY KEY (partner, role, stream_id)
) WITHOUT ROWID;
CREATE TABLE stream_subjects (
    seq INTEGER PRIMARY KEY,
    partner TEXT NOT NULL,
    role TEXT NOT NULL,
    stream_id TEXT NOT NULL,
    subject TEXT NOT NULL
);
CREATE UNIQUE INDEX stream_subjects_key ON stream_subjects (partner, role, stream_id, subject);
""",
    # Heartbeats: each running node rewrites its row every few seconds and deletes it
    # when it stops, so ``setpeer status`` can tell a running node from stale rows.
    6: """
CREATE TABLE nodes (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started_at REAL NOT NULL,
    beat_at REAL NOT NULL
) WITHOUT ROWID;
""",
}
assert sorted(STEPS) == list(range(1, SCHEMA_VERSION + 1))


def _create_private(path: Path) -> None:
    """Create a new database file with mode 0600: it holds every SET. SQLite creates
    ``-wal`` and ``-shm`` with the database's mode, so they are private too. An existing
    file is left as it is (``setpeer run`` warns when others may read it)."""
    if str(path) == ":memory:" or path.exists():
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass  # another process created it first
    except OSError:
        pass  # sqlite3.connect reports why the file cannot be made


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode, autocommit (we issue BEGIN), FULL sync by default.

    Raises:
        sqlite3.Error: cannot open; StoreError: WAL is not available there.
    """
    _create_private(path)
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT
    )
    try:
        # WAL: readers never block the writer, and a second process (setpeer send)
        # can write while the node reads. Network file systems cannot do it.
        mode = _journal_wal(conn)
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: SQLite cannot use WAL mode here (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _journal_wal(conn: sqlite3.Connection) -> str:
    """Switch to WAL (a no-op once the file is in WAL mode); the journal mode it has.

    Two processes creating the file at once (``run`` and ``send``): the switch needs
    an exclusive lock and SQLite refuses it at once ("database is locked") rather than
    wait in its busy handler, so it is tried again here, up to ``BUSY_TIMEOUT``.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def _statements(script: str) -> list[str]:
    """Split a script into statements (trigger bodies hold semicolons too)."""
    statements, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    return statements


def _version(conn: sqlite3.Connection) -> int:
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    return version


def migrate_file(path: Path) -> int:
    """Create or upgrade the schema in ``path``; refuse a newer one.

    Two processes may start at once (``run`` and ``send``): the version is read
    again under the write lock, so only one of them migrates.

    Returns:
        The schema version now in the file.

    Raises:
        StoreError: not a database, cannot be created, or a newer schema.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(path)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open store {path}: {exc}") from None
    try:
        version = _version(conn)
        if version < SCHEMA_VERSION:
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = _version(conn)  # again, under the write lock
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _statements(STEPS[step]):
                        conn.execute(statement)
                if version < SCHEMA_VERSION:
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}; this setpeer knows"
                f" {SCHEMA_VERSION}: upgrade setpeer"
            )
        return max(version, SCHEMA_VERSION)
    except sqlite3.Error as exc:
        raise StoreError(f"store {path}: {exc}") from None
    finally:
        conn.close()
