"""The SQLite store: WAL mode, one writer thread, group commit.

Every write is a small function. Writes made in one event-loop turn travel to the
writer thread as one list; while a transaction commits, more lists queue up; the
writer runs everything it finds in the next transaction. So 1,000 concurrent
``publish`` calls cost a handful of commits, never one fsync each (PERFORMANCE.md
"Storage"). One failing write (a duplicate jti) does not undo the others: the batch
is then redone with one SAVEPOINT per write, only in that rare case.

Durability, per write. What a promise rests on commits with ``synchronous = FULL``
(the WAL is fsynced before the caller hears back): ``enqueue`` (``publish`` returns
only once the SET survives a crash, power loss included) and ``accept_inbound``
(we ack only what is on disk: a partner never resends an acked SET). Bookkeeping
that can be redone — attempts, acks received, answers paid, done marks, session
state — commits with ``NORMAL``: it survives a process kill (WAL), and after a
power cut the worst case is a SET resent (the partner dedupes) or handed to the
application once more. WAL frames are appended in order, so the next FULL commit's
fsync covers earlier NORMAL ones too. With group commit FULL costs one fsync per
batch, not per SET (measured figures: docs/decisions.md).

Reads use a second connection: WAL lets readers run beside the writer, and beside
another process (``setpeer send``) writing the same file. Integer primary keys,
unique indexes on ``(partner, jti)`` and ``(iss, jti)``; per-partner counts are kept
by triggers so ``stats()`` never scans a table.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

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
    decode_claims,
    encode_claims,
    is_text,
)
from .memory import LocalLeases
from .wake import WakeSender, listen, wake_path

__all__ = ["SQLiteStore", "connect", "migrate_file"]

T = TypeVar("T")
_MAX_GROUP = 2048  # writes per transaction, about: bounds one commit's latency

_BUSY_TIMEOUT = 30.0  # seconds a writer waits for another process's transaction

# Schema steps, version -> script, run in order inside one transaction by
# migrate_file(). Version 1 is kept verbatim so files made by it migrate.
_STEPS: dict[int, str] = {
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
    # Row leases (DESIGN.md "Storage"): used by PostgreSQL, where several nodes share
    # the outbox; the table is here too so both stores have one shape and one version.
    3: """
CREATE TABLE outbox_leases (
    seq INTEGER PRIMARY KEY,
    owner TEXT NOT NULL,
    until REAL NOT NULL
);
""",
}
assert sorted(_STEPS) == list(range(1, SCHEMA_VERSION + 1))


def connect(path: Path) -> sqlite3.Connection:
    """A connection in WAL mode, autocommit (we issue BEGIN), FULL sync by default.

    Raises:
        sqlite3.Error: cannot open; StoreError: WAL is not available there.
    """
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT
    )
    try:
        # WAL: readers never block the writer, and a second process (setpeer send)
        # can write while the node reads. Network file systems cannot do it.
        mode = _journal_wal(conn)
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: SQLite cannot use WAL mode here (got {mode!r})")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute(f"PRAGMA busy_timeout = {int(_BUSY_TIMEOUT * 1000)}")
    except BaseException:
        conn.close()
        raise
    return conn


def _journal_wal(conn: sqlite3.Connection) -> str:
    """Switch to WAL (a no-op once the file is in WAL mode); the journal mode it has.

    Two processes creating the file at once (``run`` and ``send``): the switch needs
    an exclusive lock and SQLite refuses it at once ("database is locked") rather than
    wait in its busy handler, so it is tried again here, up to ``_BUSY_TIMEOUT``.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT
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
                    for statement in _statements(_STEPS[step]):
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


