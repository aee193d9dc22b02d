"""Floods of the connection and request layer, against real nodes on loopback.

Pipelined requests never read (memory), connection slots held by strangers (partners
locked out), headers in one write, two ``Authorization`` headers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from peer import ConfigError, Peer, load_config
from peer.config import MetricsConfig
from peer.server.app import metrics_on_partner_listener
from tests.hostile.helpers import NodeProcess, raise_fd_limit, raw_http, read_until_closed
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.timing import MS, seconds

MB = 1024 * 1024
PIPELINED = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n"


@pytest.fixture
def node_process(tmp_path: Path) -> Iterator[NodeProcess]:
    raise_fd_limit()
    node = NodeProcess(tmp_path, {"handshake_timeout": 2.0, "idle_timeout": 3.0})
    try:
        yield node
    finally:
        node.process.kill()  # the flood may have left it busy; its exit is not the test
        node.process.wait(timeout=seconds(30))
        if node.process.stdout is not None:
            node.process.stdout.close()


def _push(sock: socket.socket, sent: int, total: int, request: bytes = PIPELINED) -> int:
    """Write what the kernel takes now of ``total`` bytes of pipelined ``request``."""
    block = request * (65536 // len(request))
    while sent < total:
        try:
            sent += sock.send(block[: total - sent])
        except (BlockingIOError, InterruptedError):
            return sent
        except OSError:
            return total  # closed by the node
    return sent


@pytest.mark.slow
async def test_pipelined_flood_that_never_reads_is_bounded(node_process: NodeProcess) -> None:
    """100 connections each write 256 KiB of pipelined GET /healthz and never read.

    Before: uvicorn parsed and queued every request of each read (~9,000 per 256 KiB),
    RSS 62 -> 1,859 MB. Now: the node's RSS stays within 150 MB of idle and /healthz
    answers meanwhile (within 2 s each).
    """
    node = node_process
    host, port = node.attacker.host, node.attacker.port
    idle_rss = node.rss()
    total = 256 * 1024
    socks = [socket.create_connection((host, port)) for _ in range(100)]
    for sock in socks:
        sock.setblocking(False)
    sent = [0] * len(socks)
    peak = idle_rss
    slowest = 0.0
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=seconds(2)) as client:
            while time.monotonic() - started < seconds(6):
                for i, sock in enumerate(socks):
                    sent[i] = _push(sock, sent[i], total)
                peak = max(peak, node.rss())
                assert peak - idle_rss < 150 * MB, f"RSS {idle_rss / MB:.0f} -> {peak / MB:.0f} MB"
                asked = time.monotonic()
                assert (await client.get(node.url + "/healthz")).status_code == 200
                slowest = max(slowest, time.monotonic() - asked)
                await anyio.sleep(100 * MS)
    finally:
        for sock in socks:
            sock.close()
    print(
        f"\npipelined flood: {sum(sent) / MB:.1f} MB written; RSS idle {idle_rss / MB:.0f} MB,"
        f" peak {peak / MB:.0f} MB; slowest /healthz {slowest * 1000:.0f} ms"
    )
    assert node.alive()


@pytest.mark.slow
async def test_answers_never_read_close_the_connection(tmp_path: Path) -> None:
    """A client that pipelines requests and never reads their answers: once the
    answers fill the socket buffers and wait in the node for idle_timeout (1 s), the
    node aborts the connection. Before: it stayed open (and its tasks with it) forever."""
    a_files, b_files = make_pair(tmp_path)
    limits = {"handshake_timeout": 30, "idle_timeout": 1.0}
    async with Peer(write_config(b_files, a_files, limits=limits)) as b:
        host, port = b.url.removeprefix("http://").split(":")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills fast
        sock.connect((host, int(port)))
        sock.setblocking(False)
        request = b"GET /.well-known/jwks.json HTTP/1.1\r\nhost: x\r\n\r\n"
        sent, started = 0, time.monotonic()
        while time.monotonic() - started < seconds(3):  # idle_timeout and then some
            sent = _push(sock, sent, 4 * MB, request)
            await anyio.sleep(50 * MS)
        sock.setblocking(True)
        with sock:
            # Aborted: what is left in our buffer, then a reset or EOF. Still open:
            # reading lets the node write again and it never closes.
            answers = await anyio.to_thread.run_sync(read_until_closed, sock, seconds(5))
    requests, answered = sent // len(request), answers.count(b"HTTP/1.1 200 ")
    print(f"\nunread answers: connection aborted after {answered} of {requests} answers")
    assert answered < requests  # the rest was dropped with the connection


async def test_header_over_cap_in_one_write_is_refused(tmp_path: Path) -> None:
    """A 100 KB header sent in one write gets 431, like a trickled one (cap: 64 KiB)."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        host, port = b.url.removeprefix("http://").split(":")
        big = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-junk: " + b"a" * 100_000 + b"\r\n\r\n"
        with raw_http(host, int(port), big) as sock:
            answer = await anyio.to_thread.run_sync(read_until_closed, sock, seconds(5))
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:60]
        # Headers under the cap, in one write, still pass.
        fine = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-fine: " + b"a" * 60_000 + b"\r\n\r\n"
        with raw_http(host, int(port), fine) as sock:
            assert (await anyio.to_thread.run_sync(sock.recv, 100)).startswith(b"HTTP/1.1 200 ")


