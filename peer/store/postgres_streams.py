"""The PostgreSQL statements for SSF streams and their subjects.

As ``postgres_sql.py``: each builder checks its arguments (``checks.py``) and
returns a small function on a connection; ``postgres.py`` runs the writes in its
group transaction and the reads on an autocommit connection. Text is ``BYTEA``
(UTF-8) matched through ``sha256()``; ``config`` and ``verification`` are JSON
text (escaped ASCII, so never a NUL).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import StreamRow, UnknownStream, stream_row
from .checks import canonical_subject, check_stream_key, check_text, decode_claims, stream_fields
from .postgres_sql import Conn, Statement, text_of

__all__ = [
    "add_subject_write",
    "delete_stream_write",
    "remove_subject_write",
    "save_stream_write",
    "streams_read",
    "subjects_read",
]

_KEY = (
    "sha256(partner) = sha256(%s) AND sha256(role) = sha256(%s) AND sha256(stream_id) = sha256(%s)"
)


def _key(partner: str, role: str, stream_id: str) -> tuple[bytes, bytes, bytes]:
    p, r, s = check_stream_key(partner, role, stream_id)
    return p.encode(), r.encode(), s.encode()


def save_stream_write(row: StreamRow, now: float) -> tuple[Statement, StreamRow]:
    """Insert or replace the stream; also returns the row as it will be stored.

    Raises:
        InvalidValue: see ``Store.save_stream``.
    """
    fields = stream_fields(row, now)
    p, r, s, config, status, reason, verification, at = fields
    why = None if reason is None else reason.encode()
    args = (p.encode(), r.encode(), s.encode(), config, status.encode(), why, verification, at)

    async def write(conn: Conn) -> None:
        await conn.execute(
            "INSERT INTO streams (partner, role, stream_id, config, status, reason,"
            " verification, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (sha256(partner), sha256(role), sha256(stream_id)) DO UPDATE SET"
            " config = excluded.config, status = excluded.status, reason = excluded.reason,"
            " verification = excluded.verification, updated_at = excluded.updated_at",
            args,
        )

    return write, stream_row(*fields)


def streams_read(partner: str | None, role: str | None) -> Statement:
    """The streams, of ``partner`` and ``role`` if given, in key order.

    Raises:
        InvalidValue: a bad name or role.
    """
    query = (
        "SELECT partner, role, stream_id, config, status, reason, verification, updated_at"
        " FROM streams WHERE true"
    )
    args: list[Any] = []
    if partner is not None:
        query += " AND sha256(partner) = sha256(%s)"
        args.append(check_text(partner, "partner").encode())
    if role is not None:
        query += " AND sha256(role) = sha256(%s)"
        args.append(check_stream_key("", role, "")[1].encode())
    query += " ORDER BY partner, role, stream_id"  # bytea: UTF-8 order is code point order

    async def read(conn: Conn) -> list[StreamRow]:
        cur = await conn.execute(query, args)
        return [
            stream_row(text_of(p), text_of(r), text_of(s), c, text_of(st), text_of(why), v, at)
            for p, r, s, c, st, why, v, at in await cur.fetchall()
        ]

    return read


def delete_stream_write(partner: str, role: str, stream_id: str) -> Statement:
    """Delete the stream and its subjects; the write returns True if it was there.

    Raises:
        InvalidValue: a bad name or role.
    """
    key = _key(partner, role, stream_id)

    async def write(conn: Conn) -> bool:
        await conn.execute(f"DELETE FROM stream_subjects WHERE {_KEY}", key)
        cur = await conn.execute(f"DELETE FROM streams WHERE {_KEY}", key)
        return cur.rowcount > 0

    return write


def add_subject_write(
    partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
) -> Statement:
    """Add a subject (idempotent); the write returns True if new.

    Raises:
        InvalidValue: a bad name, role or subject. The write raises UnknownStream.
    """
    key = _key(partner, role, stream_id)
    text = canonical_subject(subject).encode()

    async def write(conn: Conn) -> bool:
        cur = await conn.execute(f"SELECT 1 FROM streams WHERE {_KEY}", key)
        if await cur.fetchone() is None:
            raise UnknownStream(f"no stream {stream_id!r} ({role}) for partner {partner!r}")
        cur = await conn.execute(
            "INSERT INTO stream_subjects (partner, role, stream_id, subject)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (*key, text),
        )
        return cur.rowcount == 1

    return write


def remove_subject_write(
    partner: str, role: str, stream_id: str, subject: Mapping[str, Any]
) -> Statement:
    """Remove a subject; the write returns True if it was there.

    Raises:
        InvalidValue: a bad name, role or subject.
    """
    args = (*_key(partner, role, stream_id), canonical_subject(subject).encode())

    async def write(conn: Conn) -> bool:
        cur = await conn.execute(
            f"DELETE FROM stream_subjects WHERE {_KEY} AND sha256(subject) = sha256(%s)", args
        )
        return cur.rowcount > 0

    return write


def subjects_read(partner: str, role: str, stream_id: str) -> Statement:
    """The stream's subjects, in the order first added.

    Raises:
        InvalidValue: a bad name or role.
    """
    key = _key(partner, role, stream_id)

    async def read(conn: Conn) -> list[Mapping[str, Any]]:
        cur = await conn.execute(
            f"SELECT subject FROM stream_subjects WHERE {_KEY} ORDER BY seq", key
        )
        return [decode_claims(text_of(s)) for (s,) in await cur.fetchall()]

    return read
