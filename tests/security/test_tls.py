"""TLS by default (PP-1, PP-18, PP-28, OPRM-24): real certificates, real refusals.

Node ``b`` serves HTTPS/WSS with a trustme certificate; node ``a`` dials it. Every
broken setup must be refused with the reason in ``a``'s log and nothing delivered.
"""

from __future__ import annotations

import asyncio.sslproto
import datetime
import logging
import ssl
import time
from pathlib import Path

import anyio
import httpx
import pytest

from peer import Peer
from peer.config import PeerConfig, TLSConfig
from peer.transports.tls_buffer import TLS_READ_BUFFER
from tests.peers import SESSION_REVOKED, NodeFiles, make_pair

from .helpers import MS, Pki, bearer_pair, exchange, node_config, wait_for_log


def _b_config(
    tmp_path: Path, pki: Pki, *identities: str, not_after: datetime.datetime | None = None
) -> tuple[NodeFiles, NodeFiles, PeerConfig]:
    """``b`` serves TLS with a certificate for ``identities`` (default 127.0.0.1)."""
    a, b = make_pair(tmp_path)
    certfile, keyfile = pki.issue("b", *(identities or ("127.0.0.1",)), not_after=not_after)
    out, inbound = bearer_pair(b, a)
    config = node_config(
        b,
        [(a, {"auth": out, "inbound": inbound})],
        tls=TLSConfig(certfile=certfile, keyfile=keyfile),
    )
    return a, b, config


def _a_config(
    a: NodeFiles,
    b: NodeFiles,
    endpoint: str,
    ca: Path,
    *,
    transport: str = "websocket",
    insecure: bool = False,
) -> PeerConfig:
    """``a`` dials ``endpoint`` trusting ``ca``, with a static bearer."""
    out, inbound = bearer_pair(a, b)
    options = {"endpoint": endpoint, "auth": out, "inbound": inbound, "ca": ca}
    return node_config(a, [(b, {**options, "transport": transport})], insecure=insecure)


@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_right_setup_exchanges_sets_both_ways_over_tls(
    tmp_path: Path, transport: str
) -> None:
    """PP-1/PP-18: a verified certificate for the right host: SETs flow both ways."""
    pki = Pki.create(tmp_path)
    a, b, b_config = _b_config(tmp_path, pki)
    async with Peer(b_config) as node_b:
        assert node_b.url.startswith("https://")
        scheme = "wss" if transport == "websocket" else "https"
        endpoint = node_b.url.replace("https", scheme, 1) + "/pushpull"
        async with Peer(_a_config(a, b, endpoint, pki.ca_path, transport=transport)) as node_a:
            await exchange(node_a, node_b, 20, timeout=20_000 * MS)
            assert node_a.stats()["b"]["session"] == transport


async def test_frames_larger_than_the_tls_read_buffer_arrive(tmp_path: Path) -> None:
    """A running node reads TLS 16 KiB at a time (decisions.md, "TLS read buffer"):
    300 SETs queued before the session opens go in frames of 100 (~50 KB) and all
    arrive."""
    pki = Pki.create(tmp_path)
    a, b, b_config = _b_config(tmp_path, pki)
    async with Peer(b_config) as node_b:
        assert asyncio.sslproto.SSLProtocol.max_size == TLS_READ_BUFFER
        sent = [await node_b.publish("a", {SESSION_REVOKED: {}}) for _ in range(300)]
        endpoint = node_b.url.replace("https", "wss", 1) + "/pushpull"
        async with Peer(_a_config(a, b, endpoint, pki.ca_path)) as node_a:
            got: list[str] = []
            with anyio.fail_after(20_000 * MS):
                async for rx in node_a.receive():
                    got.append(rx.jti)
                    await rx.done()
                    if len(got) == len(sent):
                        break
                await node_b.flush(timeout=20_000 * MS)
    assert sorted(got) == sorted(sent)


async def _refused(
    caplog: pytest.LogCaptureFixture, a_config: PeerConfig, node_b: Peer, reason: str
) -> str:
    caplog.set_level(logging.INFO, logger="setpeer")
    async with Peer(a_config) as node_a:
        await node_a.publish("b", {SESSION_REVOKED: {}})
        message = await wait_for_log(lambda: caplog.records, reason, 5_000 * MS)
        # Nothing delivered: b saw no SET, a still holds it.
        assert node_b.stats()["a"]["received"] == 0
        stats = node_a.stats()["b"]
        assert stats["pending"] + stats["inflight"] == 1
        assert stats["acked"] == 0
        assert stats["session"] == "down"
    return message