async def _acked_set(b: Peer) -> None:
    async for received in b.receive():
        await received.done()
        return


async def test_slots_held_by_strangers_do_not_lock_a_partner_out(tmp_path: Path) -> None:
    """Every connection slot held by a stranger's idle keep-alive connection (one
    unauthenticated request, then silence): a partner that starts then reaches us
    and delivers a SET within 3 s. Before: refused until the keep-alive ran out."""
    raise_fd_limit()
    slots = 300
    a_files, b_files = make_pair(tmp_path)
    b_config = write_config(
        b_files,
        a_files,
        limits={"max_connections": slots, "handshake_timeout": 30, "idle_timeout": 60},
    )
    async with Peer(b_config) as b:
        host, port = b.url.removeprefix("http://").split(":")
        held: list[socket.socket] = []

        def hold() -> None:
            for _ in range(slots):
                sock = raw_http(host, int(port), PIPELINED)
                sock.recv(1000)  # answered: now an idle keep-alive connection
                held.append(sock)

        await anyio.to_thread.run_sync(hold)
        try:
            a_config = write_config(
                a_files, b_files, endpoint=b.url.replace("http://", "ws://") + "/pushpull"
            )
            started = time.monotonic()
            async with Peer(a_config) as a:
                await a.publish("b", {SESSION_REVOKED: {}})
                with anyio.fail_after(seconds(3)):
                    await _acked_set(b)
                took = time.monotonic() - started
        finally:
            for sock in held:
                sock.close()
    print(f"\n{slots} slots held by strangers: the partner's first SET arrived in {took:.2f} s")
    assert took < seconds(3)


