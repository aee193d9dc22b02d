"""A push-pull session between two Links over an in-memory WebSocket (tests/link/pair.py).

The real Link, WebSocket binding and memory store on both sides, no server or socket:
each test runs in milliseconds, and the channel lets it watch, drop or forge frames.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest

from peer.errors import Backpressure
from tests.link.pair import Side, link_pair, session
from tests.timing import MS

WAIT = 5_000 * MS


async def until(side: Side, check: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until ``check()`` holds, woken by the side's progress."""
    with anyio.fail_after(WAIT):
        while not check():
            with anyio.move_on_after(10 * MS):
                await side.progress.wait()
    assert check(), what


async def eventually(check: Callable[[], bool | Awaitable[bool]]) -> None:
    """Poll ``check()`` every millisecond until it holds (bounded)."""
    with anyio.fail_after(WAIT):
        while True:
            result = check()
            if not isinstance(result, bool):
                result = await result
            if result:
                return
            await anyio.sleep(MS)


async def count_at_least(side: Side, count: int) -> bool:
    return len(await side.inbox_jtis()) >= count


async def test_sets_reach_the_partner_once_and_are_acked(tmp_path: Path) -> None:
    """PP-15, PP-21, PP-23: SETs go over the session, are stored once, and acked."""
    async with link_pair(tmp_path) as (a, b), session(a, b):
        jtis = await a.publish(250)
        await until(a, lambda: a.link.counters.acked == 250, "every SET acked")
        assert await b.inbox_jtis() == jtis  # in publish order, each once
        assert b.link.counters.received == 250
        assert a.link.stats() == {
            "session": "websocket",
            "pending": 0,
            "inflight": 0,
            "acked": 250,
            "failed": 0,
            "received": 0,
            "unhandled": 0,
            "refused": 0,
        }
        assert b.link.stats()["unhandled"] == 250  # received, the application not told


async def test_sets_and_acks_share_frames_both_ways(tmp_path: Path) -> None:
    """PP-3, PP-15: each side sends its SETs and its acks in the same frames."""
    async with link_pair(tmp_path) as (a, b), session(a, b) as (end_a, end_b):
        for _ in range(20):
            await a.publish(5)
            await b.publish(5)
            await anyio.sleep(2 * MS)
        await until(a, lambda: a.link.counters.acked == 100, "a's SETs acked")
        await until(b, lambda: b.link.counters.acked == 100, "b's SETs acked")
        frames = [json.loads(text) for text in end_a.sent + end_b.sent]
        assert any("sets" in f and "ack" in f for f in frames), "no frame carried both"


async def test_sets_in_flight_on_a_lost_session_are_sent_again_and_deduplicated(
    tmp_path: Path,
) -> None:
    """PP-30, PP-21: b's acks never reach a; the session dies; on the next session
    a sends the SETs again, b stores nothing twice and acks them again."""
    async with link_pair(tmp_path) as (a, b):
        async with session(a, b) as (_, end_b):
            end_b.tap = lambda text: None if "ack" in json.loads(text) else text
            jtis = await a.publish(10)
            await eventually(lambda: count_at_least(b, 10))
            assert a.link.counters.acked == 0
            assert a.link.stats()["inflight"] == 10
        assert a.link.stats()["session"] == "down"
        async with session(a, b):
            await until(a, lambda: a.link.counters.acked == 10, "acked on the new session")
        assert await b.inbox_jtis() == jtis
        assert b.link.counters.received == 10


@pytest.mark.parametrize(
    ("message", "code", "reason"),
    [
        ("not json", 1007, "invalid JSON"),
        ("[1, 2]", 1007, "must be a JSON object"),
        ('{"ack": "x"}', 1007, "ack must be an array"),
        ('{"ack": [], "ack": []}', 1007, "duplicate JSON member"),
        (b"\xff\xfe", 1007, "not valid UTF-8"),
    ],
)
async def test_a_malformed_frame_closes_the_session_with_a_reason(
    tmp_path: Path, message: str | bytes, code: int, reason: str
) -> None:
    """A frame b cannot parse closes the session with 1007 and a reason; a's SETs
    already stored at b stay stored, and nothing of the bad frame is."""
    async with link_pair(tmp_path) as (a, b):
        async with session(a, b) as (end_a, end_b):
            await a.publish(3)
            await until(a, lambda: a.link.counters.acked == 3, "acked before the junk")
            await end_a.inject(message)
            await eventually(lambda: end_b.closed_with is not None)
        assert end_b.closed_with is not None
        assert end_b.closed_with[0] == code
        assert reason in end_b.closed_with[1]
        assert len(await b.inbox_jtis()) == 3


