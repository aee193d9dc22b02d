"""The PostgreSQL store: several setpeer nodes on one database (DESIGN.md "Storage").

Writes go through one connection and are committed in groups, as in
``sqlite.py``: everything written in one event-loop turn is one transaction, and
turns that queue up while a transaction commits share the next one
(PERFORMANCE.md "Storage": never one commit per SET). Consecutive ``enqueue``
calls of a group become one ``INSERT ... SELECT FROM unnest(...)``. One failing
write (a duplicate jti) does not undo the others: the group is redone with a
SAVEPOINT per write, only in that rare case. A deadlock or serialization failure
between nodes rolls the whole group back and runs it again.

Durability, per write, as in SQLite: a group holding ``enqueue`` or
``accept_inbound`` commits with the server's ``synchronous_commit`` (the promise
to ``publish`` and the ack we send rest on it); a group of bookkeeping only
(attempts, acks received, done marks, session state) commits with
``synchronous_commit = off``: a server crash may lose its last moment, which
costs a resent SET or a SET handed to the application once more.

Several nodes: inbox dedupe is ``INSERT ... ON CONFLICT DO NOTHING`` on
``(iss, jti)``, so two nodes storing the same SET at once get exactly one "new".
``enqueue`` runs ``pg_notify('setpeer_outbox', partner)`` in its transaction and
:meth:`PostgresStore.watch` LISTENs, so a node hears about SETs another node
committed. Each node sends the outbox rows it leased (``lease_outbound``; leases
are rows of ``outbox_leases``, expiring by the database's clock); what a node
publishes while it can send is leased to it in the enqueue's own statement
(``enqueue_leased``), which notifies nobody. Partner leases
(``claim_partner``, the ``leases`` table) remain in the store interface for work one
node of a cluster should do at a time; the node itself no longer uses them.

Reads and lease statements use a few autocommit connections. A connection that
died (the server restarted) is replaced: a read is retried once on a fresh
connection, a write group once when its ``BEGIN`` failed (nothing was sent yet).
When the server cannot be reached, calls raise :class:`~peer.errors.StoreError`
and the store recovers by itself when the server is back.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from ..errors import StoreError
from ..protocol.effects import Effect
from .base import (
    Answer,
    FailureRow,
    InboundNew,
    InboxRow,
    OutboundNew,
    OutboundRow,
    PartnerCounts,
    check_count,
    check_text,
    check_ttl,
    decode_claims,
)
from .postgres_schema import (
    CHANNEL,
    Conn,
    accept_inbound_write,
    apply_write,
    db_error,
    enqueue_rows,
    insert_outbox,
    is_retryable,
    migrate_connection,
    notify,
    set_session_write,
    text_of,
)

__all__ = ["PostgresStore", "migrate_url"]

T = TypeVar("T")
_MAX_GROUP = 2048  # writes per transaction, about: bounds one commit's latency
_RETRIES = 5  # a group rolled back by a deadlock between nodes is run again this often
_MAX_IDLE = 4  # idle read connections kept
_CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise
_RELISTEN_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)  # then every 2 s while down


@dataclasses.dataclass(slots=True)
class _Write:
    fn: Callable[[Conn], Awaitable[Any]]
    durable: bool
    outbox: tuple[list[bytes], list[bytes], list[bytes]] | None  # enqueue: merged
    partners: frozenset[str]  # to notify (enqueue only)
    future: asyncio.Future[Any]
    lease: tuple[bytes, float] | None = None  # enqueue_leased: (owner, ttl)


class _Stale(Exception):
    """The writer connection was dead before the group started: safe to run again."""


class PostgresStore:
    """A store on a PostgreSQL server (``postgresql://...``); use :meth:`open`.

    Args:
        url: a libpq connection URI (``postgresql://`` or ``postgres://``).
    """

    shared = True
    """Several nodes may use one database (each sends the outbox rows it leased)."""

    def __init__(self, url: str) -> None:
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise StoreError(f"not a PostgreSQL URL: {exc}") from None
        self._url = url
        self._extra: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            self._extra["connect_timeout"] = _CONNECT_TIMEOUT
        if "application_name" not in params:
            self._extra["application_name"] = "setpeer"
        # For messages: never the password.
        self.where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}" + (
            f"/{params['dbname']}" if params.get("dbname") else ""
        )
        self.commits = 0
        self._closed = False
        self._writer: Conn | None = None
        self._own_pid = 0  # our writer's backend: its NOTIFYs are our own
        self._idle: list[Conn] = []
        self._listeners: set[Conn] = set()
        self._turn: list[_Write] | None = None
        self._queue: collections.deque[list[_Write] | None] = collections.deque()
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        """Connect, create or migrate the schema, and start the writer.

        Raises:
            StoreError: a bad URL, an unreachable server, refused credentials or
                privileges, or a newer schema than this setpeer knows.
        """
        store = cls(url)
        conn = await store._connect()
        try:
            await migrate_connection(conn)
        except psycopg.Error as exc:
            await conn.close()
            raise store._error(exc, "cannot migrate the schema") from None
        except BaseException:
            await conn.close()
            raise
        store._set_writer(conn)
        store._loop = asyncio.get_running_loop()
        store._task = store._loop.create_task(store._write_loop(), name="setpeer-postgres")
        return store

    # -- connections ---------------------------------------------------------------

    async def _connect(self) -> Conn:
        try:
            return await psycopg.AsyncConnection.connect(self._url, **self._extra)
        except psycopg.Error as exc:
            # libpq's first line says why: refused, timed out, no such database,
            # authentication failed. It never holds the password.
            raise StoreError(
                f"cannot connect to PostgreSQL at {self.where} (server unreachable or"
                f" refusing us): {_first_line(exc)}"
            ) from None

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        if isinstance(exc, psycopg.OperationalError):
            return StoreError(
                f"PostgreSQL at {self.where} is unreachable ({doing}): {_first_line(exc)}"
            )
        return db_error(exc)

    def _set_writer(self, conn: Conn) -> None:
        self._writer = conn
        self._own_pid = conn.info.backend_pid

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed")

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()

    async def _read(self, fn: Callable[[Conn], Awaitable[T]], doing: str) -> T:
        """Run ``fn`` on an idle connection; once more on a fresh one if it had died."""
        self._check_open()
        for attempt in (0, 1):
            conn = self._idle.pop() if self._idle else await self._connect()
            try:
                result = await fn(conn)
            except psycopg.Error as exc:
                if conn.broken or conn.closed:
                    # The server went away (restart, failover): every idle connection
                    # is dead too. Retry once on a new one; a read is idempotent.
                    await conn.close()
                    await self._drop_idle()
                    if attempt == 0:
                        continue
                else:
                    await self._put_back(conn)
                raise self._error(exc, doing) from None
            except BaseException:
                await conn.close()  # cancelled mid-statement: the connection's state is unknown
                raise
            await self._put_back(conn)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def _put_back(self, conn: Conn) -> None:
        if self._closed or len(self._idle) >= _MAX_IDLE or conn.broken or conn.closed:
            await conn.close()
        else:
            self._idle.append(conn)

    # -- the writer ----------------------------------------------------------------

    def _submit(
        self,
        fn: Callable[[Conn], Awaitable[T]],
        *,
        durable: bool,
        outbox: tuple[list[bytes], list[bytes], list[bytes]] | None = None,
        partners: frozenset[str] = frozenset(),
        lease: tuple[bytes, float] | None = None,
    ) -> asyncio.Future[T]:
        self._check_open()
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise StoreError("a PostgresStore must be used from the event loop that opened it")
        future: asyncio.Future[T] = loop.create_future()
        if self._turn is None:
            # The first write of this turn: hand the whole turn over once every task
            # that is ready now has run (call_soon runs after them).
            self._turn = []
            loop.call_soon(self._hand_over)
        self._turn.append(_Write(fn, durable, outbox, partners, future, lease))
        return future

    def _hand_over(self) -> None:
        turn, self._turn = self._turn, None
        if turn:
            self._queue.append(turn)
            self._wakeup.set()

    async def _write_loop(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            batch: list[_Write] = []
            stop = False
            while self._queue and len(batch) < _MAX_GROUP:
                turn = self._queue.popleft()
                if turn is None:
                    stop = True
                    break
                batch.extend(turn)
            if batch:
                try:
                    results = await self._run_batch(batch)
                except Exception as exc:  # the whole group failed
                    error = exc if isinstance(exc, StoreError) else self._error(exc, "writing")
                    results = [(False, error) for _ in batch]
                for write, (ok, value) in zip(batch, results, strict=True):
                    if write.future.done():
                        continue  # the caller was cancelled; the write stands
                    if ok:
                        write.future.set_result(value)
                    else:
                        write.future.set_exception(value)
            if stop:
                return

    async def _run_batch(self, batch: list[_Write]) -> list[tuple[bool, Any]]:
        for attempt in range(_RETRIES + 1):
            if self._writer is None or self._writer.broken or self._writer.closed:
                if self._writer is not None:
                    await self._writer.close()
                    self._writer = None
                self._set_writer(await self._connect())
            conn = self._writer
            assert conn is not None
            try:
                return await self._transaction(conn, batch)
            except _Stale:
                if attempt:
                    raise StoreError(f"PostgreSQL at {self.where} is unreachable") from None
            except psycopg.Error as exc:
                if conn.broken or not is_retryable(exc) or attempt == _RETRIES:
                    raise self._error(exc, "writing") from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def _transaction(self, conn: Conn, batch: list[_Write]) -> list[tuple[bool, Any]]:
        # Bookkeeping alone need not wait for the WAL flush (see the module doc).
        begin = "BEGIN"
        if not any(w.durable for w in batch):
            begin += "; SET LOCAL synchronous_commit = off"
        try:
            await conn.execute(begin)
        except psycopg.OperationalError:
            if conn.broken:
                raise _Stale() from None
            raise
        try:
            try:
                results = await self._fast(conn, batch)
            except Exception as exc:
                if conn.broken or (isinstance(exc, psycopg.Error) and is_retryable(exc)):
                    raise
                await conn.execute("ROLLBACK")
                await conn.execute(begin)
                results = await self._one_by_one(conn, batch)
            await notify(
                conn,
                {p for w, (ok, _) in zip(batch, results, strict=True) if ok for p in w.partners},
            )
            await conn.execute("COMMIT")
        except BaseException:
            if not conn.broken and not conn.closed:
                with contextlib.suppress(psycopg.Error):
                    await conn.execute("ROLLBACK")
            raise
        self.commits += 1
        return results

    async def _fast(self, conn: Conn, batch: list[_Write]) -> list[tuple[bool, Any]]:
        """Every write in order; runs of enqueues (leased alike) as one INSERT."""
        results: list[tuple[bool, Any]] = []
        i = 0
        while i < len(batch):
            if batch[i].outbox is None:
                results.append((True, await batch[i].fn(conn)))
                i += 1
                continue
            j = i
            lease = batch[i].lease
            merged: tuple[list[bytes], list[bytes], list[bytes]] = ([], [], [])
            while (
                j < len(batch) and (rows := batch[j].outbox) is not None and batch[j].lease == lease
            ):
                for column, values in zip(merged, rows, strict=True):
                    column.extend(values)
                j += 1
            await insert_outbox(conn, merged, lease)
            results.extend((True, None) for _ in range(j - i))
            i = j
        return results

    async def _one_by_one(self, conn: Conn, batch: list[_Write]) -> list[tuple[bool, Any]]:
        """Each write in its own SAVEPOINT: one failure is that write's alone."""
        results: list[tuple[bool, Any]] = []
        for write in batch:
            await conn.execute("SAVEPOINT one")
            try:
                results.append((True, await write.fn(conn)))
            except Exception as exc:
                if conn.broken or (isinstance(exc, psycopg.Error) and is_retryable(exc)):
                    raise
                await conn.execute("ROLLBACK TO SAVEPOINT one")
                results.append((False, exc if isinstance(exc, StoreError) else db_error(exc)))
            await conn.execute("RELEASE SAVEPOINT one")
        return results

    # -- outbox --------------------------------------------------------------------

    async def enqueue(self, items: Sequence[OutboundNew]) -> None:
        rows = enqueue_rows(items)
        if not rows[0]:
            return

        async def write(conn: Conn) -> None:
            await insert_outbox(conn, rows)

        partners = frozenset(check_text(i.partner, "partner") for i in items)
        await self._submit(write, durable=True, outbox=rows, partners=partners)

    async def enqueue_leased(self, items: Sequence[OutboundNew], owner: str, ttl: float) -> None:
        rows = enqueue_rows(items)
        if not rows[0]:
            return
        lease = (check_text(owner, "owner").encode(), check_ttl(ttl))

        async def write(conn: Conn) -> None:
            await insert_outbox(conn, rows, lease)

        # No NOTIFY: the rows are ours to send, nothing for the other nodes to do.
        await self._submit(write, durable=True, outbox=rows, lease=lease)

    async def load_outbound(
        self, partner: str, *, limit: int, after_seq: int = 0
    ) -> list[OutboundRow]:
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

        return await self._read(read, "loading the outbox")

    async def apply(self, partner: str, effects: Sequence[Effect]) -> None:
        await self._submit(apply_write(partner, effects), durable=False)

    # -- inbox ---------------------------------------------------------------------

    async def accept_inbound(
        self, partner: str, items: Sequence[InboundNew], answers: Sequence[Answer]
    ) -> list[bool]:
        write = accept_inbound_write(partner, items, answers)
        fresh: list[bool] = await self._submit(write, durable=True)
        return fresh

    async def acks_due(self, partner: str) -> list[Answer]:
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

        return await self._read(read, "reading owed answers")

    async def fetch_inbox(self, *, after_seq: int, limit: int) -> list[InboxRow]:
        args = (check_count(after_seq, "after_seq"), check_count(limit, "limit"))

        async def read(conn: Conn) -> list[InboxRow]:
            cur = await conn.execute(
                "SELECT seq, partner, iss, jti, token, claims FROM inbox"
                " WHERE NOT done AND seq > %s ORDER BY seq LIMIT %s",
                args,
                binary=True,
            )
            rows = []
            for seq, p, iss, jti, token, claims in await cur.fetchall():
                rows.append(
                    InboxRow(
                        seq,
                        text_of(p),
                        text_of(iss),
                        text_of(jti),
                        text_of(token),
                        decode_claims(claims),
                    )
                )
            return rows

        return await self._read(read, "reading the inbox")

    async def mark_done(self, seqs: Sequence[int]) -> None:
        rows = [check_count(seq, "seq") for seq in seqs]
        if not rows:
            return

        async def write(conn: Conn) -> None:
            await conn.execute(
                "UPDATE inbox SET done = true WHERE seq = ANY(%s::bigint[]) AND NOT done", (rows,)
            )

        await self._submit(write, durable=False)

    # -- status --------------------------------------------------------------------

    async def failures(self, partner: str | None = None) -> list[FailureRow]:
        query = "SELECT partner, jti, err, description, attempts FROM outbox WHERE state = 2"
        args: tuple[bytes, ...] = ()
        if partner is not None:
            query += " AND sha256(partner) = sha256(%s)"
            args = (check_text(partner, "partner").encode(),)
        query += " ORDER BY seq"

        async def read(conn: Conn) -> list[FailureRow]:
            cur = await conn.execute(query, args)
            return [
                FailureRow(text_of(p), text_of(j), text_of(e) or "", text_of(d) or "", a)
                for p, j, e, d, a in await cur.fetchall()
            ]

        return await self._read(read, "reading failures")

    async def stats(self) -> dict[str, PartnerCounts]:
        async def read(conn: Conn) -> dict[str, PartnerCounts]:
            # One statement, one snapshot: the counts table (one row per partner)
            # and the partial index of in-flight rows.
            cur = await conn.execute(
                "SELECT c.partner, c.pending, c.inflight, c.acked, c.failed, c.received,"
                " coalesce(f.most, 0), f.soonest FROM counts c LEFT JOIN ("
                "  SELECT partner, max(attempts) AS most, min(next_attempt_at) AS soonest"
                "  FROM outbox WHERE state = 0 AND attempts > 0 GROUP BY partner"
                " ) f ON f.partner = c.partner"
            )
            return {text_of(p): PartnerCounts(*counts) for p, *counts in await cur.fetchall()}

        return await self._read(read, "reading counts")

    async def set_session(self, partner: str, state: str) -> None:
        await self._submit(set_session_write(partner, state), durable=False)

    async def sessions(self) -> dict[str, str]:
        async def read(conn: Conn) -> dict[str, str]:
            cur = await conn.execute("SELECT partner, state FROM sessions")
            return {text_of(p): text_of(s) for p, s in await cur.fetchall()}

        return await self._read(read, "reading sessions")

    # -- leases --------------------------------------------------------------------

    async def claim_partner(self, partner: str, owner: str, ttl: float) -> bool:
        args = (
            check_text(partner, "partner").encode(),
            check_text(owner, "owner").encode(),
            check_ttl(ttl),
        )

        async def claim(conn: Conn) -> bool:
            # One statement, the database's clock: free, expired or our own lease is
            # (re)taken; another node's live lease keeps its row and returns nothing.
            # The row lock taken by ON CONFLICT orders two nodes claiming at once.
            cur = await conn.execute(
                "INSERT INTO leases AS l (partner, owner, expires_at)"
                " VALUES (%s, %s, clock_timestamp() + make_interval(secs => %s))"
                " ON CONFLICT (sha256(partner)) DO UPDATE"
                " SET owner = excluded.owner, expires_at = excluded.expires_at"
                " WHERE l.owner = excluded.owner OR l.expires_at <= clock_timestamp()"
                " RETURNING true",
                args,
            )
            return await cur.fetchone() is not None

        return await self._read(claim, "claiming a lease")

    async def release_partner(self, partner: str, owner: str) -> None:
        args = (check_text(partner, "partner").encode(), check_text(owner, "owner").encode())

        async def release(conn: Conn) -> None:
            await conn.execute(
                "DELETE FROM leases WHERE sha256(partner) = sha256(%s) AND owner = %s", args
            )

        await self._read(release, "releasing a lease")

    # -- row leases: each node sends the rows it leased -----------------------------

    async def lease_outbound(
        self, partner: str, owner: str, *, limit: int, ttl: float
    ) -> list[OutboundRow]:
        key, holder = check_text(partner, "partner").encode(), check_text(owner, "owner")
        args = (key, check_count(limit, "limit"), holder.encode(), check_ttl(ttl))

        async def lease(conn: Conn) -> list[OutboundRow]:
            # Candidates: the oldest unfinished rows with no live lease, passing over
            # rows another node is leasing at this moment (SKIP LOCKED: never wait).
            # Taking one is an upsert on its lease row: a free or expired lease is
            # (re)written and returned; one another node took since our snapshot is
            # live by then and stays its own, so two nodes never hold one row.
            async with _bookkeeping(conn):
                cur = await conn.execute(
                    "WITH pick AS ("
                    "  SELECT o.seq FROM outbox o"
                    "  WHERE sha256(o.partner) = sha256(%s) AND o.state = 0 AND NOT EXISTS ("
                    "   SELECT 1 FROM outbox_leases l"
                    "   WHERE l.seq = o.seq AND l.until > clock_timestamp())"
                    "  ORDER BY o.seq LIMIT %s FOR NO KEY UPDATE OF o SKIP LOCKED),"
                    " won AS ("
                    "  INSERT INTO outbox_leases AS l (seq, owner, until)"
                    "  SELECT seq, %s, clock_timestamp() + make_interval(secs => %s) FROM pick"
                    "  ON CONFLICT (seq) DO UPDATE"
                    "  SET owner = excluded.owner, until = excluded.until"
                    "  WHERE l.until <= clock_timestamp()"
                    "  RETURNING l.seq)"
                    " SELECT o.seq, o.jti, o.token, o.attempts, o.next_attempt_at"
                    " FROM outbox o JOIN won USING (seq) WHERE o.state = 0 ORDER BY o.seq",
                    args,
                    binary=True,
                )
                rows = await cur.fetchall()
            return [
                OutboundRow(seq, partner, text_of(jti), text_of(token), attempts, nxt)
                for seq, jti, token, attempts, nxt in rows
            ]

        return await self._read(lease, "leasing outbox rows")

    async def renew_outbound(
        self, partner: str, owner: str, ttl: float, *, jtis: Collection[str] | None = None
    ) -> int:
        key = check_text(partner, "partner").encode()
        holder = check_text(owner, "owner").encode()
        seconds = check_ttl(ttl)
        only = ""
        args: tuple[Any, ...] = (seconds, holder, holder, key)
        if jtis is not None:
            only = " AND sha256(o.jti) IN (SELECT sha256(j) FROM unnest(%s::bytea[]) j)"
            args += ([check_text(j, "jti").encode() for j in jtis],)

        async def renew(conn: Conn) -> int:
            # Leases of finished rows go; those of unfinished rows (the ones named) are
            # extended. A lease not named runs out: its row is not in our memory.
            async with _bookkeeping(conn):
                await conn.execute(
                    "DELETE FROM outbox_leases l USING outbox o"
                    " WHERE sha256(l.owner) = sha256(%s) AND l.owner = %s"
                    " AND o.seq = l.seq AND o.state <> 0",
                    (holder, holder),
                )
                cur = await conn.execute(
                    "UPDATE outbox_leases l"
                    " SET until = clock_timestamp() + make_interval(secs => %s)"
                    " FROM outbox o"
                    " WHERE sha256(l.owner) = sha256(%s) AND l.owner = %s AND o.seq = l.seq"
                    " AND sha256(o.partner) = sha256(%s) AND o.state = 0" + only,
                    args,
                )
                return cur.rowcount

        return await self._read(renew, "renewing outbox leases")

    async def release_outbound(self, partner: str, owner: str) -> None:
        key = check_text(partner, "partner").encode()
        holder = check_text(owner, "owner").encode()

        async def release(conn: Conn) -> None:
            async with _bookkeeping(conn):
                await conn.execute(
                    "DELETE FROM outbox_leases l USING outbox o"
                    " WHERE sha256(l.owner) = sha256(%s) AND l.owner = %s AND o.seq = l.seq"
                    " AND sha256(o.partner) = sha256(%s)",
                    (holder, holder, key),
                )

        await self._read(release, "releasing outbox leases")

    # -- wake-ups across nodes -----------------------------------------------------

    async def _listen(self) -> Conn:
        conn = await self._connect()
        try:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
        except psycopg.Error as exc:
            await conn.close()
            raise self._error(exc, "listening") from None
        self._listeners.add(conn)
        return conn

    async def watch(self) -> AsyncIterator[str | None]:
        """Partners another node (or ``setpeer send``) enqueued for, via NOTIFY.

        Our own commits are skipped: the node tells its Links directly. While the
        server is away the watch reconnects by itself, then yields None (any
        partner: notifications sent meanwhile are lost). Ends when the store closes.

        Raises:
            StoreError: the server cannot be reached when the watch starts.
        """
        self._check_open()
        conn = await self._listen()
        try:
            while not self._closed:
                try:
                    async with contextlib.aclosing(conn.notifies()) as notes:
                        async for note in notes:
                            if note.pid != self._own_pid:
                                yield note.payload or None
                except psycopg.Error:
                    pass  # the connection died: listen again below
                self._listeners.discard(conn)
                await conn.close()
                again = await self._relisten()
                if again is None:
                    return  # the store closed
                conn = again
                yield None
        finally:
            self._listeners.discard(conn)
            await conn.close()

    async def _relisten(self) -> Conn | None:
        """LISTEN on a new connection, retrying while the server is away."""
        for attempt in itertools.count():
            if self._closed:
                return None
            try:
                return await self._listen()
            except StoreError:
                await asyncio.sleep(_RELISTEN_DELAYS[min(attempt, len(_RELISTEN_DELAYS) - 1)])
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        """Commit every queued write, then close all connections."""
        if self._closed:
            return
        self._closed = True
        self._hand_over()
        self._queue.append(None)
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._writer is not None:
            await self._writer.close()
        await self._drop_idle()
        for conn in list(self._listeners):
            await conn.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def migrate_url(url: str) -> int:
    """Create or upgrade the schema at ``url`` (``setpeer migrate``).

    Returns:
        The schema version now there.

    Raises:
        StoreError: unreachable, refused, or a newer schema.
    """
    store = PostgresStore(url)
    conn = await store._connect()
    try:
        return await migrate_connection(conn)
    except psycopg.Error as exc:
        raise store._error(exc, "cannot migrate the schema") from None
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _bookkeeping(conn: Conn) -> AsyncIterator[None]:
    """A transaction for lease statements that does not wait for its WAL flush: a
    lease lost in a server crash costs a resend (deduped by the partner), not a SET."""
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        yield
