"""mTLS (PP-20): a client certificate maps a session to exactly one partner.

Node ``b`` asks for client certificates (``peer.tls.client_ca``) and pins each
partner's by SHA-256; ``a`` (and ``c``) present theirs from ``[partners.auth]``.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import httpx
import pytest

from peer import Peer
from peer.config import ClientCert, InboundAuth, OutboundAuth, PeerConfig
from tests.peers import SESSION_REVOKED, NodeFiles, make_pair

from .helpers import MS, Pki, cert_sha256, exchange, node_config, wait_for_log


def _setup(tmp_path: Path) -> tuple[Pki, NodeFiles, NodeFiles, NodeFiles, PeerConfig]:
    """``b`` pins ``a``'s and ``c``'s client certificates (both from the same CA)."""
    pki = Pki.create(tmp_path)
    a, b = make_pair(tmp_path)
    c = NodeFiles("c", tmp_path)
    c.make_keys()
    a_cert, _ = pki.issue("client-a", "a.test.example")
    c_cert, _ = pki.issue("client-c", "c.test.example")
    b_config = node_config(
        b,
        [
            (a, {"inbound": InboundAuth(client_cert_sha256=cert_sha256(a_cert))}),
            (c, {"inbound": InboundAuth(client_cert_sha256=cert_sha256(c_cert))}),
        ],
        tls=pki.tls("b", client_ca=True),
    )
    return pki, a, b, c, b_config


def _dialer(
    me: NodeFiles,
    b: NodeFiles,
    endpoint: str,
    ca: Path,
    cert: tuple[Path, Path],
    transport: str = "websocket",
) -> PeerConfig:
    client_cert = ClientCert(certfile=cert[0], keyfile=cert[1])
    return node_config(
        me,
        [
            (
                b,
                {
                    "endpoint": endpoint,
                    "auth": OutboundAuth(client_cert=client_cert),
                    "ca": ca,
                    "transport": transport,
                },
            )
        ],
    )


@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_right_client_certificate_maps_to_its_partner(tmp_path: Path, transport: str) -> None:
    """PP-20: a's pinned certificate authenticates a: SETs both ways, attributed to a."""
    pki, a, b, c, b_config = _setup(tmp_path)
    async with Peer(b_config) as node_b:
        scheme = "wss" if transport == "websocket" else "https"
        endpoint = node_b.url.replace("https", scheme, 1) + "/pushpull"
        a_cert = (tmp_path / "ca-client-a.crt", tmp_path / "ca-client-a.key")
        config = _dialer(a, b, endpoint, pki.ca_path, a_cert, transport)
        async with Peer(config) as node_a:
            seen = await exchange(node_a, node_b, 10, timeout=20_000 * MS)
        # Every SET b received came in on a's session and is attributed to a alone.
        assert set(seen["b"]) == {"a"}
        assert node_b.stats()["a"]["received"] == 10
        assert node_b.stats()["c"]["received"] == 0


async def test_client_certificate_from_unknown_ca_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate outside peer.tls.client_ca fails the TLS handshake itself."""
    caplog.set_level(logging.INFO, logger="setpeer")
    pki, a, b, c, b_config = _setup(tmp_path)
    rogue = Pki.create(tmp_path, "rogue")
    cert = rogue.issue("client-a", "a.test.example")
    async with Peer(b_config) as node_b:
        endpoint = node_b.url.replace("https", "wss", 1) + "/pushpull"
        async with Peer(_dialer(a, b, endpoint, pki.ca_path, cert)) as node_a:
            await node_a.publish("b", {SESSION_REVOKED: {}})
            message = await wait_for_log(
                lambda: caplog.records, "refuse our client certificate", 5_000 * MS
            )
            assert "partner=b session ended" in message
            assert node_b.stats()["a"]["received"] == 0
            assert node_a.stats()["b"]["acked"] == 0


async def test_unpinned_client_certificate_refused_with_401(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate from the right CA but pinned for no partner gets 401, no session."""
    caplog.set_level(logging.INFO, logger="setpeer")
    pki, a, b, c, b_config = _setup(tmp_path)
    cert = pki.issue("client-x", "x.test.example")
    async with Peer(b_config) as node_b:
        endpoint = node_b.url.replace("https", "wss", 1) + "/pushpull"
        async with Peer(_dialer(a, b, endpoint, pki.ca_path, cert)) as node_a:
            await node_a.publish("b", {SESSION_REVOKED: {}})
            message = await wait_for_log(lambda: caplog.records, "HTTP 401", 5_000 * MS)
            assert 'Bearer realm="setpeer"' in message
            assert node_b.stats()["a"]["received"] == 0
        # The same over plain HTTPS POST: 401 with WWW-Authenticate, RFC 8935 body.
        context = ssl.create_default_context(cafile=str(pki.ca_path))
        context.load_cert_chain(str(cert[0]), str(cert[1]))
        async with httpx.AsyncClient(verify=context) as client:
            response = await client.post(node_b.url + "/pushpull", json={})
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["err"] == "authentication_failed"
