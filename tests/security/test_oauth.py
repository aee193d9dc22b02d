"""OAuth 2.0 end to end against a real authorization server (oidc-provider).

``a`` dials ``b``; ``b`` accepts JWT access tokens (RFC 9068) from the AS for
subject ``a``. ``a`` finds the AS through ``b``'s RFC 9728 metadata (PP-19) and gets
tokens with client credentials and ``private_key_jwt`` (RFC 7523).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from peer import Peer
from peer.auth.client_credentials import request_token
from peer.auth.discovery import fetch_as_metadata, fetch_resource_metadata
from peer.config import InboundAuth, InboundOAuth, OAuthClient, OutboundAuth, PeerConfig
from peer.tokens.keys import generate_private_jwks, public_jwks
from tests.peers import SESSION_REVOKED, NodeFiles, make_pair

from .authorization_server import AuthorizationServer, authorization_server
from .helpers import MS, Pki, exchange, node_config, seconds, wait_for_log

SCOPE = "pushpull"
PATHS = ("/pushpull", "/events", "/multipush", "/poll")


@dataclass
class Setup:
    """Two node folders, a PKI, a's OAuth client key, and the running AS."""

    a: NodeFiles
    b: NodeFiles
    pki: Pki
    client_key: Path
    server: AuthorizationServer

    def b_config(self, *, subject: str = "a", scope: str | None = SCOPE, **kw: Any) -> PeerConfig:
        oauth = InboundOAuth(
            issuer=self.server.issuer, subject=subject, scope=scope, ca=self.pki.ca_path
        )
        return node_config(
            self.b,
            [(self.a, {"inbound": InboundAuth(oauth=oauth)})],
            tls=self.pki.tls("b"),
            **kw,
        )

    def a_config(self, endpoint: str, *, transport: str = "websocket", **oauth: Any) -> PeerConfig:
        client = OAuthClient(client_id="a", private_key_jwt=self.client_key, scope=SCOPE, **oauth)
        return node_config(
            self.a,
            [
                (
                    self.b,
                    {
                        "endpoint": endpoint,
                        "ca": self.pki.ca_path,
                        "auth": OutboundAuth(oauth=client),
                        "transport": transport,
                    },
                )
            ],
        )

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.pki.ca_path))

    async def token_for(self, resource: str) -> str:
        """A real access token for ``resource``, obtained the way ``a`` would."""
        async with httpx.AsyncClient(verify=self.context()) as client:
            server = await fetch_as_metadata(client, self.server.issuer)
            assert server.token_endpoint is not None
            token = await request_token(
                client,
                token_endpoint=server.token_endpoint,
                audience=self.server.issuer,
                oauth=OAuthClient(client_id="a", private_key_jwt=self.client_key, scope=SCOPE),
                resource=resource,
                config_dir=self.a.folder,
            )
        return token.value


@contextlib.asynccontextmanager
async def oauth_setup(tmp_path: Path, *, ttl: float = 300) -> AsyncIterator[Setup]:
    a, b = make_pair(tmp_path)
    pki = Pki.create(tmp_path)
    private = generate_private_jwks("ES256")
    client_key = tmp_path / "a-client.jwks.json"
    client_key.write_text(json.dumps(private))
    clients = {"a": public_jwks(private)}
    async with authorization_server(tmp_path, pki, clients, scope=SCOPE, ttl=ttl) as server:
        yield Setup(a, b, pki, client_key, server)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _wss(node: Peer) -> str:
    return node.url.replace("https", "wss", 1) + "/pushpull"


