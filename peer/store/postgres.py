"""The PostgreSQL store: several setpeer nodes on one database.

This module holds the connection handling; the statements are in
``postgres_sql.py`` (outbox, inbox, status) and ``postgres_leases.py`` (row
leases), the schema in ``postgres_schema.py``.

Writes go through one connection and are committed in groups
(``writer.TaskWriter``): everything written in one event-loop turn is one
transaction, and turns that queue up while a transaction commits share the next
one (never one commit per SET). Consecutive ``enqueue`` calls of a group become
one ``INSERT ... SELECT FROM unnest(...)``. One failing write (a duplicate jti)
does not undo the others: the group is redone with a SAVEPOINT per write, only in
that rare case. A deadlock or serialization failure between nodes rolls the
whole group back and runs it again.

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
committed. Each node sends the outbox rows it leased (``postgres_leases.py``);
what a node publishes while it can send is leased to it in the enqueue's own
statement (``enqueue_leased``), which notifies nobody.

Reads and lease statements use a few autocommit connections. A connection that
died (the server restarted) is replaced: a read is retried once on a fresh
connection, a write group once when its ``BEGIN`` failed (nothing was sent yet).
When the server cannot be reached, calls raise :class:`~peer.errors.StoreError`
and the store recovers by itself when the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
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
    NodeRow,
    OutboundNew,
    OutboundRow,
    PartnerCounts,
    RefusalNew,
    RefusalRow,
    StreamRow,
)
from .checks import StoreClosed, check_text, check_ttl
from .postgres_leases import lease_statement, release_statement, renew_statement
from .postgres_nodes import beat_write, leave_write, nodes_read
from .postgres_schema import migrate_connection
from .postgres_sql import (
    CHANNEL,
    Conn,
    Statement,
    accept_inbound_write,
    acks_due_read,
    apply_write,
    db_error,
    enqueue_rows,
    failures_read,
    fetch_inbox_read,
    insert_outbox,
    is_retryable,
    load_outbound_read,
    mark_done_write,
    notify,
    probe_write_statement,
    record_refusals_write,
    refusals_read,
    run_all,
    run_in_savepoint,
    sessions_read,
    set_session_write,
    stats_read,
)
from .postgres_streams import (
    add_subject_write,
    delete_stream_write,
    remove_subject_write,
    save_stream_write,
    streams_read,
    subjects_read,
)
from .writer import Result, TaskWriter, Write

__all__ = ["PostgresStore", "migrate_url"]

T = TypeVar("T")
_RETRIES = 5  # a group rolled back by a deadlock between nodes is run again this often
_MAX_IDLE = 4  # idle read connections kept
_CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise
_RELISTEN_DELAYS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)  # then every 2 s while down


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
        self._group = TaskWriter[Statement](
            self._commit, error=self._write_error, name="setpeer-postgres"
        )

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
        store._group.start()
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
            raise StoreClosed("the store is closed")

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

    # -- the writer: one transaction per group (writer.py) ---------------------------

    def _write_error(self, exc: Exception) -> StoreError:
        return exc if isinstance(exc, StoreError) else self._error(exc, "writing")

    async def _commit(self, batch: list[Write[Statement]]) -> list[Result]:
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

    async def _transaction(self, conn: Conn, batch: list[Write[Statement]]) -> list[Result]:
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
                results = await run_all(conn, batch)
            except Exception as exc:
                if conn.broken or (isinstance(exc, psycopg.Error) and is_retryable(exc)):
                    raise
                await conn.execute("ROLLBACK")
                await conn.execute(begin)
                results = [await run_in_savepoint(conn, write) for write in batch]
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

    async def _submit(
        self,
        fn: Statement,
        *,
        durable: bool,
        rows: list[tuple[Any, ...]] | None = None,
        partners: frozenset[str] = frozenset(),
        lease: tuple[bytes, float] | None = None,
    ) -> Any:
        self._check_open()
        return await self._group.submit(
            fn, durable=durable, rows=rows, partners=partners, lease=lease
        )

    # -- outbox --------------------------------------------------------------------

    async def enqueue(self, items: Sequence[OutboundNew]) -> None:
        rows = enqueue_rows(items)
        if not rows:
            return

        async def write(conn: Conn) -> None:
            await insert_outbox(conn, rows)

        partners = frozenset(i.partner for i in items)  # checked by enqueue_rows
        await self._submit(write, durable=True, rows=rows, partners=partners)

    async def enqueue_leased(self, items: Sequence[OutboundNew], owner: str, ttl: float) -> None:
        rows = enqueue_rows(items)
        if not rows:
            return
        lease = (check_text(owner, "owner").encode(), check_ttl(ttl))

        async def write(conn: Conn) -> None:
            await insert_outbox(conn, rows, lease)

        # No NOTIFY: the rows are ours to send, nothing for the other nodes to do.
        await self._submit(write, durable=True, rows=rows, lease=lease)

    async def load_outbound(
        self, partner: str, *, limit: int, after_seq: int = 0
    ) -> list[OutboundRow]:
        read = load_outbound_read(partner, limit=limit, after_seq=after_seq)
        rows: list[OutboundRow] = await self._read(read, "loading the outbox")
        return rows

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
        answers: list[Answer] = await self._read(acks_due_read(partner), "reading owed answers")
        return answers

    async def fetch_inbox(self, *, after_seq: int, limit: int) -> list[InboxRow]:
        read = fetch_inbox_read(after_seq=after_seq, limit=limit)
        rows: list[InboxRow] = await self._read(read, "reading the inbox")
        return rows

    async def mark_done(self, seqs: Sequence[int]) -> None:
        write = mark_done_write(seqs)
        if write is not None:
            await self._submit(write, durable=False)

    # -- status --------------------------------------------------------------------

    async def failures(
        self,
        partner: str | None = None,
        *,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[FailureRow]:
        read = failures_read(partner, since=since, limit=limit)
        rows: list[FailureRow] = await self._read(read, "reading failures")
        return rows

    async def record_refusals(
        self,
        items: Sequence[RefusalNew],
        keep: int,
        *,
        dropped: Mapping[str, int] | None = None,
    ) -> None:
        write = record_refusals_write(items, keep, dropped)
        if write is not None:
            await self._submit(write, durable=False)

    async def refusals(
        self, *, since: float | None = None, partner: str | None = None, limit: int | None = None
    ) -> list[RefusalRow]:
        read = refusals_read(since=since, partner=partner, limit=limit)
        rows: list[RefusalRow] = await self._read(read, "reading refusals")
        return rows

    async def stats(self) -> dict[str, PartnerCounts]:
        return await self._read(stats_read, "reading counts")

    async def probe_write(self) -> None:
        """In the writer's transaction: refused on a standby or when transactions
        are read-only; after a failed transaction, a row of ``sessions`` rewritten
        unchanged."""
        probe = probe_write_statement(self.where, lambda: self._group.failure is not None)
        await self._submit(probe, durable=False)

    # -- streams (postgres_streams.py) ------------------------------------------------

    async def save_stream(self, row: StreamRow) -> StreamRow:
        write, saved = save_stream_write(row, time.time())
        await self._submit(write, durable=True)
        return saved

    async def streams(
        self, *, partner: str | None = None, role: str | None = None
    ) -> list[StreamRow]:
        rows: list[StreamRow] = await self._read(streams_read(partner, role), "reading streams")
        return rows

    async def delete_stream(self, partner: str, role: str, stream_id: str) -> bool:
        found: bool = await self._submit(
            delete_stream_write(partner, role, stream_id), durable=True
        )
        return found

    async def add_subject(
        self, partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
    ) -> bool:
        write = add_subject_write(partner, role, stream_id, subject)
        new: bool = await self._submit(write, durable=True)
        return new

    async def remove_subject(
        self, partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
    ) -> bool:
        write = remove_subject_write(partner, role, stream_id, subject)
        found: bool = await self._submit(write, durable=True)
        return found

    async def subjects(self, partner: str, role: str, stream_id: str) -> list[Mapping[str, Any]]:
        read = subjects_read(partner, role, stream_id)
        subjects: list[Mapping[str, Any]] = await self._read(read, "reading stream subjects")
        return subjects

    async def set_session(self, partner: str, state: str) -> None:
        await self._submit(set_session_write(partner, state), durable=False)

    async def sessions(self) -> dict[str, str]:
        return await self._read(sessions_read, "reading sessions")

    async def beat(self, node: NodeRow) -> None:
        await self._submit(beat_write(node), durable=False)

    async def leave(self, owner: str) -> None:
        await self._submit(leave_write(owner), durable=False)

    async def nodes(self) -> list[NodeRow]:
        rows: list[NodeRow] = await self._read(nodes_read, "reading nodes")
        return rows

    # -- row leases: each node sends the rows it leased (postgres_leases.py) ---------

    async def lease_outbound(
        self, partner: str, owner: str, *, limit: int, ttl: float
    ) -> list[OutboundRow]:
        lease = lease_statement(partner, owner, limit=limit, ttl=ttl)
        rows: list[OutboundRow] = await self._read(lease, "leasing outbox rows")
        return rows

    async def renew_outbound(
        self, partner: str, owner: str, ttl: float, *, jtis: Collection[str] | None = None
    ) -> int:
        renew = renew_statement(partner, owner, ttl, jtis=jtis)
        renewed: int = await self._read(renew, "renewing outbox leases")
        return renewed

    async def release_outbound(self, partner: str, owner: str) -> None:
        await self._read(release_statement(partner, owner), "releasing outbox leases")

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
        await self._group.aclose()
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
