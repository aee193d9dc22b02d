"""The write-behind of a partner's bookkeeping when its store is closed under it.

A closed store takes nothing more, ever: what is left is dropped and logged once,
not retried every 0.1 s, and ``sync()`` (a node's graceful stop) returns at once
instead of spending the stop's whole 5 s budget on writes that cannot land.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio
import pytest

from peer.link.write_behind import WriteBehind
from peer.protocol.effects import Sent
from peer.store import open_store
from tests.timing import seconds


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_sync_returns_once_the_store_is_closed(
    tmp_path: Path, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(f"sqlite:///{tmp_path / 'a.db'}" if url == "sqlite" else url)
    writes = WriteBehind("a", store, lambda: "down")
    async with anyio.create_task_group() as tg:
        tg.start_soon(writes.run)
        writes.record([Sent("j1", attempts=1, retry_at=time.time() + 60)])  # held 1 s
        await store.aclose()
        with anyio.fail_after(seconds(2)):  # before: never, the write retried for ever
            await writes.sync()
        writes.record([Sent("j2", attempts=1, retry_at=time.time() + 60)])  # dropped
        with anyio.fail_after(seconds(2)):
            await writes.sync()
        tg.cancel_scope.cancel()
    failed = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.getMessage() for r in failed] == ["partner=a store closed: not written: 1"]