@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_discovery_and_private_key_jwt_exchange_both_ways(
    tmp_path: Path, transport: str
) -> None:
    """PP-19/PP-20, OPRM-9/15, RFC 8707: AS found via metadata; token aud = endpoint."""
    async with oauth_setup(tmp_path) as setup, Peer(setup.b_config()) as node_b:
        endpoint = _wss(node_b) if transport == "websocket" else node_b.url + "/pushpull"
        async with Peer(setup.a_config(endpoint, transport=transport)) as node_a:
            seen = await exchange(node_a, node_b, 20, timeout=20_000 * MS)
            assert set(seen["b"]) == {"a"}
            auth = node_a.links["b"].outbound_auth
            claims = _claims(auth.current_headers()["authorization"].removeprefix("Bearer "))
        # No token_endpoint was configured: it came from b's metadata and the AS's.
        assert claims["iss"] == setup.server.issuer
        assert claims["aud"] == node_b.url + "/pushpull"
        assert claims["sub"] == "a" and claims["scope"] == SCOPE


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_token_expiry_and_refresh_mid_stream_lose_no_set(
    tmp_path: Path, transport: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Tokens living 2 s are renewed while SETs stream both ways; none is lost or doubled."""
    caplog.set_level(logging.INFO, logger="setpeer")
    async with oauth_setup(tmp_path, ttl=2) as setup, Peer(setup.b_config()) as node_b:
        endpoint = _wss(node_b) if transport == "websocket" else node_b.url + "/pushpull"
        async with Peer(setup.a_config(endpoint, transport=transport)) as node_a:
            got: dict[str, list[str]] = {"a": [], "b": []}
            count = 80

            async def consume(node: Peer, me: str) -> None:
                async for rx in node.receive():
                    got[me].append(rx.jti)
                    await rx.done()
                    if len(got[me]) == count:
                        return

            with anyio.fail_after(30_000 * MS):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(consume, node_a, "a")
                    tg.start_soon(consume, node_b, "b")
                    for i in range(count):  # ~4 s: two renewals at least
                        await node_a.publish("b", {SESSION_REVOKED: {}}, jti=f"a{i}")
                        await node_b.publish("a", {SESSION_REVOKED: {}}, jti=f"b{i}")
                        await anyio.sleep(50 * MS)
                await node_a.flush(timeout=seconds(30))
                await node_b.flush(timeout=seconds(30))
            assert sorted(got["b"]) == sorted(f"a{i}" for i in range(count))
            assert sorted(got["a"]) == sorted(f"b{i}" for i in range(count))
            assert node_a.links["b"].outbound_auth.tokens_obtained >= 3
            assert node_a.failures() == [] and node_b.failures() == []
        if transport == "websocket":
            renewals = [r for r in caplog.records if "due for renewal" in r.getMessage()]
            assert len(renewals) >= 2  # each renewal reopened the session with the new token


async def test_token_for_another_audience_refused_with_401(tmp_path: Path) -> None:
    """RFC 8707 / OPRM-27: a valid token for another resource gets 401 invalid_token."""
    async with oauth_setup(tmp_path) as setup, Peer(setup.b_config()) as node_b:
        token = await setup.token_for("https://other.example/pushpull")
        auth = {"authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(verify=setup.context()) as client:
            response = await client.post(node_b.url + "/pushpull", json={}, headers=auth)
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        assert 'error="invalid_token"' in challenge
        assert "audience" in challenge
        with pytest.raises(InvalidStatus) as refused:
            await connect(
                _wss(node_b),
                subprotocols=["pushpull"],
                additional_headers=auth,  # type: ignore[list-item]
                ssl=setup.context(),
            )
        assert refused.value.response.status_code == 401  # refused before the upgrade
        # The right audience passes (the same AS, the same client).
        good = await setup.token_for(node_b.url + "/pushpull")
        async with httpx.AsyncClient(verify=setup.context()) as client:
            response = await client.post(
                node_b.url + "/pushpull", json={}, headers={"authorization": f"Bearer {good}"}
            )
        assert response.status_code == 200


async def test_missing_token_gets_401_with_resource_metadata(tmp_path: Path) -> None:
    """OPRM-19 / RFC 6750 §3.1: no credentials: 401, resource_metadata, no error code."""
    async with oauth_setup(tmp_path) as setup, Peer(setup.b_config()) as node_b:
        async with httpx.AsyncClient(verify=setup.context()) as client:
            response = await client.post(node_b.url + "/pushpull", json={})
        assert response.status_code == 401
        challenge = response.headers["www-authenticate"]
        expected = f'resource_metadata="{node_b.url}/.well-known/oauth-protected-resource/pushpull"'
        assert challenge.startswith("Bearer ") and expected in challenge
        assert "error=" not in challenge
        assert response.json()["err"] == "authentication_failed"
        with pytest.raises(InvalidStatus) as refused:
            await connect(_wss(node_b), subprotocols=["pushpull"], ssl=setup.context())  # type: ignore[list-item]
        assert refused.value.response.status_code == 401
        assert expected in refused.value.response.headers["www-authenticate"]


async def test_metadata_documents_per_resource(tmp_path: Path) -> None:
    """OPRM-2/9/12/13/15/30: one path-inserted document per route, naming itself."""
    async with oauth_setup(tmp_path) as setup, Peer(setup.b_config()) as node_b:
        async with httpx.AsyncClient(verify=setup.context()) as client:
            for path in PATHS:
                url = f"{node_b.url}/.well-known/oauth-protected-resource{path}"
                response = await client.get(url)
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("application/json")
                assert "max-age=" in response.headers["cache-control"]
                document = response.json()
                assert document["resource"] == node_b.url + path
                assert document["authorization_servers"] == [setup.server.issuer]
                assert document["scopes_supported"] == [SCOPE]
                assert document["bearer_methods_supported"] == ["header"]
                assert "none" not in document.get("resource_signing_alg_values_supported", [])
                # Our own client accepts it (exact resource match).
                metadata = await fetch_resource_metadata(client, node_b.url + path)
                assert metadata.authorization_servers == (setup.server.issuer,)
            # No document for the host itself, and none without OAuth configured.
            bare = await client.get(f"{node_b.url}/.well-known/oauth-protected-resource")
            assert bare.status_code == 404


async def test_no_metadata_routes_without_oauth(tmp_path: Path) -> None:
    """The metadata routes exist only when OAuth inbound auth is configured."""
    a, b = make_pair(tmp_path)
    pki = Pki.create(tmp_path)
    config = node_config(
        b, [(a, {"inbound": InboundAuth(bearer_sha256="0" * 64)})], tls=pki.tls("b")
    )
    async with Peer(config) as node_b:
        context = ssl.create_default_context(cafile=str(pki.ca_path))
        async with httpx.AsyncClient(verify=context) as client:
            url = f"{node_b.url}/.well-known/oauth-protected-resource/pushpull"
            assert (await client.get(url)).status_code == 404
            response = await client.post(node_b.url + "/pushpull", json={})
        assert response.headers["www-authenticate"] == 'Bearer realm="setpeer"'


async def test_metadata_for_another_resource_is_not_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """OPRM-15/26: b's metadata names a resource a did not ask about: no token, no SET."""
    caplog.set_level(logging.INFO, logger="setpeer")
    async with oauth_setup(tmp_path) as setup:
        config = setup.b_config(public_url="https://b.test.example")
        async with Peer(config) as node_b, Peer(setup.a_config(_wss(node_b))) as node_a:
            await node_a.publish("b", {SESSION_REVOKED: {}})
            message = await wait_for_log(lambda: caplog.records, "resource is not", 5_000 * MS)
            assert "protected resource metadata" in message
            assert node_b.stats()["a"]["received"] == 0
            assert node_a.links["b"].outbound_auth.tokens_obtained == 0


async def test_configured_issuer_must_be_listed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """OPRM-28: with auth.oauth.issuer set, metadata cannot send us to another AS."""
    caplog.set_level(logging.INFO, logger="setpeer")
    async with oauth_setup(tmp_path) as setup, Peer(setup.b_config()) as node_b:
        config = setup.a_config(_wss(node_b), issuer="https://as.other.example")
        async with Peer(config) as node_a:
            await node_a.publish("b", {SESSION_REVOKED: {}})
            await wait_for_log(lambda: caplog.records, "does not list the configured", 5_000 * MS)
            assert node_b.stats()["a"]["received"] == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"scope": "pushpull admin"}, "lacks the required scope"),
        ({"subject": "someone-else"}, "subject is not a known partner"),
    ],
)
async def test_token_for_the_wrong_partner_or_scope_refused(
    tmp_path: Path, change: dict[str, str], reason: str
) -> None:
    """A valid token maps to a partner only by its issuer and subject, with its scope."""
    async with oauth_setup(tmp_path) as setup, Peer(setup.b_config(**change)) as node_b:
        token = await setup.token_for(node_b.url + "/pushpull")
        async with httpx.AsyncClient(verify=setup.context()) as client:
            response = await client.post(
                node_b.url + "/pushpull", json={}, headers={"authorization": f"Bearer {token}"}
            )
        assert response.status_code == 401
        assert reason in response.headers["www-authenticate"]


