"""scripts/delay_proxy.py, the WAN bench's delaying TCP proxy, before a real echo
server: bytes intact and in order, each direction delayed once (not each chunk in
turn), half-close and close carried, and a side that does not read holds the other
back instead of filling the proxy's memory."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator

import pytest

from scripts.delay_proxy import DelayProxy, delay_proxy
from tests.timing import MS

pytestmark = pytest.mark.anyio

DELAY = 0.025


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()
    writer.close()  # EOF from the client: close, as an HTTP server would


@pytest.fixture
async def proxy() -> AsyncIterator[DelayProxy]:
    server = await asyncio.start_server(_echo, "127.0.0.1", 0)
    async with delay_proxy(server.sockets[0].getsockname()[:2], DELAY) as running:
        yield running
    server.close()


async def _connect(proxy: DelayProxy) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(proxy.host, proxy.port)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


async def _round_trip(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
) -> float:
    start = time.perf_counter()
    writer.write(data)
    assert await reader.readexactly(len(data)) == data
    return time.perf_counter() - start


async def test_bytes_arrive_intact_in_order_one_round_trip_later(proxy: DelayProxy) -> None:
    reader, writer = await _connect(proxy)
    # A new connection waits a round trip (the handshake) before its first byte moves.
    first = await _round_trip(reader, writer, b"hello")
    assert 4 * DELAY - MS <= first < 4 * DELAY + 150 * MS
    then = await _round_trip(reader, writer, b"again")
    assert 2 * DELAY - MS <= then < 2 * DELAY + 150 * MS
    payload = os.urandom(1024 * 1024)  # 16 reads of the proxy, each direction
    big = await _round_trip(reader, writer, payload)
    assert big < 2 * DELAY + 500 * MS  # delayed once, not once per chunk
    await _close(writer)
    assert proxy.connections == 1


async def test_many_small_writes_are_delayed_together_not_one_after_another(
    proxy: DelayProxy,
) -> None:
    reader, writer = await _connect(proxy)
    await _round_trip(reader, writer, b"x")  # past the handshake
    start = time.perf_counter()
    for i in range(200):  # one every millisecond, on a schedule
        await asyncio.sleep(start + i / 1000 - time.perf_counter())
        written = time.perf_counter() - start
        writer.write(i.to_bytes(2, "big"))
    echoed = await reader.readexactly(400)
    took = time.perf_counter() - start
    assert echoed == b"".join(i.to_bytes(2, "big") for i in range(200))
    # Serially delayed, 200 chunks would take 200 round trips (10 s).
    assert written + 2 * DELAY - MS <= took < written + 2 * DELAY + 200 * MS
    await _close(writer)


async def test_half_close_and_close_reach_the_other_side_after_the_delay(
    proxy: DelayProxy,
) -> None:
    reader, writer = await _connect(proxy)
    await _round_trip(reader, writer, b"x")
    start = time.perf_counter()
    writer.write(b"last words")
    writer.write_eof()  # the echo server gets its EOF, echoes, and closes
    assert await reader.read() == b"last words"  # all of it, then EOF
    took = time.perf_counter() - start
    assert 2 * DELAY - MS <= took < 2 * DELAY + 150 * MS
    await _close(writer)


async def test_a_side_that_does_not_read_holds_the_sender_back() -> None:
    held: list[asyncio.StreamWriter] = []

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)  # accepts, never reads

    server = await asyncio.start_server(deaf, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[:2]
    async with delay_proxy(target, 0.001, max_buffer=256 * 1024) as small:
        reader, writer = await asyncio.open_connection(small.host, small.port)
        writer.write(b"\0" * (32 * 1024 * 1024))
        # Kernel buffers take a few MiB on each hop, the proxy at most max_buffer:
        # 32 MiB cannot all leave the client. A proxy reading without bound would.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(writer.drain(), 100 * MS)
        assert writer.transport.get_write_buffer_size() > 16 * 1024 * 1024
        writer.transport.abort()
    for stuck in held:
        stuck.transport.abort()
    server.close()
    await server.wait_closed()


async def test_a_close_by_the_server_and_a_refused_connection_reach_the_client() -> None:
    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"bye")
        await _close(writer)

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    target = server.sockets[0].getsockname()[:2]
    async with delay_proxy(target, DELAY) as greeting:
        reader, writer = await _connect(greeting)
        start = time.perf_counter()
        assert await reader.read() == b"bye"  # then EOF: the close came through
        # The handshake's round trip, then one way.
        assert 3 * DELAY - MS <= time.perf_counter() - start < 3 * DELAY + 150 * MS
        await _close(writer)
    server.close()
    await server.wait_closed()
    async with delay_proxy(target, DELAY) as nowhere:  # nothing listens there now
        reader, writer = await _connect(nowhere)
        start = time.perf_counter()
        assert await reader.read() == b""
        assert 2 * DELAY - MS <= time.perf_counter() - start < 2 * DELAY + 150 * MS
        await _close(writer)
