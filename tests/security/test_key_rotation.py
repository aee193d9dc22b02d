"""Keys from ``jwks_uri`` over HTTPS, and key rotation on both sides under load.

Two nodes with trustme certificates fetch each other's public keys from
``https://.../.well-known/jwks.json``. Between rounds of traffic each side in turn
rotates its signing key (a new first key in ``signing_keys``, the old one kept
published) while SETs signed with the old key are still queued: every SET arrives
exactly once, none is refused, none fails.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.abc
import pytest

from peer import Peer
from peer.config import Partner, PeerConfig
from peer.tokens.keys import generate_private_jwks, load_private_jwks
from tests.peers import SESSION_REVOKED, NodeFiles

from .helpers import LIMITS, MS, Pki, bearer_pair, seconds


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _config(me: NodeFiles, other: NodeFiles, ports: dict[str, int], pki: Pki) -> PeerConfig:
    outbound, inbound = bearer_pair(me, other)
    there = f"127.0.0.1:{ports[other.name]}"
    partner = Partner(
        name=other.name,
        issuer=other.issuer,
        audience=other.issuer,
        jwks_uri=f"https://{there}/.well-known/jwks.json",
        ca=pki.ca_path,
        endpoint=f"wss://{there}/pushpull" if me.name == "a" else None,
        initiate=me.name == "a",
        auth=outbound,
        inbound=inbound,
    )
    config = PeerConfig(
        issuer=me.issuer,
        listen=f"127.0.0.1:{ports[me.name]}",
        store=f"sqlite:///{me.folder / f'{me.name}.db'}",
        signing_keys=me.folder / f"{me.name}.jwks.json",
        tls=pki.tls(me.name),
        limits=dataclasses.replace(LIMITS, ack_timeout=2.0),
        partners=(partner,),
        config_dir=me.folder,
    )
    config.validate()
    return config


def _rotate(node: NodeFiles) -> str:
    """A new first signing key; the old ones stay published. Returns the new kid."""
    path = node.folder / f"{node.name}.jwks.json"
    old = load_private_jwks(path)
    new = generate_private_jwks("ES256")
    path.write_text(json.dumps({"keys": new["keys"] + old["keys"]}))
    kid: str = new["keys"][0]["kid"]
    return kid


class _Runner:
    """One node in its own task, so either side can stop and start while the other runs."""

    def __init__(self, name: str, config: Callable[[], PeerConfig], got: list[str]) -> None:
        self.name = name
        self.config = config
        self.got = got
        self.node: Peer | None = None
        self._stop = anyio.Event()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        self._stop = anyio.Event()
        async with Peer(self.config()) as node, anyio.create_task_group() as tg:
            self.node = node
            tg.start_soon(self._consume, node)
            task_status.started()
            await self._stop.wait()
            tg.cancel_scope.cancel()
        self.node = None

    async def _consume(self, node: Peer) -> None:
        async for rx in node.receive():
            self.got.append(rx.jti)
            await rx.done()

    async def stop(self) -> None:
        self._stop.set()
        while self.node is not None:  # noqa: ASYNC110
            await anyio.sleep(10 * MS)


@pytest.mark.slow
async def test_rotation_on_both_sides_under_load_loses_nothing(tmp_path: Path) -> None:
    """SET-6/7: each side rotates while the other keeps running with cached keys:
    a new kid makes it refetch the JWK Set once; SETs signed with the old key (still
    queued) verify with the old key, still published. Nothing lost, refused or failed."""
    pki = Pki.create(tmp_path)
    a, b = NodeFiles("a", tmp_path), NodeFiles("b", tmp_path)
    a.make_keys()
    b.make_keys()
    ports = {"a": _port(), "b": _port()}
    sent: dict[str, list[str]] = {"a": [], "b": []}
    got: dict[str, list[str]] = {"a": [], "b": []}
    runners = {
        "a": _Runner("a", lambda: _config(a, b, ports, pki), got["a"]),
        "b": _Runner("b", lambda: _config(b, a, ports, pki), got["b"]),
    }
    per_phase = 120

    async def produce(me: str, to: str) -> None:
        for _ in range(per_phase):
            node = runners[me].node
            assert node is not None
            sent[me].append(await node.publish(to, {SESSION_REVOKED: {}}))
            await anyio.sleep(2 * MS)

    async def traffic() -> None:
        async with anyio.create_task_group() as producers:
            producers.start_soon(produce, "a", "b")
            producers.start_soon(produce, "b", "a")

    def fetches(me: str) -> int:
        node = runners[me].node
        assert node is not None
        remote = node.links["b" if me == "a" else "a"].remote_keys
        assert remote is not None
        return remote.fetches

    async with anyio.create_task_group() as tg:
        await tg.start(runners["b"].run)
        await tg.start(runners["a"].run)
        await traffic()

        # a rotates; b keeps running with a's old keys cached.
        await runners["a"].stop()
        _rotate(a)
        before = fetches("b")
        await tg.start(runners["a"].run)
        await traffic()
        with anyio.fail_after(30_000 * MS):
            while fetches("b") == before:  # noqa: ASYNC110 - the refetch the new kid asks for
                await anyio.sleep(10 * MS)

        # b rotates; a keeps running with b's old keys cached.
        await runners["b"].stop()
        _rotate(b)
        await tg.start(runners["b"].run)
        before = fetches("a")
        await traffic()

        node_a, node_b = runners["a"].node, runners["b"].node
        assert node_a is not None and node_b is not None
        with anyio.fail_after(30_000 * MS):
            await node_a.flush(timeout=seconds(30))
            await node_b.flush(timeout=seconds(30))
            while len(got["a"]) < len(sent["b"]) or len(got["b"]) < len(sent["a"]):  # noqa: ASYNC110
                await anyio.sleep(20 * MS)
        assert fetches("a") > before
        assert node_a.failures() == [] and node_b.failures() == []
        await runners["a"].stop()
        await runners["b"].stop()

    assert sorted(got["b"]) == sorted(sent["a"])  # exactly once, none refused
    assert sorted(got["a"]) == sorted(sent["b"])
    assert len(sent["a"]) == len(sent["b"]) == 3 * per_phase


@pytest.mark.slow
async def test_unknown_kid_refetches_once_then_invalid_key(tmp_path: Path) -> None:
    """A kid nobody published: one shared refetch (rate-limited), then invalid_key."""
    import httpx
    import orjson

    from peer.publisher import Publisher
    from peer.tokens.sign import Signer

    pki = Pki.create(tmp_path)
    a, b = NodeFiles("a", tmp_path), NodeFiles("b", tmp_path)
    a.make_keys()
    b.make_keys()
    ports = {"a": _port(), "b": _port()}
    rogue = generate_private_jwks("ES256")  # a's name, a key a never published
    to_b = Partner(name="b", issuer=b.issuer, audience=b.issuer)
    minted = [
        Publisher(issuer=a.issuer, signer=Signer(rogue)).mint(
            to_b, {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": f"u{i}"}
        )
        for i in range(40)
    ]
    async with (
        # a first: b's first fetch of a's keys finds them (else b retries 2 s later).
        Peer(_config(a, b, ports, pki)),
        Peer(_config(b, a, ports, pki)) as node_b,
        httpx.AsyncClient(
            base_url=node_b.url, verify=ssl.create_default_context(cafile=str(pki.ca_path))
        ) as client,
    ):
        remote = node_b.links["a"].remote_keys
        assert remote is not None
        with anyio.fail_after(10_000 * MS):
            while not remote.loaded:  # noqa: ASYNC110
                await anyio.sleep(10 * MS)
        before = remote.fetches
        answers: list[dict[str, object]] = []

        async def post(chunk: list[tuple[str, str]]) -> None:
            reply = await client.post(
                "/pushpull",
                content=orjson.dumps({"sets": dict(chunk)}),
                headers={
                    "authorization": f"Bearer {a.token_out}",
                    "content-type": "application/json",
                },
                timeout=seconds(30),
            )
            assert reply.status_code == 200
            answers.append(reply.json())

        async with anyio.create_task_group() as tg:
            for i in range(0, 40, 8):  # five requests at once (under max_sessions), eight SETs each
                tg.start_soon(post, minted[i : i + 8])
        errs = {jti: e["err"] for answer in answers for jti, e in answer["setErrs"].items()}  # type: ignore[attr-defined]
        assert errs == {jti: "invalid_key" for jti, _ in minted}
        assert 1 <= remote.fetches - before <= 2  # shared, not one per SET or request
        assert node_b.stats()["a"]["received"] == 0
