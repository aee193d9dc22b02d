"""Which client an access token speaks for: ``sub`` and ``client_id`` must agree.

Node ``b`` accepts OAuth access tokens from one authorization server for two partners,
``a`` (client ``a-client``) and ``c`` (client ``c-client``). A token issued to ``c``'s
client (``client_id``) about ``a``'s (``sub``) used to be taken as ``a``'s: ``c`` then
pulled the SETs ``b`` held for ``a``, which ``a`` never got. The AS here signs what the
test asks for (a correct AS never issues such a token, but a compromised or misused one
may); the node, its TLS and the AS's HTTPS are real.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from peer import Peer
from peer.config import InboundAuth, InboundOAuth
from tests.peers import SESSION_REVOKED, NodeFiles, make_pair

from .authorization_server import SigningAuthorizationServer, signing_authorization_server
from .helpers import Pki, node_config, seconds

HUGE = 10**400


@asynccontextmanager
async def node_b(tmp_path: Path) -> AsyncIterator[tuple[Peer, SigningAuthorizationServer, Pki]]:
    a, b = make_pair(tmp_path)
    c = NodeFiles("c", tmp_path)
    c.make_keys()
    pki = Pki.create(tmp_path)
    with signing_authorization_server(pki) as server:

        def partner(files: NodeFiles) -> tuple[NodeFiles, dict[str, object]]:
            oauth = InboundOAuth(
                issuer=server.issuer, subject=f"{files.name}-client", ca=pki.ca_path
            )
            return files, {"inbound": InboundAuth(oauth=oauth)}

        config = node_config(b, [partner(a), partner(c)], tls=pki.tls("b"))
        async with Peer(config) as node:
            yield node, server, pki


async def pull(node: Peer, pki: Pki, token: str) -> httpx.Response:
    """An HTTP push-pull exchange with ``token``: b answers with SETs it holds for the
    partner the token maps to."""
    context = ssl.create_default_context(cafile=str(pki.ca_path))
    async with httpx.AsyncClient(verify=context) as client:
        return await client.post(
            node.url + "/pushpull",
            json={},
            headers={"authorization": f"Bearer {token}"},
            timeout=seconds(10),
        )


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"client_id": "c-client", "sub": "a-client"}, "name different clients"),
        ({"client_id": "a-client", "sub": "c-client"}, "name different clients"),
        ({"client_id": "c-client", "sub": "someone"}, "name different clients"),
        ({"client_id": "c-client", "sub": 5}, "must be non-empty strings"),
        ({}, "names no client"),
        ({"sub": "a-client", "exp": HUGE}, "exp is not a NumericDate"),
    ],
)
async def test_token_naming_two_clients_is_refused(
    tmp_path: Path, claims: dict[str, Any], reason: str
) -> None:
    """401 invalid_token; nothing b holds for a leaves b."""
    async with node_b(tmp_path) as (node, server, pki):
        jti = await node.publish("a", {SESSION_REVOKED: {}})
        response = await pull(node, pki, server.token(node.url + "/pushpull", **claims))
        print(f"{sorted(claims)} -> HTTP {response.status_code}")
        assert response.status_code == 401, response.text
        challenge = response.headers["www-authenticate"]
        assert 'error="invalid_token"' in challenge and reason in challenge
        assert jti not in response.text
        assert node.stats()["a"]["inflight"] == 0


@pytest.mark.parametrize(
    ("claims", "partner"),
    [
        ({"client_id": "a-client", "sub": "a-client"}, "a"),
        ({"sub": "a-client"}, "a"),
        ({"client_id": "a-client"}, "a"),
        ({"client_id": "c-client", "sub": "c-client"}, "c"),
    ],
)
async def test_token_naming_one_client_maps_to_it(
    tmp_path: Path, claims: dict[str, Any], partner: str
) -> None:
    """Tokens whose claims name one client (RFC 9068: client credentials) still work,
    and get that partner's SETs, no other's."""
    async with node_b(tmp_path) as (node, server, pki):
        jtis = {name: await node.publish(name, {SESSION_REVOKED: {}}) for name in ("a", "c")}
        response = await pull(node, pki, server.token(node.url + "/pushpull", **claims))
        assert response.status_code == 200, response.text
        sets = response.json().get("sets", {})
        assert set(sets) == {jtis[partner]}
