"""Handling received SETs a page at a time: ``received()`` and ``done(seqs)`` on both
facades (``Peer`` in process, ``Client`` over the local interface), one commit per page."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from peer import Client, Facade
from tests.local.helpers import running_pair
from tests.peers import SESSION_REVOKED
from tests.timing import seconds


async def _page_of(node: Facade, count: int) -> list[int]:
    """The seqs of the first ``count`` SETs received, waiting for them to arrive."""
    with anyio.fail_after(seconds(10)):
        while True:
            page = await node.received(after=0, limit=count, wait=seconds(1))
            if len(page) == count:
                assert all(rx.partner == "b" and rx.events == (SESSION_REVOKED,) for rx in page)
                return [rx.seq for rx in page]
            await anyio.sleep(0.01)


@pytest.mark.parametrize("via", ["peer", "client"])
async def test_received_then_done_many_frees_the_backlog_once(tmp_path: Path, via: str) -> None:
    """b sends five SETs to a; a's application reads them as one page and marks all
    done at once: nothing is handed out again, the partner's backlog (``unhandled``)
    falls to zero, and doing them again (or one of them through ``Received.done``)
    never takes it below zero or frees room twice."""
    async with running_pair(tmp_path) as (a, b):
        async with Client(str(a.app_url)) as client:
            node: Facade = a if via == "peer" else client
            for i in range(5):
                await b.publish("a", {SESSION_REVOKED: {}}, txn=f"t{i}")
            seqs = await _page_of(node, 5)
            assert seqs == sorted(seqs)
            assert a.stats()["b"]["unhandled"] == 5
            assert await node.received(after=seqs[1], limit=10) == (await node.received())[2:]
            await node.done(seqs[:3])
            assert a.stats()["b"]["unhandled"] == 2
            await node.done(seqs[:3])  # again: idempotent, the backlog is not freed twice
            assert a.stats()["b"]["unhandled"] == 2
            rest = await node.received()
            assert [rx.seq for rx in rest] == seqs[3:]
            await rest[0].done()
            await node.done(seqs)
            assert a.stats()["b"]["unhandled"] == 0
            assert await node.received(wait=0.05) == []
            await b.flush(timeout=seconds(10))  # every SET acked once


async def test_received_checks_its_arguments(tmp_path: Path) -> None:
    async with running_pair(tmp_path) as (a, _b):
        with pytest.raises(ValueError):
            await a.received(limit=0)
        with pytest.raises(ValueError):
            await a.received(wait=-1)
        started = anyio.current_time()
        assert await a.received(wait=0.2) == []
        assert anyio.current_time() - started >= 0.19  # it waited for a SET that never came