@pytest.mark.slow
async def test_strangers_get_the_short_keep_alive(tmp_path: Path) -> None:
    """After an unauthenticated request a connection is closed at handshake_timeout;
    a partner's keep-alive connection lasts idle_timeout."""
    a_files, b_files = make_pair(tmp_path)
    limits = {"handshake_timeout": 0.5, "idle_timeout": 30}
    async with Peer(write_config(b_files, a_files, limits=limits)) as b:
        host, port = b.url.removeprefix("http://").split(":")
        with raw_http(host, int(port), PIPELINED) as stranger:
            started = time.monotonic()
            answer = await anyio.to_thread.run_sync(read_until_closed, stranger, seconds(5))
            closed_after = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 200 ") and answer.count(b"HTTP/1.1") == 1
        assert closed_after < seconds(3)
        bearer = a_files.token_out
        partner_request = (
            f"POST /pushpull HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {bearer}\r\n"
            "content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        ).encode()
        with raw_http(host, int(port), partner_request) as partner:
            answer = await anyio.to_thread.run_sync(partner.recv, 1000)
            assert answer.startswith(b"HTTP/1.1 200 ")
            with pytest.raises(TimeoutError):  # still open well past handshake_timeout
                await anyio.to_thread.run_sync(read_until_closed, partner, 2.0)
    print(f"\na stranger's keep-alive connection closed after {closed_after:.2f} s")


@pytest.mark.parametrize("valid_first", [True, False])
async def test_two_authorization_headers_are_refused(tmp_path: Path, valid_first: bool) -> None:
    """Two Authorization headers, one of them the partner's valid bearer: 401 with the
    RFC 8935 body, whichever comes first. Before: the first one won."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        valid, junk = f"Bearer {a_files.token_out}", "Bearer not-a-partner"
        pair = [valid, junk] if valid_first else [junk, valid]
        headers = httpx.Headers([("authorization", value) for value in pair])
        headers["content-type"] = "application/json"
        async with httpx.AsyncClient() as client:
            response = await client.post(b.url + "/pushpull", content=b"{}", headers=headers)
            assert response.status_code == 401, response.text
            assert response.json()["err"] == "authentication_failed"
            assert "one Authorization header only" in response.headers["www-authenticate"]
            # One header, the valid one: accepted.
            ok = await client.post(
                b.url + "/pushpull",
                content=b"{}",
                headers={"authorization": valid, "content-type": "application/json"},
            )
            assert ok.status_code == 200


# -- /metrics ------------------------------------------------------------------------

METRICS_TOKEN = "scrape-secret-0123456789"


async def test_metrics_behind_a_token(tmp_path: Path) -> None:
    """[peer.metrics] token_sha256: /metrics without the bearer is 401, with it 200."""
    a_files, b_files = make_pair(tmp_path)
    digest = hashlib.sha256(METRICS_TOKEN.encode()).hexdigest()
    config = dataclasses.replace(
        write_config(b_files, a_files), metrics=MetricsConfig(token_sha256=digest)
    )
    async with Peer(config) as b, httpx.AsyncClient() as client:
        refused = await client.get(b.url + "/metrics")
        assert refused.status_code == 401 and b"setpeer_" not in refused.content
        wrong = await client.get(b.url + "/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        scraped = await client.get(
            b.url + "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert scraped.status_code == 200 and b"setpeer_sets_pending" in scraped.content


async def test_metrics_on_their_own_listener(tmp_path: Path) -> None:
    """[peer.metrics] listen: /metrics there, none on the partner listener."""
    a_files, b_files = make_pair(tmp_path)
    config = dataclasses.replace(
        write_config(b_files, a_files), metrics=MetricsConfig(listen="127.0.0.1:0")
    )
    async with Peer(config) as b, httpx.AsyncClient() as client:
        assert b.metrics_url is not None and b.metrics_url != b.url
        assert (await client.get(b.url + "/metrics")).status_code == 404
        scraped = await client.get(b.metrics_url + "/metrics")
        assert scraped.status_code == 200 and b"setpeer_sets_pending" in scraped.content
        assert (await client.get(b.metrics_url + "/healthz")).status_code == 404


def test_metrics_default_is_loopback_only(tmp_path: Path) -> None:
    """Without [peer.metrics], a partner listener off loopback serves no /metrics."""
    a_files, b_files = make_pair(tmp_path)
    config = write_config(b_files, a_files)
    assert metrics_on_partner_listener(config)  # 127.0.0.1: this host only
    public = dataclasses.replace(config, listen="192.0.2.10:8443")
    assert not metrics_on_partner_listener(public)
    digest = hashlib.sha256(METRICS_TOKEN.encode()).hexdigest()
    assert metrics_on_partner_listener(
        dataclasses.replace(public, metrics=MetricsConfig(token_sha256=digest))
    )


def test_metrics_keys_are_checked(tmp_path: Path) -> None:
    a_files, b_files = make_pair(tmp_path)
    config = dataclasses.replace(
        write_config(b_files, a_files),
        metrics=MetricsConfig(listen="nowhere", token_sha256="abc"),
    )
    keys = [key for key, _ in config.problems()]
    assert "peer.metrics.listen" in keys and "peer.metrics.token_sha256" in keys


def test_metrics_table_is_read_from_toml(tmp_path: Path) -> None:
    a_files, b_files = make_pair(tmp_path)
    write_config(b_files, a_files)
    path = tmp_path / "b.toml"
    table = '[peer.metrics]\nlisten = "127.0.0.1:9464"\ntoken_sha256 = "' + "ab" * 32 + '"\n'
    path.write_text(path.read_text().replace("[[partners]]", table + "[[partners]]", 1))
    metrics = load_config(path).metrics
    assert metrics == MetricsConfig(listen="127.0.0.1:9464", token_sha256="ab" * 32)
    path.write_text(path.read_text().replace("token_sha256", "tokn", 1))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "peer.metrics.tokn" in [key for key, _ in info.value.problems]
