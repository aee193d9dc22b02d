"""Named attacks on a real `setpeer run` process: each ends without a crash, the
node's RSS stays bounded, and a valid SET is still acknowledged afterwards.

One node serves the whole module (starting one costs ~1 s); every test measures the RSS
before and after its own attack.
"""

from __future__ import annotations

import contextlib
import hmac
import itertools
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import websockets

from peer.tokens.jose import sign_bytes
from peer.tokens.keys import generate_private_jwks, public_jwks, signing_key
from tests.hostile.helpers import (
    NodeProcess,
    b64,
    raise_fd_limit,
    raw_http,
    read_until_closed,
    run_node,
)
from tests.timing import MS, seconds

# Small timeouts so the attacks end quickly; the connection cap high enough that the
# idle-connection flood is closed by the handshake timeout, not refused on accept.
LIMITS = {
    "handshake_timeout": 1.0,
    "idle_timeout": 2.0,
    "max_connections": 12_000,
    "max_sessions": 50,
}
# Growth allowed between before and after (allocator arenas, caches): far below what
# buffering any of the attacks (100 MB bodies, 10,000 connections) would cost.
RSS_SLACK = 48 * 1024 * 1024
MB = 1024 * 1024


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    raise_fd_limit()  # the node inherits it: room for the connection flood
    with run_node(tmp_path_factory.mktemp("hostile"), LIMITS) as running:
        yield running


@contextlib.contextmanager
def bounded(node: NodeProcess) -> Iterator[None]:
    """The attack inside must leave the node alive with its RSS within RSS_SLACK."""
    before = node.rss()
    yield
    assert node.alive(), "the node process died"
    after = node.rss()
    assert after - before < RSS_SLACK, f"RSS grew {(after - before) / MB:.1f} MiB"


async def still_acks(node: NodeProcess, jti: str) -> None:
    await node.attacker.acked_over_websocket(jti)


async def test_deep_nesting_websocket(node: NodeProcess) -> None:
    """10,000-level nesting in a WebSocket frame closes 1007 (bad data), nothing parsed."""
    w = node.attacker
    with bounded(node):
        for opener, closer in (("[", "]"), ('{"a":', "}")):
            async with await w.session() as ws:
                await ws.send('{"sets": ' + opener * 10_000 + "1" + closer * 10_000 + "}")
                with pytest.raises(websockets.exceptions.ConnectionClosed):
                    with anyio.fail_after(10_000 * MS):
                        await ws.recv()
                assert ws.close_code == 1007 and "nesting" in (ws.close_reason or "")
    await still_acks(node, "after-nesting-ws")


async def test_deep_nesting_post(node: NodeProcess) -> None:
    """10,000-level nesting in a POST body is 400 invalid_request."""
    w = node.attacker
    body = b'{"sets": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with bounded(node):
        async with httpx.AsyncClient() as client:
            for _ in range(20):
                response = await client.post(
                    w.http, content=body, headers={**w.auth, "content-type": "application/json"}
                )
                assert response.status_code == 400
                assert response.json()["err"] == "invalid_request"
    await still_acks(node, "after-nesting-post")


def test_100mb_body_announced(node: NodeProcess) -> None:
    """Content-Length of 100 MB: 413 before a byte of body is read, then the node closes."""
    w = node.attacker
    head = (
        f"POST /pushpull HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {w.bearer}\r\n"
        f"content-type: application/json\r\ncontent-length: {100 * MB}\r\n\r\n"
    ).encode()
    with bounded(node):
        sock = raw_http(w.host, w.port, head)
        with sock:
            answer = read_until_closed(sock, seconds(10))
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]
        assert b"connection: close" in answer.lower()
    anyio.run(still_acks, node, "after-announced")


def test_100mb_body_trickled_chunked(node: NodeProcess) -> None:
    """A chunked body growing toward 100 MB is cut with 413 at max_frame_bytes."""
    w = node.attacker
    head = (
        f"POST /pushpull HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {w.bearer}\r\n"
        "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n%s\r\n" % (64 * 1024, b" " * 64 * 1024)
    sent = 0
    with bounded(node):
        sock = raw_http(w.host, w.port, head)
        with sock:
            with contextlib.suppress(OSError):  # the node closes mid-send: that is the point
                while sent < 100 * MB:
                    sock.sendall(chunk)
                    sent += 64 * 1024
            answer = read_until_closed(sock, seconds(10))
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]
    # Cut near 1 MiB (plus what the socket buffers held), not after 100 MB.
    assert sent < 40 * MB
    anyio.run(still_acks, node, "after-trickled")


def test_slowloris_handshake(node: NodeProcess) -> None:
    """Headers trickled a byte at a time: closed (408) after handshake_timeout."""
    w = node.attacker
    with bounded(node):
        socks = [raw_http(w.host, w.port, b"P") for _ in range(50)]
        started = time.monotonic()
        closed_at = None
        for step, byte in enumerate(b"OST /pushpull HTTP/1.1\r\nx-slow: " + b"a" * 1000):
            for sock in socks:
                try:
                    sock.sendall(bytes([byte]))
                except OSError:
                    closed_at = closed_at or time.monotonic()
            if closed_at is not None or step > 200:
                break
            time.sleep(50 * MS)
        for sock in socks:
            with sock:
                answer = read_until_closed(sock, seconds(10))
                assert answer == b"" or answer.startswith(b"HTTP/1.1 408 ")
        elapsed = time.monotonic() - started
        # Closed by the 1 s handshake timeout, not after all the headers (10 s of trickle).
        assert elapsed < seconds(8)
    anyio.run(still_acks, node, "after-slowloris")


