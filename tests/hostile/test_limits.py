"""Resource limits on a real node in process: timeouts, caps, backpressure."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import websockets

from peer import Peer
from peer.config import Limits
from peer.errors import Backpressure, ConfigError, Overloaded
from peer.link.partner_limits import PartnerGuard
from peer.server.guards import MAX_HEADER_BYTES
from tests.hostile.helpers import Attacker, raw_http, read_until_closed
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.timing import MS, seconds

QUICK = {"handshake_timeout": 0.3, "idle_timeout": 0.6}


async def node_b(tmp_path: Path, **limits: Any) -> AsyncIterator[tuple[Peer, Attacker]]:
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files, limits={**QUICK, **limits})) as b:
        yield b, Attacker(b.url, a_files, b_files)


@pytest.fixture
async def quick(tmp_path: Path) -> AsyncIterator[tuple[Peer, Attacker]]:
    async for pair in node_b(tmp_path):
        yield pair


async def apost(w: Attacker, body: dict[str, Any], path: str = "/pushpull") -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(w.base + path, json=body, headers=w.auth)


# -- connections -------------------------------------------------------------------


async def test_silent_connection_closed_after_handshake_timeout(
    quick: tuple[Peer, Attacker],
) -> None:
    """A client that connects and sends nothing is closed after handshake_timeout."""
    _, w = quick
    with raw_http(w.host, w.port) as sock:
        started = time.monotonic()
        answer = await anyio.to_thread.run_sync(read_until_closed, sock, seconds(5))
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert 0.25 <= time.monotonic() - started < seconds(3)


async def test_trickled_headers_closed_after_handshake_timeout(
    quick: tuple[Peer, Attacker],
) -> None:
    """Slowloris: headers a byte at a time never finish; closed at handshake_timeout."""
    _, w = quick

    def trickle() -> float:
        started = time.monotonic()
        with raw_http(w.host, w.port, b"GET /healthz HTTP/1.1\r\n") as sock:
            try:
                for _ in range(200):
                    sock.sendall(b"x")
                    time.sleep(20 * MS)
            except OSError:
                pass
            read_until_closed(sock, seconds(5))
        return time.monotonic() - started

    assert await anyio.to_thread.run_sync(trickle) < seconds(3)


async def test_oversized_headers_refused(quick: tuple[Peer, Attacker]) -> None:
    """Request headers beyond MAX_HEADER_BYTES: 431 and closed, never buffered."""
    _, w = quick
    big = b"x-junk: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n"
    with raw_http(w.host, w.port, b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + big) as sock:
        answer = await anyio.to_thread.run_sync(read_until_closed, sock, seconds(5))
    assert answer.startswith(b"HTTP/1.1 431 ")
    async with httpx.AsyncClient() as client:
        ok = await client.get(w.base + "/healthz", headers={"x-fine": "a" * 8000})
    assert ok.status_code == 200


async def test_keep_alive_works_within_limits(quick: tuple[Peer, Attacker]) -> None:
    """Guards leave normal use alone: several requests on one keep-alive connection."""
    _, w = quick
    async with httpx.AsyncClient() as client:
        for i in range(5):
            response = await client.post(
                w.http, json={"sets": {f"k{i}": w.set_token(f"k{i}")}}, headers=w.auth
            )
            assert response.status_code == 200 and response.json()["ack"] == [f"k{i}"]
            assert response.headers.get("connection") != "close"
            await anyio.sleep(100 * MS)  # below idle_timeout: the connection is reused


async def test_slow_body_gets_408(quick: tuple[Peer, Attacker]) -> None:
    """A body that takes longer than idle_timeout: 408, connection closed."""
    _, w = quick
    head = (
        f"POST /pushpull HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {w.bearer}\r\n"
        "content-type: application/json\r\ncontent-length: 1000\r\n\r\n{"
    ).encode()

    def slow() -> bytes:
        with raw_http(w.host, w.port, head) as sock:
            try:
                for _ in range(100):
                    time.sleep(50 * MS)
                    sock.sendall(b" ")
            except OSError:
                pass
            return read_until_closed(sock, seconds(5))

    answer = await anyio.to_thread.run_sync(slow)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"connection: close" in answer.lower()


async def test_connection_cap(tmp_path: Path) -> None:
    """Over max_connections, held by partners' sessions, a new connection is closed at
    once; served again later. (Slots held by strangers: tests/hostile/test_server_floods.)"""
    async for _, w in node_b(tmp_path, max_connections=5, handshake_timeout=30, idle_timeout=30):
        held = [await w.session() for _ in range(5)]
        await anyio.sleep(100 * MS)
        with raw_http(w.host, w.port, b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n") as extra:
            answer = await anyio.to_thread.run_sync(read_until_closed, extra, seconds(2))
        assert answer == b""  # closed without a word: the cap is below HTTP
        for ws in held:
            await ws.close()
        await anyio.sleep(200 * MS)
        async with httpx.AsyncClient() as client:
            assert (await client.get(w.base + "/healthz")).status_code == 200


@pytest.mark.slow
async def test_idle_websocket_closed_but_pinging_one_kept(quick: tuple[Peer, Attacker]) -> None:
    """A session with nothing received for idle_timeout closes 1001; pings keep one open."""
    _, w = quick
    async with await w.session(ping_interval=None) as silent:
        with pytest.raises(websockets.exceptions.ConnectionClosed):
            with anyio.fail_after(5_000 * MS):
                await silent.recv()
    assert silent.close_code == 1001 and silent.close_reason == "idle timeout"
    async with await w.session(ping_interval=0.1, ping_timeout=1.0) as live:
        await anyio.sleep(2.5 * QUICK["idle_timeout"])  # pings keep it open that long
        await live.send(json.dumps({"sets": {"alive": w.set_token("alive")}}))
        with anyio.fail_after(5_000 * MS):
            assert json.loads(await live.recv())["ack"] == ["alive"]


# -- partners ----------------------------------------------------------------------


async def test_session_limit(tmp_path: Path) -> None:
    """Over max_sessions: the upgrade and POSTs are refused 429 with Retry-After."""
    async for _, w in node_b(tmp_path, max_sessions=2, idle_timeout=30):
        first, second = await w.session(), await w.session()
        with pytest.raises(websockets.exceptions.InvalidStatus) as info:
            await w.session()
        assert info.value.response.status_code == 429
        assert int(info.value.response.headers["retry-after"]) >= 1
        refused = await apost(w, {"sets": {"s": w.set_token("s")}})
        assert refused.status_code == 429 and refused.headers["retry-after"]
        await first.close()
        await anyio.sleep(100 * MS)
        response = await apost(w, {"sets": {"s": w.set_token("s")}})
        assert response.status_code == 200 and response.json()["ack"] == ["s"]
        await second.close()


@pytest.mark.slow
async def test_inbound_rate_limit_http(tmp_path: Path) -> None:
    """Over max_inbound_sets_per_second: SETs refused 429 (nothing acked), acks still taken."""
    async for b, w in node_b(tmp_path, max_inbound_sets_per_second=5):
        burst = {f"r{i}": w.set_token(f"r{i}") for i in range(10)}
        first = await apost(w, {"sets": burst})
        assert first.status_code == 200 and len(first.json()["ack"]) == 10
        refused = await apost(w, {"sets": {"r10": w.set_token("r10")}})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        pushed = await apost(w, {"sets": {"r11": w.set_token("r11")}}, "/multipush")
        assert pushed.status_code == 429
        assert (await apost(w, {"ack": []})).status_code == 200  # no SETs: always welcome
        await anyio.sleep(1.2)  # the debt of 5 is paid after one second
        again = await apost(w, {"sets": {"r10": w.set_token("r10")}})
        assert again.status_code == 200 and again.json()["ack"] == ["r10"]
        assert b.stats()["a"]["received"] == 11


async def test_inbound_rate_limit_websocket_slows_reading(tmp_path: Path) -> None:
    """On a WebSocket the reader pauses instead: three 20-SET frames at 20/s take >= 1 s."""
    async for _, w in node_b(tmp_path, max_inbound_sets_per_second=20, idle_timeout=30):
        async with await w.session() as ws:
            started = time.monotonic()
            for frame in range(3):
                sets = {f"w{frame}-{i}": w.set_token(f"w{frame}-{i}") for i in range(20)}
                await ws.send(json.dumps({"sets": sets}))
            acked: set[str] = set()
            with anyio.fail_after(10_000 * MS):
                while len(acked) < 60:
                    acked.update(json.loads(await ws.recv()).get("ack", []))
            assert time.monotonic() - started >= 0.9


async def test_publish_backpressure(tmp_path: Path) -> None:
    """max_pending outbound: publish raises Backpressure, nothing stored beyond it."""
    a_files, b_files = make_pair(tmp_path)
    config = write_config(
        a_files, b_files, endpoint="ws://127.0.0.1:9/pushpull", limits={"max_pending": 3}
    )
    async with Peer(config) as a:
        for _ in range(3):
            await a.publish("b", {SESSION_REVOKED: {}})
        with pytest.raises(Backpressure) as info:
            await a.publish("b", {SESSION_REVOKED: {}})
        assert (info.value.partner, info.value.pending, info.value.limit) == ("b", 3, 3)
        with pytest.raises(Backpressure):
            await a.forward("b", a_files.token_out + ".x.y")
        assert a.stats()["b"]["pending"] + a.stats()["b"]["inflight"] == 3


async def test_inbox_backlog_refuses_then_recovers(tmp_path: Path) -> None:
    """max_pending inbound: SETs refused (429 / close 1013, not acked) until the app drains."""
    async for b, w in node_b(tmp_path, max_pending=2, idle_timeout=30):
        assert (await apost(w, {"sets": {"i1": w.set_token("i1")}})).json()["ack"] == ["i1"]
        assert (await apost(w, {"sets": {"i2": w.set_token("i2")}})).json()["ack"] == ["i2"]
        refused = await apost(w, {"sets": {"i3": w.set_token("i3")}})
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        async with httpx.AsyncClient() as client:
            pushed = await client.post(
                w.base + "/events",
                content=w.set_token("i4"),
                headers={**w.auth, "content-type": "application/secevent+jwt"},
            )
        assert pushed.status_code == 429
        async with await w.session() as ws:
            await ws.send(json.dumps({"sets": {"i5": w.set_token("i5")}}))
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                with anyio.fail_after(5_000 * MS):
                    while True:
                        await ws.recv()
        assert ws.close_code == 1013 and "inbox" in (ws.close_reason or "")
        assert b.stats()["a"]["received"] == 2
        handled = 0
        with anyio.fail_after(5_000 * MS):
            async for rx in b.receive():
                await rx.done()
                handled += 1
                if handled == 2:
                    break
        again = await apost(w, {"sets": {"i3": w.set_token("i3")}})
        assert again.status_code == 200 and again.json()["ack"] == ["i3"]


async def test_backlog_counted_again_after_restart(tmp_path: Path) -> None:
    """The inbox backlog survives a restart: SETs not done still count."""
    a_files, b_files = make_pair(tmp_path)
    config = write_config(b_files, a_files, limits={"max_pending": 1})
    async with Peer(config) as b:
        w = Attacker(b.url, a_files, b_files)
        assert (await apost(w, {"sets": {"p1": w.set_token("p1")}})).status_code == 200
    async with Peer(config) as b:
        w = Attacker(b.url, a_files, b_files)
        assert b.links["a"].inbound.backlog == 1
        assert (await apost(w, {"sets": {"p2": w.set_token("p2")}})).status_code == 429


# -- the pieces ----------------------------------------------------------------------


def test_partner_guard_bucket() -> None:
    """The token bucket: a second's burst, debt of one frame, paid back at the rate."""
    now = [0.0]
    guard = PartnerGuard(Limits(max_inbound_sets_per_second=10), clock=lambda: now[0])
    guard.received(10)
    assert guard.rate_wait() == 0.0
    guard.received(5)
    assert guard.rate_wait() == pytest.approx(0.5)
    with pytest.raises(Overloaded) as info:
        guard.check_inbound()
    assert info.value.http_status == 429 and info.value.response_headers() == {"retry-after": "1"}
    now[0] = 0.5
    guard.check_inbound()
    now[0] = 100.0
    guard.received(10)
    assert guard.rate_wait() == 0.0  # refilled to one second's worth, no more


