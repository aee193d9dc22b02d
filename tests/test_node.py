"""Two real nodes on loopback: push-pull over WebSocket and HTTP, both ways at once.

Real uvicorn servers, real websockets/httpx clients, real SQLite files.
"""

from __future__ import annotations

import random
from pathlib import Path

import anyio
import pytest

from peer import Peer, PeerError, UnknownPartner
from peer.errors import DuplicateJti, StoreError
from tests.peers import SESSION_REVOKED, exchange_both_ways, make_pair, write_config
from tests.store.conftest import _pg_schemas, pg_schema_url  # noqa: F401 (fixtures)
from tests.timing import MS, seconds


async def _exchange(tmp_path: Path, transport: str, count: int) -> None:
    a_files, b_files = make_pair(tmp_path)
    b_config = write_config(b_files, a_files)
    async with Peer(b_config) as b:
        endpoint = b.url + "/pushpull"
        if transport == "websocket":
            endpoint = endpoint.replace("http://", "ws://", 1)
        a_config = write_config(a_files, b_files, endpoint=endpoint, transport=transport)
        async with Peer(a_config) as a:
            await exchange_both_ways(a, b, count, timeout=60_000 * MS)
            assert a.stats()["b"]["session"] == transport


@pytest.mark.slow
@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_two_peers_exchange_2000_sets_both_ways(tmp_path: Path, transport: str) -> None:
    """PP-15/PP-7/PP-22/PP-23: 2,000 SETs each way at once; each delivered once and acked."""
    await _exchange(tmp_path, transport, 2000)


async def test_publish_to_unknown_partner(tmp_path: Path) -> None:
    """A caller's mistake raises at once: UnknownPartner is a PeerError and a LookupError."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        with pytest.raises(UnknownPartner):
            await b.publish("nobody", {SESSION_REVOKED: {}})
        with pytest.raises(LookupError):
            await b.publish("nobody", {SESSION_REVOKED: {}})


async def test_flush_times_out_when_partner_is_down(tmp_path: Path) -> None:
    """flush() raises PeerError naming what is still pending."""
    a_files, b_files = make_pair(tmp_path)
    config = write_config(
        a_files,
        b_files,
        endpoint="ws://127.0.0.1:9/pushpull",
        limits={"reconnect_initial": 0.05, "reconnect_max": 0.2},
    )
    async with Peer(config) as a:
        await a.publish("b", {SESSION_REVOKED: {}})
        with pytest.raises(PeerError, match="flush timed out"):
            await a.flush(timeout=300 * MS)
        assert a.stats()["b"]["pending"] + a.stats()["b"]["inflight"] == 1


@pytest.mark.slow
async def test_publishes_during_an_outbox_read_are_not_stranded(tmp_path: Path) -> None:
    """PP-15: a SET committed while the Link reads its outbox is still sent.

    Each round publishes twice a few hundred microseconds apart, so the second
    commit often lands while the Link is loading the first, and then flushes: the
    second SET must not wait for a later publish to be noticed (none comes).
    """
    rng = random.Random(7)
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        endpoint = b.url.replace("http://", "ws://", 1) + "/pushpull"
        async with Peer(write_config(a_files, b_files, endpoint=endpoint)) as a:
            rounds = 150
            for _ in range(rounds):

                async def later() -> None:
                    await anyio.sleep(rng.uniform(0, 2 * MS))
                    await a.publish("b", {SESSION_REVOKED: {}})

                async with anyio.create_task_group() as tg:
                    tg.start_soon(a.publish, "b", {SESSION_REVOKED: {}})
                    tg.start_soon(later)
                with anyio.fail_after(10_000 * MS):
                    await a.flush(timeout=seconds(30))
            assert a.stats()["b"]["acked"] == 2 * rounds


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
async def test_publish_retried_with_its_jti_is_sent_once(
    tmp_path: Path, store: str, request: pytest.FixtureRequest
) -> None:
    """PP-25/MP-9: a jti is never reused, so a publish retried with the same ``jti=``
    (after a crash or a StoreError that left the caller unsure whether it committed)
    is refused with DuplicateJti and the SET reaches the partner once; so is a
    forward of the same SET. The refusal leaves the node's counting whole: later
    publishes are sent and flush() returns."""
    url = None if store == "sqlite" else str(request.getfixturevalue("pg_schema_url"))
    a_files, b_files = make_pair(tmp_path)
    received: list[str] = []
    tokens: dict[str, str] = {}
    async with Peer(write_config(b_files, a_files)) as b:
        endpoint = b.url.replace("http://", "ws://", 1) + "/pushpull"
        async with Peer(write_config(a_files, b_files, endpoint=endpoint, store=url)) as a:

            async def consume() -> None:
                async for rx in b.receive():
                    received.append(rx.jti)
                    tokens[rx.jti] = rx.token
                    await rx.done()

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                assert await a.publish("b", {SESSION_REVOKED: {}}, jti="retry-1") == "retry-1"
                for _ in range(3):  # before and after it is acked
                    with pytest.raises(DuplicateJti, match="retry-1") as refused:
                        await a.publish(
                            "b", {SESSION_REVOKED: {"reason_admin": {"en": "again"}}}, jti="retry-1"
                        )
                    assert isinstance(refused.value, StoreError)
                    with anyio.fail_after(10_000 * MS):
                        await a.flush(timeout=seconds(30))
                others = [await a.publish("b", {SESSION_REVOKED: {}}) for _ in range(20)]
                with anyio.fail_after(10_000 * MS):
                    await a.flush(timeout=seconds(30))
                    while len(received) < 21:  # noqa: ASYNC110
                        await anyio.sleep(10 * MS)
                with pytest.raises(DuplicateJti, match="retry-1"):
                    await a.forward("b", tokens["retry-1"])  # the very SET it sent
                await anyio.sleep(200 * MS)  # a second copy would arrive now
                tg.cancel_scope.cancel()
            assert a.stats()["b"]["acked"] == 21
            assert a.stats()["b"]["pending"] == a.stats()["b"]["inflight"] == 0
    assert sorted(received) == sorted(["retry-1", *others])
