"""Row leases on a shared PostgreSQL store: which node sends which outbox rows.

A lease is a row of ``outbox_leases`` (``seq``, ``owner``, ``until``), expiring by
the database's clock, so nodes with skewed clocks agree. Each node leases the rows
it will send (:func:`lease_statement`), renews the leases of the rows it still
holds (:func:`renew_statement`) and gives them up when its way out to the partner
is gone (:func:`release_statement`); a node that dies leaves leases that expire,
and the other nodes lease those rows again. What a node publishes is leased to it
in the enqueue's own statement (``postgres_sql.insert_outbox``).

The statements run on the store's read connections, each in a transaction that
does not wait for its WAL flush: a lease lost in a server crash costs a resend
(deduped by the partner), never a SET.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Collection
from typing import Any

from .base import OutboundRow
from .checks import check_count, check_text, check_ttl
from .postgres_sql import Conn, Statement, text_of

__all__ = ["lease_statement", "release_statement", "renew_statement"]


@contextlib.asynccontextmanager
async def _bookkeeping(conn: Conn) -> AsyncIterator[None]:
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        yield


def lease_statement(partner: str, owner: str, *, limit: int, ttl: float) -> Statement:
    """Lease up to ``limit`` unfinished rows of ``partner`` for ``owner``
    (``SharedStore.lease_outbound``).

    Raises:
        InvalidValue: a name is not text, ``limit`` or ``ttl`` out of range.
    """
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

    return lease


def renew_statement(
    partner: str, owner: str, ttl: float, *, jtis: Collection[str] | None = None
) -> Statement:
    """Extend ``owner``'s leases on ``partner``'s unfinished rows (those of ``jtis``
    only, if given); the statement returns how many (``SharedStore.renew_outbound``).

    Raises:
        InvalidValue: a name or jti is not text, or ``ttl`` out of range.
    """
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

    return renew


def release_statement(partner: str, owner: str) -> Statement:
    """Drop ``owner``'s leases on ``partner``'s rows (``SharedStore.release_outbound``).

    Raises:
        InvalidValue: a name is not text.
    """
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

    return release
