"""The typed question a node asks its store: may other nodes share it?"""

from __future__ import annotations

from peer.store.base import Store, shared_store

from .conftest import Backend


async def test_shared_store_only_for_postgres(backend: Backend, store: Store) -> None:
    """PostgreSQL answers with itself (row leases); memory and SQLite with None."""
    shared = shared_store(store)
    if backend.name == "postgres":
        assert shared is store
        assert await shared.lease_outbound("b", "node", limit=5, ttl=5.0) == []
    else:
        assert shared is None