async def test_an_oversized_frame_closes_1009(tmp_path: Path) -> None:
    """A frame over max_frame_bytes is refused with 1009 before it is parsed."""
    async with link_pair(tmp_path, max_frame_bytes=4096, max_set_bytes=4096) as (a, b):
        async with session(a, b) as (end_a, end_b):
            await end_a.inject(json.dumps({"sets": {"j": "a" * 5000}}))
            await eventually(lambda: end_b.closed_with is not None)
        assert end_b.closed_with is not None and end_b.closed_with[0] == 1009
        assert await b.inbox_jtis() == []


async def test_forged_sets_are_refused_one_by_one_and_answered(tmp_path: Path) -> None:
    """PP-6, PP-23: a SET that fails verification or is not a SET at all gets a
    setErrs entry; the valid SET in the same frame is stored and acked."""
    async with link_pair(tmp_path) as (a, b), session(a, b) as (end_a, end_b):
        jti, token = a.publisher.mint(a.link.partner, {"urn:example:event": {}})
        header, payload, _ = token.split(".")
        forged = f"{header}.{payload}.AAAA"
        await end_a.inject(json.dumps({"sets": {jti: token, "forged": forged, "number": 5}}))
        await eventually(lambda: any("setErrs" in json.loads(t) for t in end_b.sent))
        answers = [json.loads(t) for t in end_b.sent]
        assert any(jti in f.get("ack", []) for f in answers), answers
        errs = next(f["setErrs"] for f in answers if "setErrs" in f)
        assert set(errs) == {"forged", "number"}
        assert errs["forged"]["err"] in {"invalid_request", "invalid_key"}
        assert errs["number"]["err"] == "invalid_request"
        assert await b.inbox_jtis() == [jti]


async def test_publish_is_refused_over_max_pending(tmp_path: Path) -> None:
    """With no session, the outbox fills to max_pending and then refuses."""
    async with link_pair(tmp_path, max_pending=5) as (a, _):
        await a.publish(5)
        with pytest.raises(Backpressure):
            await a.publish(1)
        assert a.link.stats()["pending"] == 5


async def test_session_state_follows_the_session(tmp_path: Path) -> None:
    async with link_pair(tmp_path) as (a, b):
        assert a.link.stats()["session"] == "down"
        async with session(a, b):
            await eventually(lambda: a.link.stats()["session"] == "websocket")
        assert a.link.stats()["session"] == "down"
        assert b.link.stats()["session"] == "down"


async def test_answers_go_back_on_the_session_their_sets_came_on(tmp_path: Path) -> None:
    """With two sessions open (a partner running two nodes), b answers each SET on
    the session it came on, so each of a's nodes hears about its own SETs."""
    async with link_pair(tmp_path) as (a, b):
        async with session(a, b) as (one_a, one_b), session(a, b) as (two_a, two_b):
            first = [a.publisher.mint(a.link.partner, {"urn:example:e": {}}) for _ in range(3)]
            second = [a.publisher.mint(a.link.partner, {"urn:example:e": {}}) for _ in range(3)]
            await one_a.inject(json.dumps({"sets": dict(first)}))
            await two_a.inject(json.dumps({"sets": dict(second)}))
            await eventually(lambda: count_at_least(b, 6))
            await anyio.sleep(20 * MS)  # the answers' frames
            acked_one = {j for t in one_b.sent for j in json.loads(t).get("ack", [])}
            acked_two = {j for t in two_b.sent for j in json.loads(t).get("ack", [])}
        assert acked_one == {jti for jti, _ in first}
        assert acked_two == {jti for jti, _ in second}


async def test_shutdown_closes_sessions_going_away(tmp_path: Path) -> None:
    """Graceful stop: every WebSocket is closed with 1001 and a reason."""
    async with link_pair(tmp_path) as (a, b), session(a, b) as (end_a, end_b):
        await eventually(lambda: b.link.stats()["session"] == "websocket")
        await b.link.close_sessions()
        assert end_b.closed_with == (1001, "going away")


async def test_a_full_inbox_closes_1013_and_loses_nothing(tmp_path: Path) -> None:
    """b's application handles nothing: once b holds max_pending unhandled SETs, a's
    next frame is refused with 1013 (neither stored nor acked), and it is delivered
    on a later session once b's application catches up."""
    async with link_pair(tmp_path, max_pending=4) as (a, b):
        async with session(a, b) as (_, end_b):
            await a.publish(4)
            await until(a, lambda: a.link.counters.acked == 4, "the first four acked")
            jtis = await a.publish(3)
            await eventually(lambda: end_b.closed_with is not None)
        assert end_b.closed_with is not None and end_b.closed_with[0] == 1013
        assert len(await b.inbox_jtis()) == 4
        rows = await b.store.fetch_inbox(after_seq=0, limit=10)
        await b.store.mark_done([row.seq for row in rows])
        b.link.inbound.handled(len(rows))
        async with session(a, b):
            await until(a, lambda: a.link.counters.acked == 7, "the rest acked")
        assert [row.jti for row in await b.store.fetch_inbox(after_seq=0, limit=10)] == jtis
