"""Build real node configurations on loopback for tests: keys, tokens, TOML files."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from peer import Peer
from peer.config import PeerConfig, load_config
from peer.tokens.keys import generate_private_jwks, public_jwks
from tests.timing import seconds

__all__ = ["NodeFiles", "SESSION_REVOKED", "exchange_both_ways", "make_pair", "write_config"]

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


@dataclass
class NodeFiles:
    """One node's folder: its keys, the tokens it uses, and how to write its config."""

    name: str
    folder: Path
    token_out: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def issuer(self) -> str:
        return f"https://{self.name}.test.example"

    def make_keys(self, alg: str = "ES256") -> None:
        private = generate_private_jwks(alg)
        (self.folder / f"{self.name}.jwks.json").write_text(json.dumps(private))
        (self.folder / f"{self.name}.public.json").write_text(json.dumps(public_jwks(private)))
        os.environ[f"SETPEER_TEST_TOKEN_{self.name.upper()}"] = self.token_out


def write_config(
    me: NodeFiles,
    other: NodeFiles,
    *,
    endpoint: str | None = None,
    transport: str = "websocket",
    store: str | None = None,
    limits: dict[str, float] | None = None,
    extra_partner: str = "",
    listen: str = "127.0.0.1:0",
    app: str | None = None,
    app_token_sha256: str | None = None,
    inbound: bool = True,
) -> PeerConfig:
    """Write ``me``'s TOML config with ``other`` as its one partner and load it.

    The local interface listens on ``app``, by default ``unix:<name>.sock``: the two
    nodes of a pair share one folder, and each needs a socket of its own. Without
    ``inbound`` the partner has no ``[partners.inbound]`` (it never connects to us).
    """
    app_line = f'listen = "{app or f"unix:{me.name}.sock"}"\n'
    if app_token_sha256 is not None:
        app_line += f'token_sha256 = "{app_token_sha256}"\n'

    dial = f'endpoint = "{endpoint}"\ninitiate = true\n' if endpoint else "initiate = false\n"
    limit_lines = "".join(f"{k} = {v}\n" for k, v in (limits or {}).items())
    text = f"""
[peer]
issuer = "{me.issuer}"
listen = "{listen}"
store = "{store or f"sqlite:///{me.name}.db"}"
signing_keys = "{me.name}.jwks.json"
allow_insecure_loopback = true

[peer.app]
{app_line}
[peer.limits]
{limit_lines}
[[partners]]
name = "{other.name}"
issuer = "{other.issuer}"
audience = "{other.issuer}"
jwks = "{other.name}.public.json"
{dial}transport = "{transport}"
{extra_partner}
[partners.auth]
bearer = "env:SETPEER_TEST_TOKEN_{me.name.upper()}"

"""
    if inbound:
        text += f"""
[partners.inbound]
bearer_sha256 = "{hashlib.sha256(other.token_out.encode()).hexdigest()}"
"""
    path = me.folder / f"{me.name}.toml"
    path.write_text(text)
    return load_config(path)


def make_pair(folder: Path) -> tuple[NodeFiles, NodeFiles]:
    """Two nodes, ``a`` (dials) and ``b`` (listens), sharing ``folder``."""
    a, b = NodeFiles("a", folder), NodeFiles("b", folder)
    a.make_keys()
    b.make_keys()
    return a, b


async def exchange_both_ways(a: Peer, b: Peer, count: int, *, timeout: float | None = None) -> None:
    """``count`` SETs each way at once between two running nodes (within ``timeout``
    seconds, 60 scaled by default), then check the outcome: each SET handed to the
    other application exactly once, all acked, nothing pending, in flight or failed
    (PP-22, PUSH-12, MP-7, POLL-7)."""
    got: dict[str, list[str]] = {"a": [], "b": []}
    sent: dict[str, list[str]] = {"a": [], "b": []}
    all_in = anyio.Event()

    async def consume(node: Peer, name: str) -> None:
        async for rx in node.receive():
            got[name].append(rx.jti)
            assert rx.claims["events"][SESSION_REVOKED] == {}
            await rx.done()
            if len(got["a"]) >= count and len(got["b"]) >= count:
                all_in.set()

    async def produce(node: Peer, to: str, me: str, indexes: Iterator[int]) -> None:
        for i in indexes:
            sub_id = {"format": "opaque", "id": f"s{i}"}
            sent[me].append(await node.publish(to, {SESSION_REVOKED: {}}, sub_id=sub_id))

    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, a, "a")
        tg.start_soon(consume, b, "b")
        async with anyio.create_task_group() as producers:
            # Eight publishing tasks per node, as an application's request handlers:
            # their commits are grouped (one publish waits for its own commit).
            a_next, b_next = iter(range(count)), iter(range(count))
            for _ in range(8):
                producers.start_soon(produce, a, "b", "a", a_next)
                producers.start_soon(produce, b, "a", "b", b_next)
        limit = seconds(60) if timeout is None else timeout
        with anyio.fail_after(limit):
            await a.flush(timeout=limit)
            await b.flush(timeout=limit)
            await all_in.wait()
        tg.cancel_scope.cancel()

    assert sorted(got["b"]) == sorted(sent["a"])
    assert sorted(got["a"]) == sorted(sent["b"])
    for node, other in ((a, "b"), (b, "a")):
        stats = node.stats()[other]
        assert (stats["acked"], stats["received"]) == (count, count)
        assert (stats["pending"], stats["inflight"], stats["failed"]) == (0, 0, 0)
        assert node.failures() == []
