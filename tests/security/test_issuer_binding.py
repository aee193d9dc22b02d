"""Issuer binding (SET-6, SSF-12): a partner speaks only for itself.

Node ``x`` has two partners, ``a`` and ``b``. Authenticated as ``a``, a plain HTTP
client sends a SET that is validly signed with ``b``'s key and carries ``b``'s
``iss``: it is refused with ``invalid_issuer`` on every binding, nothing is stored,
and ``b``'s own SETs are still accepted afterwards.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import orjson

from peer import Peer
from peer.config import InboundAuth, OutboundAuth, Partner, PeerConfig
from peer.publisher import Publisher
from peer.tokens.keys import load_private_jwks
from peer.tokens.sign import Signer
from tests.peers import SESSION_REVOKED, NodeFiles

from .helpers import LIMITS


def _files(folder: Path) -> dict[str, NodeFiles]:
    nodes = {name: NodeFiles(name, folder) for name in ("x", "a", "b")}
    for node in nodes.values():
        node.make_keys()
    return nodes


def _config(nodes: dict[str, NodeFiles]) -> PeerConfig:
    x = nodes["x"]
    partners = tuple(
        Partner(
            name=name,
            issuer=nodes[name].issuer,
            audience=nodes[name].issuer,
            jwks=x.folder / f"{name}.public.json",
            initiate=False,
            auth=OutboundAuth(bearer=f"env:SETPEER_TEST_TOKEN_{name.upper()}"),
            inbound=InboundAuth(
                bearer_sha256=hashlib.sha256(nodes[name].token_out.encode()).hexdigest()
            ),
        )
        for name in ("a", "b")
    )
    config = PeerConfig(
        issuer=x.issuer,
        listen="127.0.0.1:0",
        store=f"sqlite:///{x.folder / 'x.db'}",
        signing_keys=x.folder / "x.jwks.json",
        allow_insecure_loopback=True,
        limits=LIMITS,
        partners=partners,
        config_dir=x.folder,
    )
    config.validate()
    return config


def _mint(nodes: dict[str, NodeFiles], signer_name: str) -> tuple[str, str]:
    """A SET for ``x`` signed by ``signer_name`` with its own ``iss``."""
    signer = nodes[signer_name]
    publisher = Publisher(
        issuer=signer.issuer,
        signer=Signer(load_private_jwks(signer.folder / f"{signer_name}.jwks.json")),
    )
    to_x = Partner(name="x", issuer=nodes["x"].issuer, audience=nodes["x"].issuer)
    return publisher.mint(to_x, {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": "u"})


def _bearer(nodes: dict[str, NodeFiles], name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {nodes[name].token_out}"}


async def test_partner_cannot_deliver_another_partners_set(tmp_path: Path) -> None:
    """SET-6: b's valid SET sent on a's credentials: invalid_issuer, nothing stored."""
    nodes = _files(tmp_path)
    async with Peer(_config(nodes)) as x, httpx.AsyncClient(base_url=x.url) as client:
        jti, token = _mint(nodes, "b")
        # push-pull over HTTP: the SET is answered in setErrs, the request is fine.
        body = orjson.dumps({"sets": {jti: token}})
        reply = await client.post(
            "/pushpull",
            content=body,
            headers={**_bearer(nodes, "a"), "content-type": "application/json"},
        )
        assert reply.status_code == 200
        assert reply.json()["setErrs"][jti]["err"] == "invalid_issuer"
        # RFC 8935 push: 400 with the code.
        reply = await client.post(
            "/events",
            content=token,
            headers={**_bearer(nodes, "a"), "content-type": "application/secevent+jwt"},
        )
        assert (reply.status_code, reply.json()["err"]) == (400, "invalid_issuer")
        # Multi-push: in setErrs of a 202.
        reply = await client.post(
            "/multipush",
            content=body,
            headers={**_bearer(nodes, "a"), "content-type": "application/json"},
        )
        assert reply.status_code == 202 and reply.json()["setErrs"][jti]["err"] == "invalid_issuer"
        stats = x.stats()
        assert stats["a"]["received"] == 0 and stats["b"]["received"] == 0

        # b's own session is unaffected: the very same SET from b is accepted once.
        reply = await client.post(
            "/events",
            content=token,
            headers={**_bearer(nodes, "b"), "content-type": "application/secevent+jwt"},
        )
        assert reply.status_code == 202
        assert x.stats()["b"]["received"] == 1 and x.stats()["a"]["received"] == 0


async def test_partner_signing_with_its_own_key_but_anothers_iss(tmp_path: Path) -> None:
    """SET-6: a signs with its own key but claims b's iss: invalid_issuer."""
    nodes = _files(tmp_path)
    async with Peer(_config(nodes)) as x, httpx.AsyncClient(base_url=x.url) as client:
        signer = nodes["a"]
        publisher = Publisher(
            issuer=nodes["b"].issuer,  # the lie
            signer=Signer(load_private_jwks(signer.folder / "a.jwks.json")),
        )
        to_x = Partner(name="x", issuer=nodes["x"].issuer, audience=nodes["x"].issuer)
        _, token = publisher.mint(
            to_x, {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": "u"}
        )
        reply = await client.post(
            "/events",
            content=token,
            headers={**_bearer(nodes, "a"), "content-type": "application/secevent+jwt"},
        )
        assert (reply.status_code, reply.json()["err"]) == (400, "invalid_issuer")
        assert x.stats()["a"]["received"] == 0 and x.stats()["b"]["received"] == 0
