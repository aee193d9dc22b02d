"""peer.Client over the local interface of in-process nodes: publish, receive, done,
long polling, failures, stats, the facade's errors, the token on loopback TCP."""

from __future__ import annotations

import hashlib
import os
import stat
import time
from pathlib import Path

import anyio
import httpx
import pytest

from peer import (
    Backpressure,
    Client,
    DuplicateJti,
    Facade,
    NodeUnavailable,
    NotAuthorized,
    Peer,
    SETTooLarge,
    StoreError,
    UnknownPartner,
)
from peer.errors import PeerError, SETRejected
from tests.local.helpers import foreign_set, running_pair
from tests.peers import SESSION_REVOKED, NodeFiles
from tests.timing import MS, seconds

TOKEN = "app-token-for-tests"
DIGEST = hashlib.sha256(TOKEN.encode()).hexdigest()


async def test_publish_receive_done_long_poll_and_stats(tmp_path: Path) -> None:
    """Through b's Unix socket (mode 0600): b publishes, a's Client long-polls it in
    within milliseconds, done() means never again; stats and status agree."""
    async with running_pair(tmp_path) as (a, b):
        assert b.app_url == f"unix:{tmp_path / 'b.sock'}"
        mode = os.stat(tmp_path / "b.sock").st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        async with Client(str(a.app_url)) as on_a, Client(str(b.app_url)) as on_b:
            facade: Facade = on_a  # the Protocol, checked at run time too
            got = []
            published_at: list[float] = []

            async def publish_later() -> None:
                await anyio.sleep(200 * MS)  # the poll is waiting by then
                published_at.append(time.monotonic())
                await on_b.publish(
                    "a", {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": "u1"}, txn="t"
                )

            with anyio.fail_after(seconds(10)):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(publish_later)
                    async for rx in facade.receive():
                        got.append((rx, time.monotonic()))
                        break
            rx, arrived = got[0]
            latency = arrived - published_at[0]
            print(f"long poll: SET in {latency * 1000:.1f} ms after publish (b -> a -> Client)")
            assert latency < seconds(2)
            assert (rx.partner, rx.events) == ("b", (SESSION_REVOKED,))
            assert rx.subject == {"format": "opaque", "id": "u1"} and rx.claims["txn"] == "t"
            await rx.done()
            await rx.done()  # idempotent
            async with httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(uds=str(tmp_path / "a.sock"))
            ) as raw:
                answer = await raw.get("http://x/v1/received", params={"after": 0})
            assert answer.json() == {"received": []}
            await on_b.flush(timeout=seconds(10))
            stats = await on_b.stats()
            assert stats["a"]["acked"] == 1 and stats["a"]["session"] != "down"
            assert (await on_a.stats())["b"]["received"] == 1
            status = await on_b.status()
            assert status["a"]["pending"] == 0 and "next_retry" in status["a"]
            assert await on_b.failures() == [] and await b.failures() == b.failures() == []
            assert (await b.stats())["a"]["acked"] == 1  # Peer's: awaitable and a dict


async def test_facade_errors_come_back_as_the_same_classes(tmp_path: Path) -> None:
    limits = {"max_pending": 2, "max_set_bytes": 2000}
    async with running_pair(tmp_path, limits=limits) as (a, b):
        async with Client(str(b.app_url)) as node:
            with pytest.raises(UnknownPartner):
                await node.publish("nobody", {SESSION_REVOKED: {}})
            await node.publish("a", {SESSION_REVOKED: {}}, jti="once")
            with pytest.raises(DuplicateJti):
                await node.publish("a", {SESSION_REVOKED: {}}, jti="once")
            with pytest.raises(SETTooLarge) as too_large:
                await node.publish("a", {SESSION_REVOKED: {"reason": "x" * 1900}})
            assert (too_large.value.partner, too_large.value.limit) == ("a", 2000)
            assert too_large.value.size > 2000
            with pytest.raises(ValueError):
                await node.publish("a", {})  # the node's own check: no event
            with pytest.raises(SETRejected):
                await node.forward("a", "not.a.jws")
        # Backpressure: a is away, b's outbox fills to max_pending.
        await a.aclose()
        async with Client(str(b.app_url)) as node:
            with anyio.fail_after(seconds(10)):
                while True:
                    try:
                        await node.publish("a", {SESSION_REVOKED: {}})
                    except Backpressure as exc:
                        assert (exc.partner, exc.limit) == ("a", 2)
                        break
            assert b._store is not None
            await b._store.aclose()  # the real store, closed under the node
            with pytest.raises(StoreError):
                await node.status()


async def test_tcp_needs_the_token(tmp_path: Path) -> None:
    """Loopback TCP: no token or a wrong one is 401 (NotAuthorized); the right one works."""
    async with running_pair(tmp_path, b_app="127.0.0.1:0", b_token_sha256=DIGEST) as (a, b):
        assert b.app_url is not None and b.app_url.startswith("http://127.0.0.1:")
        assert not (tmp_path / "b.sock").exists()
        for token in (None, "wrong", TOKEN[:-1]):
            async with Client(b.app_url, token=token) as node:
                with pytest.raises(NotAuthorized):
                    await node.publish("a", {SESSION_REVOKED: {}})
        async with httpx.AsyncClient() as raw:
            answer = await raw.get(b.app_url + "/v1/status", headers={"authorization": "Basic x"})
        assert answer.status_code == 401 and answer.json()["error"] == "unauthorized"
        async with Client(b.app_url, token=TOKEN) as node:
            assert await node.publish("a", {SESSION_REVOKED: {}}, jti="by-tcp") == "by-tcp"


async def test_client_without_a_node(tmp_path: Path) -> None:
    async with Client(f"unix:{tmp_path / 'none.sock'}") as node:
        with pytest.raises(NodeUnavailable):
            await node.publish("a", {SESSION_REVOKED: {}})
    with pytest.raises(ValueError):
        Client("ftp://x")
    with pytest.raises(PeerError):
        await Client("http://127.0.0.1:9").publish("a", {})  # not opened


async def test_received_is_refused_with_a_webhook(tmp_path: Path) -> None:
    files = NodeFiles("a", tmp_path)
    files.make_keys()
    other = NodeFiles("b", tmp_path)
    other.make_keys()
    from tests.peers import write_config

    config = write_config(files, other)
    text = config.config_dir / "a.toml"
    body = text.read_text().replace(
        "[peer.app]\n", '[peer.app]\ndeliver = "http://127.0.0.1:9/hook"\n'
    )
    text.write_text(body)
    from peer import load_config

    async with Peer(load_config(text)) as node, Client(str(node.app_url)) as client:
        with pytest.raises(PeerError, match="webhook"):
            async for _ in client.receive():
                break


async def test_failures_carry_the_partners_description(tmp_path: Path) -> None:
    async with running_pair(tmp_path) as (a, b):
        b_files = NodeFiles("b", tmp_path)
        token = foreign_set(b_files, "wrong-aud", aud="https://elsewhere.example")
        async with Client(str(b.app_url)) as node:
            assert await node.forward("a", token) == "wrong-aud"
            with anyio.fail_after(seconds(10)):
                while not (failures := await node.failures()):  # noqa: ASYNC110
                    await anyio.sleep(20 * MS)
            [failure] = failures
            assert (failure.partner, failure.jti, failure.direction) == (
                "a",
                "wrong-aud",
                "outbound",
            )
            assert failure.err == "invalid_audience" and "aud" in failure.description
            assert failure == b.failures()[0]
            assert await node.failures(since=time.time() + 3600) == []
