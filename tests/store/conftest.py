"""The store contract runs on every backend, the way anyio runs its suite on each.

PostgreSQL needs a server: ``scripts/test`` starts a throwaway one
(``scripts/_postgres.sh``) and exports ``SETPEER_TEST_POSTGRES_URL``. Each test
gets a fresh schema of its own on that database (``options=-csearch_path=...``);
they are dropped together when the session ends. Without the variable the
postgres tests FAIL, unless ``SETPEER_NO_POSTGRES=1`` says to skip them (with that
reason, never silently).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from psycopg import sql

from peer.store import open_store
from peer.store.base import Store

BACKENDS = ["memory", "sqlite", "postgres"]

POSTGRES_URL_VAR = "SETPEER_TEST_POSTGRES_URL"


def postgres_base_url() -> str:
    """The test server's URL; fails (or skips, if told to) when there is none."""
    url = os.environ.get(POSTGRES_URL_VAR, "")
    if url:
        return url
    if os.environ.get("SETPEER_NO_POSTGRES") == "1":
        pytest.skip("SETPEER_NO_POSTGRES=1: PostgreSQL store tests not run")
    pytest.fail(
        f"{POSTGRES_URL_VAR} is not set: run the tests via scripts/test (it starts a"
        " throwaway PostgreSQL with scripts/_postgres.sh), point it at a server, or set"
        " SETPEER_NO_POSTGRES=1 to skip the PostgreSQL tests",
        pytrace=False,
    )


def with_schema(url: str, schema: str) -> str:
    """``url`` with every connection's search_path set to ``schema``."""
    option = quote(f"-csearch_path={schema}", safe="")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


class _Schemas:
    """One admin connection for the session: creates a schema per test, drops them all
    at the end (one DROP, not one per test: the suite stays quick).

    On the throwaway cluster of ``scripts/_postgres.sh`` (``SETPEER_TEST_POSTGRES_DATA``)
    nothing is dropped: the script deletes the whole cluster when the run ends, and
    dropping the hundreds of schemas of a full run one table at a time took ~20 s.
    """

    def __init__(self, base: str) -> None:
        self.base = base
        self.conn: psycopg.Connection[Any] | None = None
        self.made: list[str] = []
        self.throwaway = bool(os.environ.get("SETPEER_TEST_POSTGRES_DATA"))

    def _execute(self, query: sql.Composed) -> None:
        if self.conn is not None:
            try:
                self.conn.execute(query)
                return
            except psycopg.OperationalError:
                # The restart test stopped the server under this connection.
                self.conn.close()
        self.conn = psycopg.connect(self.base, autocommit=True)
        self.conn.execute(query)

    def fresh(self) -> str:
        schema = f"t_{uuid.uuid4().hex[:16]}"
        self._execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        self.made.append(schema)
        return with_schema(self.base, schema)

    def close(self) -> None:
        try:
            if self.made and not self.throwaway:
                names = sql.SQL(", ").join(map(sql.Identifier, self.made))
                self._execute(sql.SQL("DROP SCHEMA {} CASCADE").format(names))
        finally:
            if self.conn is not None:
                self.conn.close()


@pytest.fixture(scope="session")
def _pg_schemas() -> Iterator[_Schemas]:
    schemas = _Schemas(postgres_base_url())
    try:
        yield schemas
    finally:
        schemas.close()


@pytest.fixture
def pg_schema_url(_pg_schemas: _Schemas) -> str:
    """A URL for a fresh, empty schema on the test server (dropped when the session ends)."""
    return _pg_schemas.fresh()


@dataclasses.dataclass(frozen=True)
class Backend:
    """One backend under test: its name, its URL, and whether it outlives a close."""

    name: str
    url: str
    durable: bool

    async def open(self) -> Store:
        return await open_store(self.url)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    name: str = request.param
    if name == "memory":
        url = "memory://"
    elif name == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"  # an absolute path: four slashes
    elif name == "postgres":
        url = request.getfixturevalue("pg_schema_url")
    else:
        raise AssertionError(name)
    return Backend(name, url, durable=name != "memory")


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.aclose()
