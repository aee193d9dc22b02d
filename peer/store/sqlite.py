"""The SQLite store: WAL mode, one writer thread, group commit.

Every write is a small function run by one writer thread on its own connection.
While a transaction commits, new writes queue up; the writer then runs all of them
in the next transaction, each under a SAVEPOINT so one failing write (a duplicate
jti) does not undo the others. So 1,000 concurrent ``publish`` calls cost a handful
of commits, never one fsync each (PERFORMANCE.md "Storage").

Durability, per write: what a promise rests on commits with ``synchronous = FULL``
(fsync before returning) — ``enqueue`` (publish returns only once the SET is
durable), ``accept_inbound`` (we ack only what is on disk) and ``mark_done`` (a SET
marked done is never handed out again). Bookkeeping that can be redone — attempts,
acks received, answers paid, session state — commits with ``NORMAL``: it survives a
process kill (WAL), and after a power cut the worst case is a SET resent and
deduplicated by the partner. WAL frames are appended in order, so the next FULL
commit's fsync covers earlier NORMAL ones too.

Reads use a second connection (WAL lets readers run beside the writer). Integer
primary keys, unique indexes on ``(partner, jti)`` and ``(iss, jti)``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import queue
import socket
import sqlite3
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import anyio
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
)

__all__ = ["SQLiteStore", "wake_path"]

T = TypeVar("T")
PENDING, ACKED, FAILED = 0, 1, 2
_MAX_GROUP = 512  # writes per transaction: bounds one commit's latency

SCHEMA = """
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
"""


def wake_path(db: Path) -> str:
    """The Unix datagram socket a running node listens on for this database.

    Under the temp folder, named by a hash of the database path: socket paths are
    limited to ~107 bytes, database paths are not.
    """
    digest = hashlib.sha256(str(db.resolve()).encode()).hexdigest()[:20]
    return os.path.join(tempfile.gettempdir(), f"setpeer-{digest}.wake")


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA busy_timeout = 30000")
    return conn


def migrate_file(path: Path) -> int:
    """Create or upgrade the schema; refuse a database newer than this code.

    Returns:
        The schema version now in the file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path)
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}; this setpeer knows {SCHEMA_VERSION}:"
                " upgrade setpeer"
            )
        if version < SCHEMA_VERSION:
            # One script, one transaction: a half-made schema never lands.
            conn.executescript(
                f"BEGIN IMMEDIATE;{SCHEMA}PRAGMA user_version = {SCHEMA_VERSION};COMMIT;"
            )
        return SCHEMA_VERSION
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: {exc}") from exc
    finally:
        conn.close()


class _Write:
    __slots__ = ("durable", "fn", "future", "loop")

    def __init__(
        self,
        fn: Callable[[sqlite3.Connection], Any],
        durable: bool,
        loop: asyncio.AbstractEventLoop,
        future: asyncio.Future[Any],
    ) -> None:
        self.fn = fn
        self.durable = durable
        self.loop = loop
        self.future = future