def flood(node: NodeProcess, count: int) -> None:
    """``count`` idle connections at once; returns once the node has closed every one."""
    w = node.attacker
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.connect((w.host, w.port))
            socks.append(sock)
        open_ = set(range(len(socks)))
        deadline = time.monotonic() + seconds(60)
        while open_ and time.monotonic() < deadline:
            for index in list(open_):
                try:
                    data = socks[index].recv(4096, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    continue
                except ConnectionResetError:
                    data = b""
                assert data == b"" or data.startswith(b"HTTP/1.1 408 ")
                open_.discard(index)
            time.sleep(200 * MS)
        assert not open_, f"{len(open_)} of {count} connections still open"
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.slow
def test_many_idle_connections(node: NodeProcess) -> None:
    """As many idle connections as the fd limit allows (up to 10,000), three times: all
    closed by the handshake timeout; memory settles instead of growing flood by flood.

    The allocator may keep what a flood used after its connections close, and this
    module's node has served other tests, so the second flood may still settle its
    heap; a leak would grow the third as much as the first."""
    soft = raise_fd_limit()
    count = max(100, min(10_000, soft // 2 - 200))
    rss = [node.rss()]
    for _ in range(3):
        flood(node, count)
        rss.append(node.rss())
    assert node.alive()
    grown = [(after - before) / MB for before, after in itertools.pairwise(rss)]
    print(
        f"\n{count} idle connections, three floods: RSS +" + ", +".join(f"{g:.1f}" for g in grown)
    )
    # Held at once, a connection costs a few KiB (protocol, parser, timer).
    assert rss[1] - rss[0] < count * 8 * 1024 + RSS_SLACK, f"{grown[0]:.1f} MiB"
    assert rss[3] - rss[2] < 16 * MB, f"third flood grew {grown[2]:.1f} MiB"
    anyio.run(still_acks, node, "after-flood")


def unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    data = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return data + "." + b64(signature)


def jose_attacks(node: NodeProcess) -> dict[str, str]:
    """jti -> a SET built to get past a careless verifier."""
    w = node.attacker
    kid = w.key.kid
    es = {"alg": "ES256", "typ": "secevent+jwt"}
    attacks = {"alg-none": unsigned({"alg": "none", "typ": "secevent+jwt"}, w.claims("alg-none"))}
    # HS256 keyed with the partner's public key, as a library mixing key types would take it.
    hs_header = {"alg": "HS256", "typ": "secevent+jwt", "kid": kid}
    hs_data = unsigned(hs_header, w.claims("hs256-public-key"))[:-1]
    secret = json.dumps(public_jwks(w.private)["keys"][0]).encode()
    attacks["hs256-public-key"] = (
        hs_data + "." + b64(hmac.digest(secret, hs_data.encode(), "sha256"))
    )
    # Signed by the attacker, who ships its own key in the header.
    evil = generate_private_jwks("ES256")
    evil_key = signing_key(evil)
    jwk_header = {**es, "jwk": public_jwks(evil)["keys"][0]}
    jwk_data = unsigned(jwk_header, w.claims("embedded-jwk"))[:-1]
    attacks["embedded-jwk"] = (
        jwk_data + "." + b64(sign_bytes("ES256", evil_key.private_key, jwk_data.encode()))
    )
    # Signed with the partner's real key: only the header check can refuse these.
    attacks["unknown-crit"] = w.signed_with_header(
        "unknown-crit", {**es, "kid": kid, "crit": ["x-evil"], "x-evil": 1}
    )
    for jti, bad_kid in (
        ("kid-traversal", "../../etc/passwd"),
        ("kid-nul", "a\u0000b"),
        ("kid-long", "k" * 20_000),
    ):
        attacks[jti] = w.signed_with_header(jti, {**es, "kid": bad_kid})
    return attacks


async def test_jose_attacks_answered_in_set_errs(node: NodeProcess) -> None:
    """SET-15 (alg none), HS/ES confusion, embedded jwk, unknown crit, kid path tricks:
    each gets a setErrs entry; none is stored; the session stays usable."""
    w = node.attacker
    attacks = jose_attacks(node)
    with bounded(node):
        async with await w.session() as ws:
            for _ in range(20):
                await ws.send(json.dumps({"sets": attacks}))
                with anyio.fail_after(10_000 * MS):
                    reply = json.loads(await ws.recv())
                assert set(reply["setErrs"]) == set(attacks), reply
                assert "ack" not in reply
                for entry in reply["setErrs"].values():
                    assert entry["err"] in ("invalid_key", "invalid_request")
    await still_acks(node, "after-jose")