async def test_wrong_ca_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """PP-18: a certificate from a CA we do not trust: refused, the log says so."""
    pki, other = Pki.create(tmp_path), Pki.create(tmp_path, "other-ca")
    a, b, b_config = _b_config(tmp_path, pki)
    async with Peer(b_config) as node_b:
        endpoint = node_b.url.replace("https", "wss", 1) + "/pushpull"
        message = await _refused(
            caplog, _a_config(a, b, endpoint, other.ca_path), node_b, "certificate verify failed"
        )
        assert "SSLCertVerificationError" in message


async def test_wrong_host_name_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """PP-18 / RFC 9525: a trusted certificate for another host is refused."""
    pki = Pki.create(tmp_path)
    a, b, b_config = _b_config(tmp_path, pki, "wrong.example")
    async with Peer(b_config) as node_b:
        endpoint = node_b.url.replace("https", "wss", 1) + "/pushpull"
        message = await _refused(
            caplog, _a_config(a, b, endpoint, pki.ca_path), node_b, "certificate verify failed"
        )
        assert "mismatch" in message or "not valid for" in message


async def test_expired_certificate_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PP-18: an expired certificate is refused, and the log says it expired."""
    pki = Pki.create(tmp_path)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    a, b, b_config = _b_config(tmp_path, pki, not_after=past)
    async with Peer(b_config) as node_b:
        endpoint = node_b.url.replace("https", "wss", 1) + "/pushpull"
        await _refused(caplog, _a_config(a, b, endpoint, pki.ca_path), node_b, "expired")


async def test_plain_text_against_tls_server_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """PP-1: a TLS-only endpoint answers no plain-text handshake; nothing is delivered."""
    pki = Pki.create(tmp_path)
    a, b, b_config = _b_config(tmp_path, pki)
    async with Peer(b_config) as node_b:
        endpoint = node_b.url.replace("https", "ws", 1) + "/pushpull"
        config = _a_config(a, b, endpoint, pki.ca_path, insecure=True)
        message = await _refused(caplog, config, node_b, "plain-text handshake")
        assert "wss://" in message


@pytest.mark.parametrize("path", ["http", "push", "multipush"])
async def test_expired_certificate_reason_logged_on_http_paths(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    """security.md: refusals are logged with the reason on every outbound HTTP path
    too (HTTP push-pull, push, multi-push), not only the exception's class name."""
    pki = Pki.create(tmp_path)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    a, b, b_config = _b_config(tmp_path, pki, not_after=past)
    async with Peer(b_config) as node_b:
        if path == "http":
            config = _a_config(a, b, node_b.url + "/pushpull", pki.ca_path, transport="http")
        else:
            out, inbound = bearer_pair(a, b)
            options = {"auth": out, "inbound": inbound, "ca": pki.ca_path, "send_via": path}
            route = "/events" if path == "push" else "/multipush"
            options[f"{path}_endpoint"] = node_b.url + route
            config = node_config(a, [(b, options)])
        message = await _refused(caplog, config, node_b, "expired")
        assert "certificate verify failed" in message


async def test_stop_does_not_wait_for_an_idle_clients_close_notify(tmp_path: Path) -> None:
    """A partner's pooled, idle HTTPS connection (httpx keeps the one it fetched our JWK
    Set on) never answers our TLS close_notify until it uses the connection again: a
    stop must not wait for it. Before, every stop of a TLS node with such a client took
    the whole graceful-shutdown deadline (5 s)."""
    pki = Pki.create(tmp_path)
    _, _, b_config = _b_config(tmp_path, pki)
    context = ssl.create_default_context(cafile=str(pki.ca_path))
    async with Peer(b_config) as node_b, httpx.AsyncClient(verify=context) as client:
        for _ in range(2):  # the second request reuses the first's connection
            answer = await client.get(node_b.url + "/.well-known/jwks.json")
            assert answer.status_code == 200
        started = time.monotonic()
        await node_b.aclose()
        took = time.monotonic() - started
    # Unscaled: against the 5 s deadline it used to wait out (a stop takes ~0.3 s).
    assert took < 4.0, took