def _tamper_header(token: str, **header: Any) -> str:
    _, payload, signature = token.split(".")
    raw = json.dumps({"alg": "ES256", "typ": "at+jwt", "kid": "as-es256", **header}).encode()
    encoded = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return f"{encoded}.{payload}.{signature}"


async def test_inbound_token_checks_against_real_keys(tmp_path: Path) -> None:
    """RFC 9068 §4: alg, typ, signature, issuer and exp are each checked."""
    from peer.auth.access_tokens import (
        CLOCK_SKEW,
        AccessTokenVerifier,
        AuthorizationServerKeys,
        TokenRejected,
    )

    async with oauth_setup(tmp_path) as setup:
        resource = "https://b.test.example/pushpull"
        token = await setup.token_for(resource)
        keys = AuthorizationServerKeys(setup.server.issuer, ca=setup.pki.ca_path)
        verifier = AccessTokenVerifier(keys)
        claims = await verifier.verify(token, audiences=[resource])
        assert claims["client_id"] == "a"
        header, payload, signature = token.split(".")
        flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")
        cases = {
            f"{header}.{payload}.{flipped}": "signature does not verify",
            _tamper_header(token, alg="none"): "algorithm is not allowed",
            _tamper_header(token, alg="HS256"): "algorithm is not allowed",
            _tamper_header(token, typ="JWT"): "typ is not at+jwt",
            _tamper_header(token, jku="https://evil.example/jwks"): "carries keys",
            "not-a-jwt": "not a JWT",
        }
        for bad, reason in cases.items():
            with pytest.raises(TokenRejected, match=re.escape(reason)):
                await verifier.verify(bad, audiences=[resource])
        with pytest.raises(TokenRejected, match="expired"):
            await verifier.verify(token, audiences=[resource], now=claims["exp"] + CLOCK_SKEW)
        other = AccessTokenVerifier(AuthorizationServerKeys("https://as.other.example"))
        with pytest.raises(TokenRejected, match="issuer is not trusted"):
            await other.verify(token, audiences=[resource])


async def test_config_with_oauth_needs_public_url_off_loopback(tmp_path: Path) -> None:
    """OPRM-15: listening on 0.0.0.0, the resource URL cannot be guessed: ConfigError."""
    from peer import ConfigError

    async with oauth_setup(tmp_path) as setup:
        config = setup.b_config()
        with pytest.raises(ConfigError) as caught:
            replace(config, listen="0.0.0.0:0").validate()
        assert [key for key, _ in caught.value.problems] == ["peer.public_url"]
        replace(config, listen="0.0.0.0:0", public_url="https://b.example").validate()
