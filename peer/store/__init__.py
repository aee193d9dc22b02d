"""Storage backends behind one small interface (``base.Store``), chosen by URL.

``memory://`` keeps everything in this process; ``sqlite:///rel/path.db`` (relative
to the config file's folder) and ``sqlite:////abs/path.db`` name a SQLite file
(docs/configuration.md); ``postgresql://...`` (or ``postgres://...``, any libpq URI)
a PostgreSQL database that several nodes may share (docs/operations.md).
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread

from ..errors import StoreError
from .base import SCHEMA_VERSION, Store

__all__ = ["Store", "migrate", "open_store", "sqlite_path"]

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")


def sqlite_path(url: str, base_dir: Path | None) -> Path:
    """The file a ``sqlite:///`` URL names.

    The path is taken literally (no percent-decoding, no query string):
    ``sqlite:///rel.db`` is relative to ``base_dir`` (default: the working
    folder), ``sqlite:////abs.db`` absolute.

    Raises:
        StoreError: not a ``sqlite:///`` URL, or no path in it.
    """
    if not url.startswith(_SQLITE):
        raise StoreError(f"not a SQLite store URL (sqlite:///PATH): {url!r}")
    rest = url[len(_SQLITE) :]
    if not rest or rest.endswith("/") or "\x00" in rest:
        raise StoreError(f"a SQLite store URL needs a file path: {url!r}")
    path = Path(rest)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


def _scheme(url: str) -> str:
    if url == "memory://":
        return "memory"
    if url.startswith(_SQLITE):
        return "sqlite"
    if url.startswith(_POSTGRES):
        return "postgres"
    scheme = url.split(":", 1)[0] if ":" in url else url
    if scheme == "sqlite":
        raise StoreError(f"a SQLite store URL has three slashes (sqlite:///PATH): {url!r}")
    raise StoreError(
        f"unsupported store URL (memory://, sqlite:///PATH or postgresql://...): {scheme!r}"
    )


def _no_psycopg(exc: ImportError) -> StoreError:
    # psycopg is an optional extra: imported on first use of a postgresql:// URL.
    return StoreError(
        f"a postgresql:// store needs psycopg ({exc}): pip install 'setpeer[postgres]'"
    )


async def open_store(url: str, *, base_dir: Path | None = None) -> Store:
    """Open the store at ``url``, creating or upgrading its schema first.

    Args:
        url: ``memory://``, ``sqlite:///rel/path.db``, ``sqlite:////abs/path.db`` or
            ``postgresql://user@host:port/dbname`` (libpq URI, query options allowed).
        base_dir: the folder relative SQLite paths start from (the config file's).

    Returns:
        An open store; close it with ``aclose()``.

    Raises:
        StoreError: unknown scheme, unreadable file, unreachable server, or a newer
            schema than we know.
    """
    scheme = _scheme(url)
    if scheme == "memory":
        from .memory import MemoryStore

        return MemoryStore()
    if scheme == "postgres":
        try:
            from .postgres import PostgresStore
        except ImportError as exc:
            raise _no_psycopg(exc) from None
        return await PostgresStore.open(url)
    from .sqlite import SQLiteStore

    return await SQLiteStore.open(sqlite_path(url, base_dir))


async def migrate(url: str, base_dir: Path | None = None) -> int:
    """Create or upgrade the schema at ``url`` (``setpeer migrate``).

    Returns:
        The schema version now there.

    Raises:
        StoreError: as :func:`open_store`.
    """
    scheme = _scheme(url)
    if scheme == "memory":
        return SCHEMA_VERSION
    if scheme == "postgres":
        try:
            from .postgres import migrate_url
        except ImportError as exc:
            raise _no_psycopg(exc) from None
        return await migrate_url(url)
    from .sqlite_schema import migrate_file

    return await anyio.to_thread.run_sync(migrate_file, sqlite_path(url, base_dir))
