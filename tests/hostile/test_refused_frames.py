"""What a frame refused for bad data costs the node afterwards: no memory kept.

A real node ``b`` in process; partner ``a`` attacks with raw WebSockets and its real
credentials.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from peer import Peer
from peer.errors import MalformedFrame
from peer.protocol.communication import CommunicationObject
from tests.hostile.helpers import Attacker
from tests.peers import make_pair, write_config

MB = 1024 * 1024


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Peer, Attacker]]:
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        yield b, Attacker(b.url, a_files, b_files)


async def test_refused_large_frames_are_freed_at_once(node: tuple[Peer, Attacker]) -> None:
    """Eight 1 MiB ``[[[...`` frames refused (parsed in a worker thread): what their
    parse held is freed when it is refused, not at the garbage collector's next run
    (before: ~3 MiB kept per frame, in a reference cycle through the thread hand-off)."""
    b, _ = node
    link = b.links["a"]
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        refusals = 0
        for _ in range(8):
            try:
                await link.parse(CommunicationObject.parse, "[" * (MB - 16))
            except MalformedFrame:
                refusals += 1
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        gc.enable()
    assert refusals == 8
    assert kept < 2 * MB, f"{kept / MB:.1f} MiB kept"