def test_partner_guard_sessions_and_backlog() -> None:
    """Session slots and the inbox backlog, with their refusals."""
    guard = PartnerGuard(Limits(max_sessions=1, max_pending=2))
    guard.open_session()
    with pytest.raises(Overloaded):
        guard.open_session()
    guard.close_session()
    guard.open_session()
    guard.stored(2)
    assert guard.inbox_full
    with pytest.raises(Overloaded) as info:
        guard.check_inbound()
    assert info.value.close_code == 1013
    guard.handled()
    guard.check_inbound()


@pytest.mark.parametrize(
    "key, value",
    [
        ("max_sessions", 0),
        ("max_pending", 100_000_001),
        ("max_inbound_sets_per_second", 1.5),
        ("max_connections", -1),
    ],
)
def test_new_limits_are_checked(tmp_path: Path, key: str, value: object) -> None:
    """The new [peer.limits] keys have bounds, reported with their key path."""
    a_files, b_files = make_pair(tmp_path)
    with pytest.raises(ConfigError) as info:
        write_config(b_files, a_files, limits={key: value})  # type: ignore[dict-item]
    assert f"peer.limits.{key}" in [path for path, _ in info.value.problems]


def test_default_limits() -> None:
    """The default limits are the documented ones (docs/configuration.md)."""
    limits = Limits()
    assert (limits.max_sessions, limits.max_pending) == (16, 1_000_000)
    assert (limits.max_inbound_sets_per_second, limits.max_connections) == (50_000, 1000)
