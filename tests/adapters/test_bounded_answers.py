"""Answers we read from a partner or an authorization server are bounded in bytes and time.

Each reader - the poller, the push and multi-push senders, the HTTP push-pull
initiator, and the metadata / JWK Set fetch - meets a fake partner on loopback that
answers 200 with (a) a huge chunked body, (b) a body that never ends (a byte every
100 ms, under every per-read timeout). The answer must be cut at the frame size or
at the exchange's total deadline, with the process's RSS growing less than
:data:`RSS_BOUND`; the SETs are retried and delivered once the partner behaves.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest

from peer import Peer
from peer.auth.discovery import DiscoveryError, fetch_json
from tests.peers import make_pair, write_config

from .fake_partner import Action, Answer, Call, FakePartner, Stream, fake_partner, sender_node
from .test_poller_faults import Transmitter, sign_from_b
from .wire import FAST, MS, SESSION_REVOKED, seconds

HUGE = 256 * 1024 * 1024
"""The huge body: 256 MiB, chunked (no Content-Length to refuse it by)."""
RSS_BOUND = 50 * 1024 * 1024
"""Peak RSS growth allowed while the hostile answer is read."""
# handshake_timeout + ack_timeout: the total deadline of a push or push-pull exchange.
LIMITS = {"handshake_timeout": 1.0, "ack_timeout": 0.5}
PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


@asynccontextmanager
async def rss_watch() -> AsyncIterator[list[int]]:
    """Sample this process's RSS every 5 ms; ``[peak growth]``. Fails at once past
    :data:`RSS_BOUND` (a reader that buffers everything would take the machine's memory)."""
    base = _rss()
    peak = [0]
    async with anyio.create_task_group() as tg:

        async def sample() -> None:
            while True:
                peak[0] = max(peak[0], _rss() - base)
                assert peak[0] < RSS_BOUND, f"RSS grew {peak[0] >> 20} MiB reading one answer"
                await anyio.sleep(5 * MS)

        tg.start_soon(sample)
        yield peak
        tg.cancel_scope.cancel()


def first_then(hostile: Stream, then: Callable[[Call], Action]) -> Callable[[Call], Action]:
    """The first request that carries SETs gets ``hostile``; every other one ``then``."""
    done = [False]

    def script(call: Call) -> Action:
        if not done[0] and _carries_sets(call):
            done[0] = True
            return hostile
        return then(call)

    return script


def _carries_sets(call: Call) -> bool:
    return call.path in ("/poll", "/jwks") or bool(call.sets())


async def cut(fake: FakePartner, deadline: float) -> None:
    """Wait (the node still running) until the hostile answer's reader hung up."""
    with anyio.fail_after(deadline + seconds(2)):
        while not fake.cut_at:  # noqa: ASYNC110 - the fake records a time, no event
            await anyio.sleep(10 * MS)


def _report(name: str, fake: FakePartner, peak: list[int], deadline: float) -> float:
    """The time from the hostile request to its cut; printed with the RSS figure."""
    hostile = next(call for call in fake.calls if _carries_sets(call))
    took = fake.cut_at[0] - hostile.at
    print(f"\n{name}: cut after {took:.2f} s (deadline {deadline:g} s), RSS +{peak[0] >> 20} MiB")
    assert took < deadline + seconds(1)
    return took


HOSTILE = {"huge": Stream(size=HUGE), "endless": Stream(every=0.1)}


@pytest.mark.slow
@pytest.mark.parametrize("kind", HOSTILE)
@pytest.mark.parametrize("send_via", ["push", "multipush"])
async def test_push_senders_cut_the_answer(tmp_path: Path, send_via: str, kind: str) -> None:
    """A push or multi-push answer over max_frame_bytes, or one that never ends, is
    cut (at handshake_timeout + ack_timeout); the SET is retried and acked once."""
    ack: Callable[[Call], Action] = (
        (lambda call: Answer(202)) if send_via == "push" else (lambda call: _acks(call))
    )
    async with fake_partner(first_then(HOSTILE[kind], ack)) as fake:
        async with (
            sender_node(tmp_path, fake, send_via=send_via, limits=LIMITS) as run,
            rss_watch() as peak,
        ):
            await run.node.publish("b", {SESSION_REVOKED: {}}, jti="s1")
            await run.node.flush(timeout=15_000 * MS)
            stats = run.node.stats()["b"]
            assert (stats["acked"], stats["failed"], stats["pending"]) == (1, 0, 0)
            assert run.node.failures() == []
            await cut(fake, 1.5)
    assert len([call for call in fake.calls if "s1" in call.sets()]) == 2
    _report(f"{send_via} {kind}", fake, peak, 1.5)


def _acks(call: Call) -> Answer:
    return Answer(202, {"ack": list(call.sets())})


@pytest.mark.slow
@pytest.mark.parametrize("kind", HOSTILE)
async def test_poller_cuts_the_answer(tmp_path: Path, kind: str) -> None:
    """A poll answer over max_frame_bytes, or one that never ends, is cut (at
    handshake_timeout + long_poll_timeout + ack_timeout); the SETs are polled again
    and stored once."""
    transmitter = Transmitter([HOSTILE[kind]])
    async with fake_partner(transmitter) as fake:
        async with (
            sender_node(tmp_path, fake, receive_via="poll", limits=LIMITS) as run,
            rss_watch() as peak,
        ):
            transmitter.served = {"s1": sign_from_b(run, "s1")}
            with anyio.fail_after(15_000 * MS):
                async for rx in run.node.receive():
                    assert rx.jti == "s1"
                    await rx.done()
                    break
            assert run.node.stats()["b"]["received"] == 1
            await cut(fake, 2.5)
    _report(f"poll {kind}", fake, peak, 2.5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", HOSTILE)
async def test_http_pushpull_initiator_cuts_the_answer(tmp_path: Path, kind: str) -> None:
    """An HTTP push-pull reply over max_frame_bytes, or one that never ends, is cut (at
    handshake_timeout + ack_timeout); the session is opened again and the SET acked."""

    def reply(call: Call) -> Answer:
        return Answer(200, {"ack": list(call.json().get("sets", {}))})

    async with fake_partner(first_then(HOSTILE[kind], reply)) as fake:
        a, b = make_pair(tmp_path)
        config = write_config(
            a, b, endpoint=f"{fake.url}/pushpull", transport="http", limits=FAST | LIMITS
        )
        async with Peer(config) as node, rss_watch() as peak:
            await node.publish("b", {SESSION_REVOKED: {}}, jti="s1")
            await node.flush(timeout=15_000 * MS)
            stats = node.stats()["b"]
            assert (stats["acked"], stats["failed"], stats["pending"]) == (1, 0, 0)
            await cut(fake, 1.5)
    assert len([call for call in fake.calls if "s1" in call.sets()]) == 2
    _report(f"http push-pull {kind}", fake, peak, 1.5)


@pytest.mark.slow
@pytest.mark.parametrize("kind", HOSTILE)
async def test_jwks_fetch_cuts_the_answer(kind: str) -> None:
    """A JWK Set (or metadata document) over its cap, or one that never ends, is cut at
    the fetch's total deadline with a DiscoveryError; the next fetch succeeds."""
    jwks = {"keys": []}
    async with (
        fake_partner(first_then(HOSTILE[kind], lambda call: Answer(200, jwks))) as fake,
        httpx.AsyncClient(timeout=1.0) as client,
        rss_watch() as peak,
    ):
        url = f"{fake.url}/jwks"
        started = time.monotonic()
        with pytest.raises(DiscoveryError, match="larger than|within 1"):
            await fetch_json(client, url, what="jwks_uri", max_bytes=256 * 1024, deadline=1.0)
        took = time.monotonic() - started
        assert await fetch_json(client, url, what="jwks_uri", deadline=1.0) == jwks
    print(f"\njwks {kind}: cut after {took:.2f} s (deadline 1 s), RSS +{peak[0] >> 20} MiB")
    assert took < 1.0 + seconds(1)