class SQLiteStore:
    """The embedded default store (``sqlite:///path``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.commits = 0
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._writer_conn = _connect(path)
        self._reader = _connect(path)
        self._read_lock = threading.Lock()
        self._thread = threading.Thread(target=self._write_loop, name="setpeer-sqlite", daemon=True)
        self._thread.start()
        self._wake_addr = wake_path(path)
        self._watching = False
        self._closed = False

    @classmethod
    async def open(cls, path: Path) -> SQLiteStore:
        await anyio.to_thread.run_sync(migrate_file, path)
        return await anyio.to_thread.run_sync(cls, path)

    # -- the writer ----------------------------------------------------------------

    def _write_loop(self) -> None:
        conn = self._writer_conn
        synchronous_full = True
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < _MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                batch.append(more)
            durable = any(write.durable for write in batch)
            try:
                if durable != synchronous_full:
                    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
                    synchronous_full = durable
                results = self._run_batch(conn, batch)
            except sqlite3.Error as exc:
                error = StoreError(f"SQLite commit failed: {exc}")
                results = [(False, error)] * len(batch)
            # One wake-up of the event loop per batch, not one per write.
            by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Write, bool, Any]]] = {}
            for write, (ok, value) in zip(batch, results, strict=True):
                by_loop.setdefault(write.loop, []).append((write, ok, value))
            for loop, settled in by_loop.items():
                loop.call_soon_threadsafe(_settle_all, settled)

    def _run_batch(self, conn: sqlite3.Connection, batch: list[_Write]) -> list[tuple[bool, Any]]:
        """All writes in one transaction; if one fails, redo them one savepoint each.

        The common case costs no savepoints at all; a failing write (a duplicate jti)
        is rare, and then only its own changes are undone.
        """
        conn.execute("BEGIN IMMEDIATE")
        try:
            results: list[tuple[bool, Any]] = [(True, write.fn(conn)) for write in batch]
        except Exception:
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            results = []
            for index, write in enumerate(batch):
                conn.execute(f"SAVEPOINT w{index}")
                try:
                    results.append((True, write.fn(conn)))
                    conn.execute(f"RELEASE w{index}")
                except Exception as exc:  # one write's failure is its own
                    conn.execute(f"ROLLBACK TO w{index}")
                    conn.execute(f"RELEASE w{index}")
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

    async def _write(self, fn: Callable[[sqlite3.Connection], T], *, durable: bool) -> T:
        if self._closed:
            raise StoreError("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_Write(fn, durable, loop, future))
        return await future

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreError("the store is closed")

        def run() -> T:
            with self._read_lock:
                try:
                    return fn(self._reader)
                except sqlite3.Error as exc:
                    raise StoreError(f"SQLite read failed: {exc}") from exc

        return await anyio.to_thread.run_sync(run)

    # -- outbox --------------------------------------------------------------------

    async def enqueue(self, items: Sequence[OutboundNew]) -> None:
        now = time.time()
        rows = [(i.partner, i.jti, i.token, now) for i in items]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO outbox (partner, jti, token, created_at) VALUES (?, ?, ?, ?)", rows
            )

        await self._write(write, durable=True)
        self._wake({i.partner for i in items})

    async def load_outbound(
        self, partner: str, *, limit: int, after_seq: int = 0
    ) -> list[OutboundRow]:
        def read(conn: sqlite3.Connection) -> list[OutboundRow]:
            cursor = conn.execute(
                "SELECT seq, jti, token, attempts, next_attempt_at FROM outbox"
                " WHERE partner = ? AND state = 0 AND seq > ? ORDER BY seq LIMIT ?",
                (partner, after_seq, limit),
            )
            return [
                OutboundRow(seq, partner, jti, token, attempts, nxt)
                for seq, jti, token, attempts, nxt in cursor
            ]

        return await self._read(read)

    async def apply(self, partner: str, effects: Sequence[Effect]) -> None:
        sent = [(e.attempts, e.retry_at, partner, e.jti) for e in effects if isinstance(e, Sent)]
        acked = [(partner, e.jti) for e in effects if isinstance(e, Acked)]
        failed = [(e.err, e.description, partner, e.jti) for e in effects if isinstance(e, Failed)]
        paid = [(partner, jti) for e in effects if isinstance(e, AcksSent) for jti in e.jtis]

        def write(conn: sqlite3.Connection) -> None:
            # Only unfinished rows change: a late Sent never reopens an acked SET.
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
        now = time.time()
        rows = [(partner, i.iss, i.jti, i.token, json.dumps(i.claims), now) for i in items]
        owed = [(partner, a.jti, a.err, a.description) for a in answers]

        def write(conn: sqlite3.Connection) -> list[bool]:
            fresh = []
            for row in rows:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO inbox (partner, iss, jti, token, claims, received_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
                fresh.append(cursor.rowcount == 1)
            conn.executemany(
                "INSERT OR REPLACE INTO acks_due (partner, jti, err, description)"
                " VALUES (?, ?, ?, ?)",
                owed,
            )
            return fresh

        return await self._write(write, durable=True)

    async def acks_due(self, partner: str) -> list[Answer]:
        def read(conn: sqlite3.Connection) -> list[Answer]:
            cursor = conn.execute(
                "SELECT jti, err, description FROM acks_due WHERE partner = ?", (partner,)
            )
            return [Answer(jti, err, description) for jti, err, description in cursor]

        return await self._read(read)

    async def fetch_inbox(self, *, after_seq: int, limit: int) -> list[InboxRow]:
        def read(conn: sqlite3.Connection) -> list[InboxRow]:
            cursor = conn.execute(
                "SELECT seq, partner, iss, jti, token, claims FROM inbox"
                " WHERE done = 0 AND seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
            return [
                InboxRow(seq, partner, iss, jti, token, json.loads(claims))
                for seq, partner, iss, jti, token, claims in cursor
            ]

        return await self._read(read)

    async def mark_done(self, seqs: Sequence[int]) -> None:
        rows = [(seq,) for seq in seqs]

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany("UPDATE inbox SET done = 1 WHERE seq = ?", rows)

        # NORMAL: a done mark survives a process kill (WAL); only a power cut in the
        # next moment could hand the SET out once more (docs/decisions.md).
        await self._write(write, durable=False)

    # -- status --------------------------------------------------------------------

    async def failures(self, partner: str | None = None) -> list[FailureRow]:
        def read(conn: sqlite3.Connection) -> list[FailureRow]:
            sql = "SELECT partner, jti, err, description, attempts FROM outbox WHERE state = 2"
            args: tuple[Any, ...] = ()
            if partner is not None:
                sql += " AND partner = ?"
                args = (partner,)
            cursor = conn.execute(sql + " ORDER BY seq", args)
            return [FailureRow(p, j, e or "", d or "", a) for p, j, e, d, a in cursor]

        return await self._read(read)

    async def stats(self) -> dict[str, PartnerCounts]:
        def read(conn: sqlite3.Connection) -> dict[str, PartnerCounts]:
            counts: dict[str, dict[str, Any]] = {}
            for row in conn.execute(
                "SELECT partner,"
                " SUM(state = 0 AND attempts = 0), SUM(state = 0 AND attempts > 0),"
                " SUM(state = 1), SUM(state = 2),"
                " MAX(CASE WHEN state = 0 THEN attempts END),"
                " MIN(CASE WHEN state = 0 AND attempts > 0 THEN next_attempt_at END)"
                " FROM outbox GROUP BY partner"
            ):
                partner, pending, inflight, acked, failed, attempts, nxt = row
                counts[partner] = {
                    "pending": pending or 0,
                    "inflight": inflight or 0,
                    "acked": acked or 0,
                    "failed": failed or 0,
                    "received": 0,
                    "max_attempts": attempts or 0,
                    "next_attempt_at": nxt,
                }
            for partner, received in conn.execute(
                "SELECT partner, COUNT(*) FROM inbox GROUP BY partner"
            ):
                counts.setdefault(partner, {"received": 0})["received"] = received
            return {p: PartnerCounts(**c) for p, c in counts.items()}

        return await self._read(read)

    async def set_session(self, partner: str, state: str) -> None:
        now = time.time()

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO sessions (partner, state, updated_at) VALUES (?, ?, ?)",
                (partner, state, now),
            )

        await self._write(write, durable=False)

    async def sessions(self) -> dict[str, str]:
        def read(conn: sqlite3.Connection) -> dict[str, str]:
            return dict(conn.execute("SELECT partner, state FROM sessions").fetchall())

        return await self._read(read)

    # -- wake-ups across processes -------------------------------------------------

    def _wake(self, partners: set[str]) -> None:
        """Tell a node running on this database (maybe another process) to look."""
        if self._watching:
            return  # the node enqueued through this very store: its Link knows
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                for partner in partners:
                    sock.sendto(f"{os.getpid()} {partner}".encode()[:1024], self._wake_addr)
        except OSError:
            pass  # nobody listens: the node (if any) loads the outbox when it starts

    async def watch(self) -> AsyncIterator[str | None]:
        """Partners another process enqueued for, as datagrams arrive (< 1 ms)."""
        path = self._wake_addr
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        sock = await anyio.create_unix_datagram_socket(local_path=path)
        self._watching = True
        own = f"{os.getpid()} ".encode()
        try:
            async with sock:
                while True:
                    data, _ = await sock.receive()
                    if data.startswith(own):
                        continue  # our own enqueue: the Link was told directly
                    _, _, partner = data.decode(errors="replace").partition(" ")
                    yield partner or None
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        await anyio.to_thread.run_sync(self._thread.join)
        self._writer_conn.close()
        with self._read_lock:
            self._reader.close()


def _settle_all(settled: list[tuple[_Write, bool, Any]]) -> None:
    for write, ok, value in settled:
        if write.future.done():
            continue  # the caller was cancelled
        if ok:
            write.future.set_result(value)
        else:
            write.future.set_exception(value)


def _store_error(exc: Exception) -> Exception:
    if isinstance(exc, sqlite3.IntegrityError) and "outbox" in str(exc):
        return DuplicateJti("a jti is never reused for one partner (MP-9)")
    if isinstance(exc, sqlite3.Error):
        return StoreError(f"SQLite write failed: {exc}")
    return exc
