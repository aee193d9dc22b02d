"""Two Links joined by an in-memory WebSocket: the whole push-pull session, no sockets.

Like h11's tests, which drive a pair of connections against each other, the pair runs
the real WebSocket binding (``run_ws_session``) of each side over a :class:`MemoryChannel`
and the memory store, so a test takes milliseconds and can watch, hold back or forge
every frame on the way.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from peer.config import Limits, Partner, PeerConfig
from peer.errors import SessionClosed
from peer.link import Link, build_link
from peer.link.factory import restore
from peer.publisher import Publisher
from peer.signal import Signal
from peer.store import open_store
from peer.store.base import Store
from peer.tokens.keys import generate_private_jwks, load_private_jwks, public_jwks
from peer.tokens.sign import Signer
from peer.transports.websocket import run_ws_session

__all__ = ["MemoryChannel", "Side", "channel_pair", "link_pair", "session"]

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


class MemoryChannel:
    """One end of an in-memory WebSocket; ``sent`` keeps every message it wrote.

    ``tap``, if set, sees each outgoing message and returns what to deliver instead
    (None drops it): a test forges, holds back or corrupts frames through it.
    """

    def __init__(
        self, out: MemoryObjectSendStream[str | bytes], into: MemoryObjectReceiveStream[str | bytes]
    ) -> None:
        self._out = out
        self._in = into
        self.sent: list[str] = []
        self.closed_with: tuple[int, str] | None = None
        self.peer: MemoryChannel | None = None
        self.tap: Callable[[str], str | bytes | None] | None = None

    async def send(self, data: bytes) -> None:
        if self.closed_with is not None:
            raise SessionClosed(*self.closed_with)
        text = data.decode()
        self.sent.append(text)
        message = text if self.tap is None else self.tap(text)
        if message is None:
            return
        try:
            await self._out.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise SessionClosed(1006, "connection lost") from None

    async def recv(self) -> str | bytes:
        try:
            return await self._in.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            peer = self.peer.closed_with if self.peer is not None else None
            raise SessionClosed(*(peer or (1006, "connection lost"))) from None

    async def close(self, code: int, reason: str) -> None:
        if self.closed_with is None:
            self.closed_with = (code, reason)
        await self._out.aclose()
        await self._in.aclose()

    def discard(self) -> None:
        """Close both streams of this end (the test is over)."""
        self._out.close()
        self._in.close()

    async def inject(self, message: str | bytes) -> None:
        """Deliver ``message`` to the other end as if this end had written it."""
        await self._out.send(message)


def channel_pair() -> tuple[MemoryChannel, MemoryChannel]:
    """Two connected ends: what one sends, the other receives."""
    a_out, b_in = anyio.create_memory_object_stream[str | bytes](64)
    b_out, a_in = anyio.create_memory_object_stream[str | bytes](64)
    a, b = MemoryChannel(a_out, a_in), MemoryChannel(b_out, b_in)
    a.peer, b.peer = b, a
    return a, b


@dataclass
class Side:
    """One node's Link to the other, with its store and a way to publish."""

    link: Link
    store: Store
    publisher: Publisher
    inbox: Signal
    progress: Signal
    received: list[str] = field(default_factory=list)

    async def publish(self, count: int = 1, **claims: Any) -> list[str]:
        """Sign ``count`` SETs for the partner and commit them to the outbox."""
        jtis = []
        for _ in range(count):
            jti, token = self.publisher.mint(
                self.link.partner, {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": "u"}
            )
            self.link.check_room()
            await self.link.enqueue(jti, token, timed=True)
            jtis.append(jti)
        return jtis

    async def inbox_jtis(self) -> list[str]:
        """The jtis in this side's inbox, in order."""
        return [row.jti for row in await self.store.fetch_inbox(after_seq=0, limit=100_000)]


def _files(folder: Path, name: str) -> tuple[Path, Path]:
    private = generate_private_jwks("ES256")
    keys = folder / f"{name}.jwks.json"
    keys.write_text(json.dumps(private))
    public = folder / f"{name}.public.json"
    public.write_text(json.dumps(public_jwks(private)))
    return keys, public


@asynccontextmanager
async def link_pair(folder: Path, **limits: Any) -> AsyncIterator[tuple[Side, Side]]:
    """Nodes ``a`` and ``b`` on memory stores, each with its Link to the other running."""
    keys = {name: _files(folder, name) for name in ("a", "b")}
    sides: list[Side] = []
    async with anyio.create_task_group() as tg:
        for me, other in (("a", "b"), ("b", "a")):
            sides.append(await _side(tg, folder, me, other, keys, Limits(**limits)))
        try:
            yield sides[0], sides[1]
        finally:
            tg.cancel_scope.cancel()
    for side in sides:
        await side.store.aclose()


async def _side(
    tg: TaskGroup,
    folder: Path,
    me: str,
    other: str,
    keys: dict[str, tuple[Path, Path]],
    limits: Limits,
) -> Side:
    partner = Partner(
        name=other,
        issuer=f"https://{other}.test.example",
        audience=f"https://{other}.test.example",
        jwks=keys[other][1],
    )
    config = PeerConfig(
        issuer=f"https://{me}.test.example",
        signing_keys=keys[me][0],
        store="memory://",
        limits=limits,
        partners=(partner,),
        config_dir=folder,
    )
    store = await open_store("memory://")
    inbox, progress = Signal(), Signal()
    link = build_link(
        config.partners[0], config=config, store=store, owner=me, inbox=inbox, progress=progress
    )
    await restore(link)
    tg.start_soon(link.run)
    signer = Signer(load_private_jwks(config.signing_keys_path))
    return Side(link, store, Publisher(issuer=config.issuer, signer=signer), inbox, progress)


@asynccontextmanager
async def session(a: Side, b: Side) -> AsyncIterator[tuple[MemoryChannel, MemoryChannel]]:
    """One WebSocket session between the two sides, for the ``async with`` block."""
    end_a, end_b = channel_pair()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_ws_session, a.link, end_a)
        tg.start_soon(run_ws_session, b.link, end_b)
        try:
            yield end_a, end_b
        finally:
            tg.cancel_scope.cancel()
    end_a.discard()
    end_b.discard()
