"""What a frame refused for bad data costs the node afterwards: no memory kept, and the
partner's sessions closed for it budgeted (``peer/link/session_brake.py``).

A real node ``b`` in process; partner ``a`` attacks with raw WebSockets and its real
credentials.
"""

from __future__ import annotations

import gc
import json
import logging
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from peer import Peer
from peer.errors import AuthenticationFailed, MalformedFrame, Overloaded
from peer.link.session_brake import SessionBrake
from peer.protocol.communication import CommunicationObject
from tests.hostile.helpers import Attacker
from tests.peers import make_pair, write_config
from tests.timing import seconds

MB = 1024 * 1024


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Peer, Attacker]]:
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        yield b, Attacker(b.url, a_files, b_files)


async def refused(w: Attacker, message: str = "[" * 100) -> int | None:
    """One session of ``a`` that sends ``message``; the code the node closed it with."""
    async with await w.session() as ws:
        await ws.send(message)
        with pytest.raises(ConnectionClosed), anyio.fail_after(seconds(5)):
            while True:
                await ws.recv()
    return ws.close_code


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


async def test_sessions_closed_for_bad_data_are_budgeted(node: tuple[Peer, Attacker]) -> None:
    """A session closed 1007 counts against a's budget (100 at once, then 10 a second);
    a refusal that is not a's doing (1013, 401) does not. Over the budget a's next
    upgrade is held until it is back within (then works), or, when that is more than a
    second away, held a second and refused 429 with ``Retry-After``; its SETs still
    come in over HTTP, nothing lost."""
    b, w = node
    link = b.links["a"]
    assert await refused(w) == 1007
    assert link.brake.refusals == 1 and link.brake.wait == 0.0
    assert link.session_refused(Overloaded("inbox full")) == 0.0
    assert link.session_refused(AuthenticationFailed("expired")) == 0.0
    assert link.brake.refusals == 1
    # The rest of the burst, as if a's sessions had been refused that many times more.
    for _ in range(100):
        link.session_refused(MalformedFrame("not JSON"))
    assert link.brake.wait > 0.05
    started = time.monotonic()
    async with await w.session() as ws:
        held = time.monotonic() - started
        await ws.send(json.dumps({"sets": {"after": w.set_token("after")}}))
        with anyio.fail_after(seconds(5)):
            assert json.loads(await ws.recv())["ack"] == ["after"]
    assert held >= 0.05, f"upgraded after {held:.3f} s"
    for _ in range(30):
        link.session_refused(MalformedFrame("not JSON"))
    started = time.monotonic()
    with pytest.raises(websockets.exceptions.InvalidStatus) as info:
        await w.session()
    held = time.monotonic() - started
    response = info.value.response
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 3
    assert b"closed for bad data" in response.body
    assert held >= 0.9, f"refused after {held:.2f} s"
    async with httpx.AsyncClient() as client:
        posted = await client.post(
            w.http, json={"sets": {"http": w.set_token("http")}}, headers=w.auth
        )
    assert posted.status_code == 200 and posted.json()["ack"] == ["http"]
    assert b.stats()["a"]["received"] == 2


async def test_bad_utf8_text_message_refused_like_any_bad_data(
    node: tuple[Peer, Attacker], caplog: pytest.LogCaptureFixture
) -> None:
    """A text message that is not UTF-8 closes 1007 with a reason and counts against
    a's budget, like any bad data, with no error logged (uvicorn's own check closed it
    without a reason, uncounted, logging a traceback each time)."""
    b, w = node
    async with await w.session() as ws:
        await ws.send(b'{"ack": ["\xff"]}', text=True)
        with pytest.raises(ConnectionClosed), anyio.fail_after(seconds(5)):
            while True:
                await ws.recv()
    assert ws.close_code == 1007 and "UTF-8" in (ws.close_reason or "")
    assert b.links["a"].brake.refusals == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    async with await w.session() as ws:  # text messages still work
        await ws.send(json.dumps({"sets": {"\u00e9t\u00e9": w.set_token("\u00e9t\u00e9")}}))
        with anyio.fail_after(seconds(5)):
            assert json.loads(await ws.recv())["ack"] == ["\u00e9t\u00e9"]


def test_session_brake_budget() -> None:
    """A burst, then a rate: the wait is the debt over the rate; time pays it back,
    never beyond the burst."""
    now = [0.0]
    brake = SessionBrake(burst=3, rate=2, clock=lambda: now[0])
    assert [brake.refused() for _ in range(5)] == pytest.approx([0, 0, 0, 0.5, 1.0])
    now[0] = 0.5
    assert brake.wait == pytest.approx(0.5)
    now[0] = 100.0
    assert brake.wait == 0.0
    assert [brake.refused() for _ in range(4)] == pytest.approx([0, 0, 0, 0.5])
    assert brake.refusals == 9


async def test_session_brake_holds_then_refuses() -> None:
    """A wait within the hold is waited out; a longer one is refused with its rest."""
    brake = SessionBrake(burst=1, rate=20, hold=0.5)
    brake.refused()
    brake.refused()
    started = time.monotonic()
    await brake.admit()
    assert time.monotonic() - started >= 0.04
    brake = SessionBrake(burst=1, rate=0.1, hold=0.0)
    brake.refused()
    brake.refused()
    with pytest.raises(Overloaded) as info:
        await brake.admit()
    assert 9 <= info.value.retry_after <= 10
    assert info.value.http_status == 429
    assert info.value.response_headers() == {"retry-after": "10"}