@dataclasses.dataclass(slots=True)
class _Write:
    fn: Callable[[sqlite3.Connection], Any]
    durable: bool
    partners: frozenset[str]  # to wake after commit (enqueue only)
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class SQLiteStore:
    """The embedded default store (``sqlite:///path``); use :meth:`open`.

    Args:
        path: the database file.
        full_sync: commit promised writes with ``synchronous = FULL`` (survives
            power loss); False uses ``NORMAL`` throughout (survives a process crash).
    """

    def __init__(self, path: Path, *, full_sync: bool = True) -> None:
        self.path = path
        self.commits = 0
        self._full_sync = full_sync
        self._queue: queue.SimpleQueue[list[_Write] | None] = queue.SimpleQueue()
        self._turns: dict[asyncio.AbstractEventLoop, list[_Write]] = {}
        self._writer_conn = connect(path)
        try:
            self._reader = connect(path)
        except BaseException:
            self._writer_conn.close()
            raise
        self._read_lock = threading.Lock()
        self._wake = WakeSender(wake_path(path))
        self._watching = False
        self._closed = False
        # Leases live in this process: one node runs per SQLite file (wake.py refuses
        # a second), so there is nobody to share them with.
        self._leases = LocalLeases()
        self._thread = threading.Thread(target=self._write_loop, name="setpeer-sqlite", daemon=True)
        self._thread.start()

    @classmethod
    async def open(cls, path: Path, *, full_sync: bool = True) -> SQLiteStore:
        """Create or migrate the schema, then open the store.

        Raises:
            StoreError: not a database, not writable, or a newer schema.
        """
        await anyio.to_thread.run_sync(migrate_file, path)

        def make() -> SQLiteStore:
            try:
                return cls(path, full_sync=full_sync)
            except sqlite3.Error as exc:
                raise StoreError(f"{path}: {exc}") from None

        return await anyio.to_thread.run_sync(make)

    # -- the writer ----------------------------------------------------------------

    def _submit(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        durable: bool,
        partners: frozenset[str] = frozenset(),
    ) -> asyncio.Future[T]:
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        turn = self._turns.get(loop)
        if turn is None:
            # The first write of this turn: hand the whole turn over once every task
            # that is ready now has run (call_soon runs after them).
            turn = self._turns[loop] = []
            loop.call_soon(self._hand_over, loop)
        turn.append(_Write(fn, durable, partners, loop, future))
        return future

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        turn = self._turns.pop(loop, None)
        if turn:
            self._queue.put(turn)

    def _write_loop(self) -> None:
        conn = self._writer_conn
        full = True  # connect() sets FULL
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = list(first)
            while len(batch) < _MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # close after this batch
                    break
                batch.extend(more)
            try:
                want_full = self._full_sync and any(write.durable for write in batch)
                if want_full != full:
                    conn.execute(f"PRAGMA synchronous = {'FULL' if want_full else 'NORMAL'}")
                    full = want_full
                results = self._run_batch(conn, batch)
            except Exception as exc:  # the whole transaction failed
                results = [(False, _store_error(exc)) for _ in batch]
            woken = {
                p
                for write, (ok, _) in zip(batch, results, strict=True)
                if ok
                for p in write.partners
            }
            if woken and not self._watching:
                # Our own node was told directly; another process may be listening.
                self._wake.send(sorted(woken))
            # One wake-up of each event loop per batch, not one per write.
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Write, bool, Any]]] = {}
            for write, (ok, value) in zip(batch, results, strict=True):
                by_loop.setdefault(write.loop, []).append((write, ok, value))
            for loop, settled in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_settle_all, settled)
                except RuntimeError:
                    pass  # that loop is closed: nobody waits any more

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Write]) -> list[tuple[bool, Any]]:
        """All writes in one transaction; if one fails, redo them one savepoint each."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            results: list[tuple[bool, Any]] = [(True, write.fn(conn)) for write in batch]
        except Exception:
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            results = []
            for write in batch:
                conn.execute("SAVEPOINT one")
                try:
                    results.append((True, write.fn(conn)))
                    conn.execute("RELEASE one")
                except Exception as exc:  # one write's failure is its own
                    conn.execute("ROLLBACK TO one")
                    conn.execute("RELEASE one")
                    results.append((False, _store_error(exc)))
        try:
            conn.execute("COMMIT")
        except sqlite3.Error:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise
        self.commits += 1
        return results

    async def _write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        durable: bool,
        partners: frozenset[str] = frozenset(),
    ) -> T:
        return await self._submit(fn, durable=durable, partners=partners)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("the store is closed")

        def run() -> T:
            with self._read_lock:
                try:
                    return fn(self._reader)
                except sqlite3.Error as exc:
                    raise StoreError(f"SQLite read failed: {exc}") from None

        return await anyio.to_thread.run_sync(run)

    # -- outbox --------------------------------------------------------------------

    async def enqueue(self, items: Sequence[OutboundNew]) -> None:
        now = time.time()
        rows = [
            (
                check_text(i.partner, "partner"),
                check_text(i.jti, "jti"),
                check_text(i.token, "token"),
                now,
            )
            for i in items
        ]
        if not rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO outbox (partner, jti, token, created_at) VALUES (?, ?, ?, ?)", rows
            )

        await self._write(write, durable=True, partners=frozenset(row[0] for row in rows))

    async def load_outbound(
        self, partner: str, *, limit: int, after_seq: int = 0
    ) -> list[OutboundRow]:
        args = (
            check_text(partner, "partner"),
            check_count(after_seq, "after_seq"),
            check_count(limit, "limit"),
        )

        def read(conn: sqlite3.Connection) -> list[OutboundRow]:
            cursor = conn.execute(
                "SELECT seq, jti, token, attempts, next_attempt_at FROM outbox"
                " WHERE partner = ? AND state = 0 AND seq > ? ORDER BY seq LIMIT ?",
                args,
            )
            return [
                OutboundRow(seq, partner, jti, token, attempts, nxt)
                for seq, jti, token, attempts, nxt in cursor
            ]

        return await self._read(read)

    async def apply(self, partner: str, effects: Sequence[Effect]) -> None:
        check_text(partner, "partner")
        # A jti no row can hold (not text) matches nothing: skipped, as in memory.
        acked = [(partner, e.jti) for e in effects if isinstance(e, Acked) and is_text(e.jti)]
        # A row acked in this same write needs no attempt count first (one row
        # write instead of two: the usual case when a frame's ack comes quickly).
        done = {jti for _, jti in acked}
        sent = [
            (e.attempts, e.retry_at, partner, e.jti)
            for e in effects
            if isinstance(e, Sent) and is_text(e.jti) and e.jti not in done
        ]
        failed = [
            (check_text(e.err, "err"), check_text(e.description, "description"), partner, e.jti)
            for e in effects
            if isinstance(e, Failed) and is_text(e.jti)
        ]
        paid = [
            (partner, jti)
            for e in effects
            if isinstance(e, AcksSent)
            for jti in e.jtis
            if is_text(jti)
        ]

        def write(conn: sqlite3.Connection) -> None:
            # Only unfinished rows change: a late Sent never reopens an acked SET (MP-9).
            conn.executemany(
                "UPDATE outbox SET attempts = MAX(attempts, ?), next_attempt_at = ?"
                " WHERE partner = ? AND jti = ? AND state = 0",
                sent,
            )
            conn.executemany(
                "UPDATE outbox SET state = 1 WHERE partner = ? AND jti = ? AND state = 0", acked
            )
            conn.executemany(
                "UPDATE outbox SET state = 2, err = ?, description = ?"
                " WHERE partner = ? AND jti = ? AND state = 0",
                failed,
            )
            conn.executemany("DELETE FROM acks_due WHERE partner = ? AND jti = ?", paid)

        await self._write(write, durable=False)

    # -- inbox ---------------------------------------------------------------------

    async def accept_inbound(
        self, partner: str, items: Sequence[InboundNew], answers: Sequence[Answer]
    ) -> list[bool]:
        check_text(partner, "partner")
        now = time.time()
        rows = [
            (
                partner,
                check_text(i.iss, "iss"),
                check_text(i.jti, "jti"),
                check_text(i.token, "token"),
                encode_claims(i.claims),
                now,
            )
            for i in items
        ]
        owed = [
            (
                partner,
                check_text(a.jti, "jti"),
                None if a.err is None else check_text(a.err, "err"),
                None if a.description is None else check_text(a.description, "description"),
            )
            for a in answers
        ]

        def write(conn: sqlite3.Connection) -> list[bool]:
            fresh = []
            for row in rows:
                # RFC 8417 §2.2: jti is unique per issuer, so (iss, jti) dedupes; a
                # duplicate is dropped here but still answered (PUSH-9, PP-23).
                cursor = conn.execute(
                    "INSERT INTO inbox (partner, iss, jti, token, claims, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (iss, jti) DO NOTHING",
                    row,
                )
                fresh.append(cursor.rowcount == 1)
            conn.executemany(
                "INSERT INTO acks_due (partner, jti, err, description) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (partner, jti) DO UPDATE"
                " SET err = excluded.err, description = excluded.description",
                owed,
            )
            return fresh

        return await self._write(write, durable=True)

    async def acks_due(self, partner: str) -> list[Answer]:
        check_text(partner, "partner")

        def read(conn: sqlite3.Connection) -> list[Answer]:
            cursor = conn.execute(
                "SELECT jti, err, description FROM acks_due WHERE partner = ?", (partner,)
            )
            return [Answer(jti, err, description) for jti, err, description in cursor]

        return await self._read(read)

    async def fetch_inbox(self, *, after_seq: int, limit: int) -> list[InboxRow]:
        args = (check_count(after_seq, "after_seq"), check_count(limit, "limit"))

        def read(conn: sqlite3.Connection) -> list[InboxRow]:
            cursor = conn.execute(
                "SELECT seq, partner, iss, jti, token, claims FROM inbox"
                " WHERE done = 0 AND seq > ? ORDER BY seq LIMIT ?",
                args,
            )
            return [
                InboxRow(seq, partner, iss, jti, token, decode_claims(claims))
                for seq, partner, iss, jti, token, claims in cursor
            ]

        return await self._read(read)

    async def mark_done(self, seqs: Sequence[int]) -> None:
        rows = [(check_count(seq, "seq"),) for seq in seqs]
        if not rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("UPDATE inbox SET done = 1 WHERE seq = ?", rows)

        # NORMAL: a done mark survives a process kill (WAL); only a power cut in the
        # next moment could hand the SET to the application once more.
        await self._write(write, durable=False)

    # -- status --------------------------------------------------------------------

    async def failures(self, partner: str | None = None) -> list[FailureRow]:
        if partner is not None:
            check_text(partner, "partner")

        def read(conn: sqlite3.Connection) -> list[FailureRow]:
            cursor = conn.execute(
                "SELECT partner, jti, err, description, attempts FROM outbox"
                " WHERE state = 2 ORDER BY seq"
            )
            return [
                FailureRow(p, j, e or "", d or "", a)
                for p, j, e, d, a in cursor
                if partner is None or p == partner
            ]

        return await self._read(read)

    async def stats(self) -> dict[str, PartnerCounts]:
        def read(conn: sqlite3.Connection) -> dict[str, PartnerCounts]:
            # Both queries read small things: the counts table (one row per
            # partner) and the partial index of in-flight rows. One read
            # transaction, so both see the same commit.
            conn.execute("BEGIN")
            try:
                return summarize(conn)
            finally:
                conn.execute("COMMIT")

        def summarize(conn: sqlite3.Connection) -> dict[str, PartnerCounts]:
            inflight = {
                partner: (attempts, nxt)
                for partner, attempts, nxt in conn.execute(
                    "SELECT partner, MAX(attempts), MIN(next_attempt_at) FROM outbox"
                    " WHERE state = 0 AND attempts > 0 GROUP BY partner"
                )
            }
            return {
                partner: PartnerCounts(
                    pending, flying, acked, failed, received, *inflight.get(partner, (0, None))
                )
                for partner, pending, flying, acked, failed, received in conn.execute(
                    "SELECT partner, pending, inflight, acked, failed, received FROM counts"
                )
            }

        return await self._read(read)

    async def set_session(self, partner: str, state: str) -> None:
        row = (check_text(partner, "partner"), check_text(state, "state"), time.time())

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO sessions (partner, state, updated_at) VALUES (?, ?, ?)",
                row,
            )

        await self._write(write, durable=False)

    async def sessions(self) -> dict[str, str]:
        def read(conn: sqlite3.Connection) -> dict[str, str]:
            return dict(conn.execute("SELECT partner, state FROM sessions").fetchall())

        return await self._read(read)

    # -- leases (single node) ------------------------------------------------------

    async def claim_partner(self, partner: str, owner: str, ttl: float) -> bool:
        if self._closed:
            raise StoreError("the store is closed")
        return self._leases.claim(partner, owner, ttl)

    async def release_partner(self, partner: str, owner: str) -> None:
        if self._closed:
            raise StoreError("the store is closed")
        self._leases.release(partner, owner)

    # -- wake-ups across processes -------------------------------------------------

    async def watch(self) -> AsyncIterator[str | None]:
        """Partners another process enqueued for, as its datagrams arrive (< 1 ms).

        Raises:
            StoreError: another node already watches this database.
        """
        if self._closed:
            raise StoreError("the store is closed")
        self._watching = True
        try:
            async with contextlib.aclosing(listen(self._wake.path)) as partners:
                async for partner in partners:
                    yield partner
        finally:
            self._watching = False

    async def aclose(self) -> None:
        """Finish every queued write, then close the connections."""
        if self._closed:
            return
        self._closed = True
        for loop in list(self._turns):
            self._hand_over(loop)
        self._queue.put(None)
        await anyio.to_thread.run_sync(self._thread.join)
        self._writer_conn.close()
        with self._read_lock:
            self._reader.close()
        self._wake.close()


def _settle_all(settled: list[tuple[_Write, bool, Any]]) -> None:
    for write, ok, value in settled:
        if write.future.done():
            continue  # the caller was cancelled; the write stands
        if ok:
            write.future.set_result(value)
        else:
            write.future.set_exception(value)


def _store_error(exc: Exception) -> StoreError:
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, sqlite3.IntegrityError) and "outbox" in str(exc):
        return DuplicateJti("a jti is never reused for one partner (MP-9)")
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"SQLite write failed: {exc}")
    error = StoreError(f"write failed: {exc!r}")
    error.__cause__ = exc
    return error
