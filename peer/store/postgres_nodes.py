"""PostgreSQL statements of the ``nodes`` table: each running node's heartbeat.

A node rewrites its row every few seconds and deletes it when it stops; ``setpeer
status`` reads them to tell whether a node runs. Times are the node's own clock.
"""

from __future__ import annotations

from .base import NODES_FORGOTTEN, NodeRow
from .checks import check_text, node_fields
from .postgres_sql import Conn, Statement, text_of

__all__ = ["beat_write", "leave_write", "nodes_read"]


def beat_write(node: NodeRow) -> Statement:
    """Replace ``node``'s row; delete those silent for ``NODES_FORGOTTEN`` seconds.

    Raises:
        InvalidValue: a field is not text, a pid or a finite time.
    """
    owner, host, pid, started_at, beat_at = node_fields(node)
    row = (owner.encode(), host.encode(), pid, started_at, beat_at)

    async def write(conn: Conn) -> None:
        await conn.execute(
            "INSERT INTO nodes AS n (owner, host, pid, started_at, beat_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (sha256(owner)) DO UPDATE"
            " SET beat_at = excluded.beat_at, started_at = excluded.started_at",
            row,
        )
        await conn.execute("DELETE FROM nodes WHERE beat_at < %s", (beat_at - NODES_FORGOTTEN,))

    return write


def leave_write(owner: str) -> Statement:
    """Delete ``owner``'s row (it stopped)."""
    key = (check_text(owner, "owner").encode(),)

    async def write(conn: Conn) -> None:
        await conn.execute("DELETE FROM nodes WHERE sha256(owner) = sha256(%s)", key)

    return write


async def nodes_read(conn: Conn) -> list[NodeRow]:
    """The heartbeat rows, newest beat first."""
    cur = await conn.execute(
        "SELECT owner, host, pid, started_at, beat_at FROM nodes ORDER BY beat_at DESC"
    )
    return [
        NodeRow(text_of(owner), text_of(host), pid, started, beat)
        for owner, host, pid, started, beat in await cur.fetchall()
    ]
