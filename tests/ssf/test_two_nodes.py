"""Two setpeer nodes, one the SSF transmitter of the other (SSF 8): the receiver
discovers (SSF-20..24), creates its stream with push, then poll, then push-pull; adds a
subject (SSF-29); asks for verification and sees the verification SET arrive with its
state (SSF-34, SSF-35); pauses and resumes without losing a SET; disables and nothing
flows; deletes. Both nodes are restarted in between and nothing changes."""

from __future__ import annotations

import hashlib
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from peer import Peer, StreamDisabled
from peer.config import load_config
from peer.protocol.ssf_streams import VERIFICATION_EVENT
from tests.peers import SESSION_REVOKED, NodeFiles
from tests.timing import seconds

FAST = """
[partners.limits]
retry_initial = 0.05
retry_max = 0.3
reconnect_initial = 0.05
reconnect_max = 0.3
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Pair:
    """``t`` (the transmitter; partner ``r`` has ``ssf = "receiver"``) and ``r`` (the
    receiver; partner ``t`` has ``ssf = "transmitter"``), each on a fixed loopback port
    so that issuers are the URLs discovery reaches and survive restarts."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = {"t": _free_port(), "r": _free_port()}
        self.token = secrets.token_urlsafe(24)  # r's credential at t
        for name in "tr":
            NodeFiles(name, folder).make_keys()
        (folder / "r.token").write_text(self.token)
        digest = hashlib.sha256(self.token.encode()).hexdigest()
        self.write(
            "t",
            f"""
[[partners]]
name = "r"
issuer = "{self.issuer("r")}"
audience = "{self.issuer("r")}"
jwks = "r.public.json"
ssf = "receiver"
initiate = false
{FAST}
[partners.inbound]
bearer_sha256 = "{digest}"
""",
        )
        self.write(
            "r",
            f"""
[[partners]]
name = "t"
issuer = "{self.issuer("t")}"
audience = "{self.issuer("t")}"
ssf = "transmitter"
initiate = false
{FAST}
[partners.auth]
bearer = "file:r.token"
""",
        )

    def issuer(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def write(self, name: str, partner: str) -> None:
        (self.folder / f"{name}.toml").write_text(
            f"""
[peer]
issuer = "{self.issuer(name)}"
listen = "127.0.0.1:{self.ports[name]}"
store = "sqlite:///{name}.db"
signing_keys = "{name}.jwks.json"
allow_insecure_loopback = true
[peer.app]
listen = "unix:{name}.sock"
{partner}"""
        )

    @asynccontextmanager
    async def nodes(self) -> AsyncIterator[tuple[Peer, Peer]]:
        async with Peer(load_config(self.folder / "t.toml")) as t:
            async with Peer(load_config(self.folder / "r.toml")) as r:
                yield t, r


async def _next(r: Peer, timeout: float = 10) -> tuple[str, dict[str, object]]:
    """The next SET r's application gets (marked done): its jti and claims."""
    with anyio.fail_after(seconds(timeout)):
        async for rx in r.receive():
            await rx.done()
            return rx.jti, dict(rx.claims)
    raise AssertionError("receive() ended")


async def _publish(t: Peer, user: str) -> str:
    return await t.publish(
        "r", {SESSION_REVOKED: {}}, sub_id={"format": "email", "email": f"{user}@x.example"}
    )


async def _nothing_arrives(r: Peer, wait: float = 0.5) -> None:
    with anyio.move_on_after(wait):
        async for rx in r.receive():
            raise AssertionError(f"{rx.jti} arrived while nothing should flow")


@pytest.mark.slow
@pytest.mark.parametrize("delivery", ["push", "poll", "pushpull"])
async def test_receiver_manages_its_stream_at_the_transmitter(
    tmp_path: Path, delivery: str
) -> None:
    pair = Pair(tmp_path)
    async with pair.nodes() as (t, r):
        stream = r.streams["t"]
        metadata = await stream.discover()
        assert metadata.issuer == pair.issuer("t")
        created = await stream.create(delivery=delivery)
        sent = await _publish(t, "alice")
        assert (await _next(r))[0] == sent
        await stream.add_subject({"format": "email", "email": "alice@x.example"})
        await stream.verify()
        jti, claims = await _next(r)
        assert VERIFICATION_EVENT in claims["events"]  # type: ignore[operator]
        row = await stream.row()
        assert row is not None and row.verification is not None
        assert row.verification.get("state") == "verified"
    async with pair.nodes() as (t, r):  # both restarted: the stream is the same
        stream = r.streams["t"]
        row = await stream.row()
        assert row is not None and row.stream_id == created.stream_id
        await stream.set_status("paused")
        held = [await _publish(t, "alice") for _ in range(3)]
        await _nothing_arrives(r)
        await stream.set_status("enabled")
        got = [(await _next(r))[0] for _ in held]
        assert got == held  # held while paused, then in order
        await stream.set_status("disabled")
        with pytest.raises(StreamDisabled):
            await _publish(t, "alice")
        await _nothing_arrives(r)
        assert await stream.delete()
        assert await stream.row() is None
