"""FairShare: turns at CPU-heavy work, round-robin between partners."""

from __future__ import annotations

import anyio
import pytest

from peer.link.fair_share import FairShare
from peer.protocol.jsonio import _depth_exceeds
from tests.timing import MS


async def test_a_partner_alone_uses_every_turn() -> None:
    share = FairShare(slots=3)
    for _ in range(3):
        await share.acquire("a")  # no wait: free turns are taken at once
    assert share.busy == 3
    for _ in range(3):
        share.release()
    assert share.busy == 0


async def test_waiting_partners_are_served_round_robin() -> None:
    """a queued five jobs before b asked for one: b gets the next free turn, not the
    sixth (a flood cannot push another partner's work to the back of its queue)."""
    share = FairShare(slots=1)
    order: list[str] = []
    await share.acquire("a")  # the turn a holds now

    async def job(partner: str) -> None:
        await share.acquire(partner)
        order.append(partner)
        await anyio.sleep(MS)
        share.release()

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(job, "a")
        await anyio.sleep(5 * MS)
        tg.start_soon(job, "b")
        await anyio.sleep(5 * MS)
        assert share.waiting == 6
        share.release()
    assert order == ["a", "b", "a", "a", "a", "a"]
    assert share.busy == 0


async def test_a_cancelled_wait_leaves_no_trace_and_loses_no_turn() -> None:
    share = FairShare(slots=1)
    await share.acquire("a")
    with anyio.move_on_after(5 * MS):
        await share.acquire("b")  # cancelled while waiting
    assert share.waiting == 0
    share.release()
    assert share.busy == 0
    await share.acquire("c")  # the turn is free again
    share.release()


async def test_a_turn_granted_as_the_waiter_is_cancelled_is_passed_on() -> None:
    share = FairShare(slots=1)
    await share.acquire("a")
    got: list[str] = []

    async def wait_for(partner: str) -> None:
        await share.acquire(partner)
        got.append(partner)
        share.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_for, "b")
        tg.start_soon(wait_for, "c")
        await anyio.sleep(5 * MS)
        scope = tg.cancel_scope
        share.release()  # b is granted the turn ...
        scope.cancel()  # ... and cancelled before it runs: c must not be stranded
    assert len(got) <= 1  # b may have run before the cancel reached it; c did not
    assert share.busy == 0 and share.waiting == 0  # and the turn went back


@pytest.mark.parametrize(
    ("depth", "limit", "deep"), [(70_000, 69_999, True), (70_000, 70_000, False)]
)
def test_depth_is_exact_across_scan_chunks(depth: int, limit: int, deep: bool) -> None:
    """The depth scan runs in 64 KiB chunks; the running depth carries across them."""
    data = b"[" * depth + b"]" * depth
    assert _depth_exceeds(data, limit) is deep
