"""Large SETs between real nodes: frames bounded in bytes, oversized SETs refused.

A Communication Object is filled up to the partner's frame size (our
``max_frame_bytes`` for it), not only up to a count: 100 SETs of 20 KB in one
WebSocket message is 2 MB, which the partner closes with 1009, and the same frame
sent again after the reconnect is refused again — every SET behind it would wait
forever (MP-22: a recipient's limits are count and bytes). A SET over the partner's
``max_set_bytes`` is refused by ``publish``/``forward`` before it is stored.
"""

from __future__ import annotations

import dataclasses
import socket
from pathlib import Path

import anyio
import pytest

from peer import Peer
from peer.errors import SETTooLarge
from peer.store import open_store
from peer.store.base import OutboundNew
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.timing import MS, seconds

LIMITS = {"reconnect_initial": 0.05, "reconnect_max": 0.2}
BIG = {SESSION_REVOKED: {"reason_admin": {"en": "x" * 15_000}}}  # a ~20 KB SET


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("transport", ["websocket", "http"])
async def test_a_backlog_of_large_sets_goes_in_frames_the_partner_takes(
    tmp_path: Path, transport: str
) -> None:
    """PP-9/MP-22: 100 SETs of ~20 KB queued while the partner is down (2 MB, twice
    its 1 MiB frame limit) all arrive once it is up, none refused, none failed."""
    a_files, b_files = make_pair(tmp_path)
    port = _free_port()
    scheme = "ws" if transport == "websocket" else "http"
    endpoint = f"{scheme}://127.0.0.1:{port}/pushpull"
    a_config = write_config(a_files, b_files, endpoint=endpoint, transport=transport, limits=LIMITS)
    b_config = write_config(b_files, a_files, limits=LIMITS, listen=f"127.0.0.1:{port}")
    received: list[str] = []
    async with Peer(a_config) as a:
        async with anyio.create_task_group() as publishers:

            async def publish(count: int) -> None:
                for _ in range(count):
                    await a.publish("b", BIG)

            for _ in range(4):
                publishers.start_soon(publish, 25)
        assert a.stats()["b"]["pending"] == 100
        async with Peer(b_config) as b, anyio.create_task_group() as tg:

            async def consume() -> None:
                async for rx in b.receive():
                    received.append(rx.jti)
                    await rx.done()

            tg.start_soon(consume)
            with anyio.fail_after(30_000 * MS):
                await a.flush(timeout=seconds(30))
                while len(received) < 100:  # noqa: ASYNC110
                    await anyio.sleep(20 * MS)
            tg.cancel_scope.cancel()
        assert a.stats()["b"]["acked"] == 100
        assert a.failures() == []
    assert len(set(received)) == 100


async def test_a_set_over_max_set_bytes_is_refused_before_it_is_stored(tmp_path: Path) -> None:
    """publish and forward raise SETTooLarge (a PeerError and a ValueError); nothing
    is stored, and the SETs after it flow."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files, limits=LIMITS)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        async with Peer(write_config(a_files, b_files, endpoint=endpoint, limits=LIMITS)) as a:
            huge = {SESSION_REVOKED: {"reason_admin": {"en": "x" * 70_000}}}
            with pytest.raises(SETTooLarge, match=r"over its max_set_bytes \(65536\)") as info:
                await a.publish("b", huge)
            assert isinstance(info.value, ValueError) and info.value.limit == 65536
            assert info.value.size > 65536
            token = "e30." + "A" * 70_000 + ".sig"  # refused on size before it is parsed
            with pytest.raises(SETTooLarge):
                await a.forward("b", token)
            assert a.stats()["b"]["pending"] + a.stats()["b"]["inflight"] == 0
            jti = await a.publish("b", BIG)  # large, but within the limit
            with anyio.fail_after(10_000 * MS):
                await a.flush(timeout=seconds(30))
            assert a.stats()["b"]["acked"] == 1 and a.failures() == []
            async for rx in b.receive():
                assert rx.jti == jti
                break


async def test_a_partner_with_a_smaller_limit_gets_smaller_sets_refused(tmp_path: Path) -> None:
    """The limit is the partner's: its own [partners.limits] max_set_bytes."""
    a_files, b_files = make_pair(tmp_path)
    config = write_config(a_files, b_files, endpoint="ws://127.0.0.1:9/pushpull", limits=LIMITS)
    small = dataclasses.replace(
        config.partners[0], limits=dataclasses.replace(config.limits, max_set_bytes=4096)
    )
    async with Peer(dataclasses.replace(config, partners=(small,))) as a:
        with pytest.raises(SETTooLarge, match=r"\(4096\)"):
            await a.publish("b", {SESSION_REVOKED: {"reason_admin": {"en": "x" * 5_000}}})
        await a.publish("b", {SESSION_REVOKED: {}})
        assert a.stats()["b"]["pending"] + a.stats()["b"]["inflight"] == 1


async def test_a_stored_set_too_large_fails_and_holds_nothing_back(tmp_path: Path) -> None:
    """A 2 MB SET already in the outbox (stored by an older version, or before the
    limit was lowered) fails with invalid_request instead of being sent in a frame the
    partner refuses again and again; the SET behind it is delivered."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files, limits=LIMITS)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        config = write_config(a_files, b_files, endpoint=endpoint, limits=LIMITS)
        store = await open_store(config.store, base_dir=config.config_dir)
        try:
            await store.enqueue([OutboundNew("b", "huge", "e30." + "A" * 2_000_000 + ".sig")])
        finally:
            await store.aclose()
        async with Peer(config) as a:
            jti = await a.publish("b", {SESSION_REVOKED: {}})
            with anyio.fail_after(10_000 * MS):
                await a.flush(timeout=seconds(30))
            [failure] = a.failures()
            assert (failure.jti, failure.err) == ("huge", "invalid_request")
            assert "over max_set_bytes (65536)" in failure.description
            assert a.stats()["b"]["acked"] == 1 and a.stats()["b"]["failed"] == 1
        async for rx in b.receive():
            assert rx.jti == jti
            break
