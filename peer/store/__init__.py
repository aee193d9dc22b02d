"""Storage backends behind one small interface (``base.Store``)."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread

from ..errors import StoreError
from .base import SCHEMA_VERSION, Store

__all__ = ["Store", "migrate", "open_store", "sqlite_path"]


def sqlite_path(url: str, base_dir: Path | None) -> Path:
    """``sqlite:///rel.db`` is relative to ``base_dir``; ``sqlite:////abs.db`` absolute."""
    rest = url[len("sqlite:///") :]
    if not rest:
        raise StoreError("sqlite:/// needs a path")
    path = Path(rest)
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    return path


async def open_store(url: str, *, base_dir: Path | None = None) -> Store:
    """Open (and create or migrate) the store at ``url``.

    Raises:
        StoreError: unknown scheme, unreadable file, or a newer schema than we know.
    """
    if url == "memory://":
        from .memory import MemoryStore

        return MemoryStore()
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return await SQLiteStore.open(sqlite_path(url, base_dir))
    raise StoreError(f"unsupported store URL scheme: {url.split(':', 1)[0]}")


async def migrate(url: str, base_dir: Path | None = None) -> int:
    """Create or upgrade the schema at ``url``; returns the version now there."""
    if url == "memory://":
        return SCHEMA_VERSION
    if url.startswith("sqlite:///"):
        from .sqlite import migrate_file

        return await anyio.to_thread.run_sync(migrate_file, sqlite_path(url, base_dir))
    raise StoreError(f"unsupported store URL scheme: {url.split(':', 1)[0]}")
