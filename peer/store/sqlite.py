"""The SQLite store: WAL mode, one writer thread, group commit.

Writes are small functions on the writer's connection, committed in groups by
``writer.ThreadWriter`` (many writes, one transaction; one failing write, a
duplicate jti, does not undo the others: the batch is then redone with one
SAVEPOINT per write, only in that rare case). The schema and its migration steps
are in ``sqlite_schema.py``.

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
another process (``setpeer send``) writing the same file.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

import anyio.to_thread

from ..errors import StoreError
from ..protocol.effects import Effect
from .base import (
    NODES_FORGOTTEN,
    Answer,
    DuplicateJti,
    FailureRow,
    InboundNew,
    InboxRow,
    NodeRow,
    OutboundNew,
    OutboundRow,
    PartnerCounts,
    RefusalNew,
    RefusalRow,
    StreamRow,
    UnknownStream,
    stream_row,
)
from .checks import (
    StoreClosed,
    answers_owed,
    canonical_subject,
    check_count,
    check_stream_key,
    check_text,
    check_time,
    decode_claims,
    inbound_rows,
    node_fields,
    outbound_rows,
    refusal_plan,
    stream_fields,
)
from .plan import plan_effects
from .sqlite_schema import connect, migrate_file
from .wake import WakeSender, listen, wake_path
from .writer import Result, ThreadWriter, Write, runs

__all__ = ["SQLiteStore", "connect", "migrate_file"]

T = TypeVar("T")
Statement: TypeAlias = Callable[[sqlite3.Connection], Any]

_INSERT_OUTBOX = "INSERT INTO outbox (partner, jti, token, created_at) VALUES (?, ?, ?, ?)"


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
        self._full = True  # connect() sets FULL; the writer thread switches it per batch
        self._writer = ThreadWriter[Statement](
            self._commit, error=_store_error, after=self._wake_others, name="setpeer-sqlite"
        )

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

    # -- the writer: one transaction per batch (writer.py) ---------------------------

    def _commit(self, batch: list[Write[Statement]]) -> list[Result]:
        """All writes in one transaction; if one fails, redo them one savepoint each."""
        conn = self._writer_conn
        want_full = self._full_sync and any(write.durable for write in batch)
        if want_full != self._full:
            conn.execute(f"PRAGMA synchronous = {'FULL' if want_full else 'NORMAL'}")
            self._full = want_full
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = _all_at_once(conn, batch)
        except Exception:
            conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            results = [_in_savepoint(conn, write) for write in batch]
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

    def _wake_others(self, batch: list[Write[Statement]], results: list[Result]) -> None:
        woken = {
            p for write, (ok, _) in zip(batch, results, strict=True) if ok for p in write.partners
        }
        if woken and not self._watching:
            # Our own node was told directly; another process may be listening.
            self._wake.send(sorted(woken))

    async def _write(
        self,
        fn: Callable[[sqlite3.Connection], T],
        *,
        durable: bool,
        partners: frozenset[str] = frozenset(),
        rows: list[tuple[Any, ...]] | None = None,
    ) -> T:
        result: T = await self._writer.submit(fn, durable=durable, partners=partners, rows=rows)
        return result

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreClosed("the store is closed")

        def run() -> T:
            with self._read_lock:
                return self._on_reader(fn)

        return await anyio.to_thread.run_sync(run)

    def _read_now(self, fn: Callable[[sqlite3.Connection], T]) -> T | None:
        """``fn`` on the reader, on the event loop itself, if the reader is free;
        None if a worker thread holds it (never waits for it). For small reads only:
        a worker thread's hand-off costs more than they do."""
        if self._closed:
            raise StoreClosed("the store is closed")
        if not self._read_lock.acquire(blocking=False):
            return None
        try:
            return self._on_reader(fn)
        finally:
            self._read_lock.release()

    def _on_reader(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """``fn`` on the reader connection (its lock held by the caller)."""
        try:
            return fn(self._reader)
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite read failed: {exc}") from None

    # -- outbox --------------------------------------------------------------------

    async def enqueue(self, items: Sequence[OutboundNew]) -> None:
        now = time.time()
        rows: list[tuple[Any, ...]] = [(p, j, t, now) for p, j, t in outbound_rows(items)]
        if not rows:
            return

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(_INSERT_OUTBOX, rows)

        partners = frozenset(row[0] for row in rows)
        await self._write(write, durable=True, partners=partners, rows=rows)

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
        plan = plan_effects(partner, effects)
        key = plan.partner
        sent = [(a, r, key, jti) for jti, (a, r) in plan.sent.items()]
        acked = [(key, jti) for jti in plan.acked]
        now = time.time()
        failed = [(e, d, now, key, jti) for jti, (e, d) in plan.failed.items()]
        paid = [(key, jti) for jti in plan.paid]

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
                "UPDATE outbox SET state = 2, err = ?, description = ?, failed_at = ?"
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
        rows = [(partner, *row, now) for row in inbound_rows(items)]
        owed = [(partner, *answer) for answer in answers_owed(answers)]

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
        after, limit = check_count(after_seq, "after_seq"), check_count(limit, "limit")

        def read(after: int, limit: int) -> Callable[[sqlite3.Connection], list[InboxRow]]:
            def run(conn: sqlite3.Connection) -> list[InboxRow]:
                cursor = conn.execute(
                    "SELECT seq, partner, iss, jti, token, claims FROM inbox"
                    " WHERE done = 0 AND seq > ? ORDER BY seq LIMIT ?",
                    (after, limit),
                )
                return [
                    InboxRow(seq, partner, iss, jti, token, decode_claims(claims))
                    for seq, partner, iss, jti, token, claims in cursor
                ]

            return run

        # The first few rows are read on the event loop (an application waiting for
        # the next SET gets it ~0.7 ms sooner: no worker thread's hand-off), the rest
        # of a large page in a worker thread, so the loop never reads much itself.
        first = min(limit, INLINE_INBOX_ROWS)
        rows = self._read_now(read(after, first))
        if rows is None:
            return await self._read(read(after, limit))
        if len(rows) < first or limit == first:
            return rows
        return rows + await self._read(read(rows[-1].seq, limit - first))

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

    async def failures(
        self,
        partner: str | None = None,
        *,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[FailureRow]:
        query = (
            "SELECT seq, partner, jti, err, description, attempts, failed_at FROM outbox"
            " WHERE state = 2"
        )
        args: list[Any] = []
        if partner is not None:
            query += " AND partner = ?"
            args.append(check_text(partner, "partner"))
        if since is not None:
            query += " AND failed_at >= ?"
            args.append(check_time(since, "since"))
        query += " ORDER BY seq DESC LIMIT ?"
        args.append(-1 if limit is None else check_count(limit, "limit"))

        def read(conn: sqlite3.Connection) -> list[FailureRow]:
            rows = conn.execute(f"SELECT * FROM ({query}) ORDER BY seq", args).fetchall()
            return [
                FailureRow(p, j, e or "", d or "", a, at or 0.0) for _, p, j, e, d, a, at in rows
            ]

        return await self._read(read)

    async def record_refusals(
        self,
        items: Sequence[RefusalNew],
        keep: int,
        *,
        dropped: Mapping[str, int] | None = None,
    ) -> None:
        plan = refusal_plan(items, keep, dropped)
        if not plan:
            return

        def write(conn: sqlite3.Connection) -> None:
            for partner, (added, rows) in plan.items():
                # The partner's refusals ever, this batch included: the ordinal of its
                # newest row; the ring keeps the ordinals above total - keep.
                (total,) = conn.execute(
                    "INSERT INTO counts (partner, refused) VALUES (?, ?)"
                    " ON CONFLICT (partner) DO UPDATE SET refused = refused + excluded.refused"
                    " RETURNING refused",
                    (partner, added),
                ).fetchone()
                first = total - len(rows)
                conn.executemany(
                    "INSERT INTO refusals (partner, n, jti, err, description, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(partner, first + i, *row) for i, row in enumerate(rows, 1)],
                )
                conn.execute(
                    "DELETE FROM refusals WHERE partner = ? AND n <= ?", (partner, total - keep)
                )

        # NORMAL: a record of what we refused is no promise to anyone.
        await self._write(write, durable=False)

    async def refusals(
        self, *, since: float | None = None, partner: str | None = None, limit: int | None = None
    ) -> list[RefusalRow]:
        query = "SELECT seq, partner, jti, err, description, at FROM refusals WHERE true"
        args: list[Any] = []
        if partner is not None:
            query += " AND partner = ?"
            args.append(check_text(partner, "partner"))
        if since is not None:
            query += " AND at >= ?"
            args.append(check_time(since, "since"))
        query += " ORDER BY seq DESC LIMIT ?"
        args.append(-1 if limit is None else check_count(limit, "limit"))

        def read(conn: sqlite3.Connection) -> list[RefusalRow]:
            rows = conn.execute(f"SELECT * FROM ({query}) ORDER BY seq", args)
            return [RefusalRow(*row) for row in rows]

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
                    pending,
                    flying,
                    acked,
                    failed,
                    received,
                    *inflight.get(partner, (0, None)),
                    unhandled,
                    refused,
                )
                for partner, pending, flying, acked, failed, received, unhandled, refused in (
                    conn.execute(
                        "SELECT partner, pending, inflight, acked, failed, received,"
                        " unhandled, refused FROM counts"
                    )
                )
            }

        return await self._read(read)

    # -- streams -------------------------------------------------------------------

    async def save_stream(self, row: StreamRow) -> StreamRow:
        fields = stream_fields(row, time.time())

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO streams (partner, role, stream_id, config, status,"
                " reason, verification, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                fields,
            )

        # FULL: a stream's configuration is a promise to the partner that made it.
        await self._write(write, durable=True)
        return stream_row(*fields)

    async def streams(
        self, *, partner: str | None = None, role: str | None = None
    ) -> list[StreamRow]:
        query = (
            "SELECT partner, role, stream_id, config, status, reason, verification, updated_at"
            " FROM streams WHERE true"
        )
        args: list[Any] = []
        if partner is not None:
            query += " AND partner = ?"
            args.append(check_text(partner, "partner"))
        if role is not None:
            query += " AND role = ?"
            args.append(check_stream_key("", role, "")[1])
        query += " ORDER BY partner, role, stream_id"

        def read(conn: sqlite3.Connection) -> list[StreamRow]:
            return [stream_row(*row) for row in conn.execute(query, args)]

        return await self._read(read)

    async def delete_stream(self, partner: str, role: str, stream_id: str) -> bool:
        key = check_stream_key(partner, role, stream_id)

        def write(conn: sqlite3.Connection) -> bool:
            conn.execute(
                "DELETE FROM stream_subjects WHERE partner = ? AND role = ? AND stream_id = ?",
                key,
            )
            cursor = conn.execute(
                "DELETE FROM streams WHERE partner = ? AND role = ? AND stream_id = ?", key
            )
            return cursor.rowcount > 0

        found: bool = await self._write(write, durable=True)
        return found

    async def add_subject(
        self, partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
    ) -> bool:
        key = check_stream_key(partner, role, stream_id)
        text = canonical_subject(subject)

        def write(conn: sqlite3.Connection) -> bool:
            known = conn.execute(
                "SELECT 1 FROM streams WHERE partner = ? AND role = ? AND stream_id = ?", key
            ).fetchone()
            if known is None:
                raise UnknownStream(f"no stream {stream_id!r} ({role}) for partner {partner!r}")
            cursor = conn.execute(
                "INSERT INTO stream_subjects (partner, role, stream_id, subject)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (*key, text),
            )
            return cursor.rowcount == 1

        new: bool = await self._write(write, durable=True)
        return new

    async def remove_subject(
        self, partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
    ) -> bool:
        args = (*check_stream_key(partner, role, stream_id), canonical_subject(subject))

        def write(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "DELETE FROM stream_subjects"
                " WHERE partner = ? AND role = ? AND stream_id = ? AND subject = ?",
                args,
            )
            return cursor.rowcount > 0

        found: bool = await self._write(write, durable=True)
        return found

    async def subjects(self, partner: str, role: str, stream_id: str) -> list[Mapping[str, Any]]:
        key = check_stream_key(partner, role, stream_id)

        def read(conn: sqlite3.Connection) -> list[Mapping[str, Any]]:
            cursor = conn.execute(
                "SELECT subject FROM stream_subjects"
                " WHERE partner = ? AND role = ? AND stream_id = ? ORDER BY seq",
                key,
            )
            return [decode_claims(text) for (text,) in cursor]

        return await self._read(read)

    async def set_session(self, partner: str, state: str) -> None:
        row = (check_text(partner, "partner"), check_text(state, "state"), time.time())

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR REPLACE INTO sessions (partner, state, updated_at) VALUES (?, ?, ?)",
                row,
            )

        await self._write(write, durable=False)

    async def probe_write(self) -> None:
        """A write through the writer: BEGIN IMMEDIATE (the write lock) and COMMIT;
        after a failed transaction, one that rewrites ``user_version`` unchanged."""
        if self._closed:
            raise StoreClosed("the store is closed")
        writer = self._writer

        def probe(conn: sqlite3.Connection) -> None:
            if writer.failure is not None:  # read in the writer thread that sets it
                (version,) = conn.execute("PRAGMA user_version").fetchone()
                conn.execute(f"PRAGMA user_version = {int(version)}")

        await self._write(probe, durable=False)

    async def sessions(self) -> dict[str, str]:
        def read(conn: sqlite3.Connection) -> dict[str, str]:
            return dict(conn.execute("SELECT partner, state FROM sessions").fetchall())

        return await self._read(read)

    async def beat(self, node: NodeRow) -> None:
        row = node_fields(node)
        forgotten = row[4] - NODES_FORGOTTEN

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO nodes VALUES (?, ?, ?, ?, ?)", row)
            conn.execute("DELETE FROM nodes WHERE beat_at < ?", (forgotten,))

        await self._write(write, durable=False)

    async def leave(self, owner: str) -> None:
        key = (check_text(owner, "owner"),)

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM nodes WHERE owner = ?", key)

        await self._write(write, durable=False)

    async def nodes(self) -> list[NodeRow]:
        def read(conn: sqlite3.Connection) -> list[NodeRow]:
            query = "SELECT owner, host, pid, started_at, beat_at FROM nodes ORDER BY beat_at DESC"
            return [NodeRow(*row) for row in conn.execute(query)]

        return await self._read(read)

    # -- wake-ups across processes -------------------------------------------------

    async def watch(self) -> AsyncIterator[str | None]:
        """Partners another process enqueued for, as its datagrams arrive (< 1 ms).

        Raises:
            StoreError: another node already watches this database.
        """
        if self._closed:
            raise StoreClosed("the store is closed")
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
        await self._writer.aclose()
        self._writer_conn.close()
        with self._read_lock:
            self._reader.close()
        self._wake.close()


INLINE_INBOX_ROWS = 16
"""Inbox rows :meth:`SQLiteStore.fetch_inbox` reads on the event loop before it hands
the rest of a page to a worker thread (~10 µs each)."""


def _all_at_once(conn: sqlite3.Connection, batch: list[Write[Statement]]) -> list[Result]:
    """Every write in order; runs of enqueues as one ``executemany``."""
    results: list[Result] = []
    for writes, rows in runs(batch):
        if rows is None:
            results.append((True, writes[0].fn(conn)))
        else:
            conn.executemany(_INSERT_OUTBOX, rows)
            results.extend((True, None) for _ in writes)
    return results


def _in_savepoint(conn: sqlite3.Connection, write: Write[Statement]) -> Result:
    """One write in its own SAVEPOINT: its failure is its own."""
    conn.execute("SAVEPOINT one")
    try:
        result: Result = (True, write.fn(conn))
        conn.execute("RELEASE one")
    except Exception as exc:
        conn.execute("ROLLBACK TO one")
        conn.execute("RELEASE one")
        result = (False, _store_error(exc))
    return result


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
