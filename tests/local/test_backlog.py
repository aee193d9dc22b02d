"""A partner's inbox backlog (``max_pending``, ``unhandled``) follows ``done`` through
the local interface, also for SETs handed out before the node restarted."""

from __future__ import annotations

from pathlib import Path

from peer import Client, Peer
from peer.store import open_store
from peer.store.base import InboundNew
from tests.peers import make_pair, write_config


async def _fill(folder: Path, count: int) -> None:
    store = await open_store("sqlite:///b.db", base_dir=folder)
    try:
        items = [
            InboundNew(iss="https://a.test.example", jti=f"x-{i}", token="h.p.s", claims={})
            for i in range(count)
        ]
        await store.accept_inbound("a", items, [])
    finally:
        await store.aclose()


async def test_done_after_a_restart_frees_the_backlog(tmp_path: Path) -> None:
    a, b = make_pair(tmp_path)
    config = write_config(b, a)
    await _fill(tmp_path, 3)
    async with Peer(config) as node:
        assert node.stats()["a"]["unhandled"] == 3  # seeded from the store
        async with Client(str(node.app_url)) as client:
            seqs = [rx.seq for rx in await client.received()]
    assert len(seqs) == 3
    async with Peer(config) as node:
        async with Client(str(node.app_url)) as client:
            await client.done(seqs[:2])  # handed out by the node before its restart
            assert node.stats()["a"]["unhandled"] == 1
            assert (await client.stats())["a"]["unhandled"] == 1
            [rx] = await client.received()
            await rx.done()
            assert node.stats()["a"]["unhandled"] == 0
