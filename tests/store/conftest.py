"""The store contract runs on every backend, the way anyio runs its suite on each.

Adding PostgreSQL later is one line in ``BACKENDS`` plus its URL in ``_url``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from peer.store import open_store
from peer.store.base import Store

BACKENDS = ["memory", "sqlite"]


def _url(backend: str, folder: Path) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{folder / 'store.db'}"  # an absolute path: four slashes
    raise AssertionError(backend)


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
    return Backend(name, _url(name, tmp_path), durable=name != "memory")


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    opened = await backend.open()
    try:
        yield opened
    finally:
        await opened.aclose()
