"""A delaying TCP proxy: a wide-area round trip between two processes on loopback.

Every chunk read from one side is written to the other ``delay`` seconds later, in
each direction, so a request and its answer take ``2 * delay`` more than on loopback.
Reads go on while earlier chunks wait (one queue and one writer task per direction):
the delay is latency, not a bandwidth limit, and order is kept. A new connection also
waits one round trip before its first byte moves on, as a TCP handshake over the same
path would. Half-close (EOF) and close reach the other side after the delay too.

Memory is bounded: past ``max_buffer`` bytes waiting in one direction the proxy stops
reading that side until the writer catches up, and the writer waits for the far side
to drain, so a side that does not read holds its sender back through TCP itself.

What it does not model: loss, bandwidth, TCP's own round trips (slow start, Nagle
against delayed acknowledgements): each side's kernel talks to the proxy on
loopback. It shows what the protocols cost in round trips, which is what a window
and a batch are for.

Use it from code::

    async with delay_proxy(("127.0.0.1", 8443), delay=0.025) as proxy:
        ...  # dial 127.0.0.1:proxy.port

from synchronous code, in a thread of its own (``with proxy_thread(...) as port``),
or from a shell::

    python scripts/delay_proxy.py --listen 127.0.0.1:0 --target 127.0.0.1:8443 --delay-ms 25
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

__all__ = ["DelayProxy", "delay_proxy", "proxy_thread", "start_proxy"]

READ_SIZE = 64 * 1024
MAX_BUFFER = 8 * 1024 * 1024
"""Bytes waiting per direction before reading pauses: 8 MiB over a 25 ms one-way
delay still carries 320 MB/s, far beyond what the nodes send."""

_EOF = b""


def _address(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:port`` for IPv6) as a pair; no host is 127.0.0.1."""
    host, _, port = text.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass
class _Pipe:
    """One direction of one connection: chunks waiting for their time, in order."""

    delay: float
    max_buffer: int
    chunks: collections.deque[tuple[float, bytes]] = field(default_factory=collections.deque)
    waiting: int = 0  # bytes in ``chunks``
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    room: asyncio.Event = field(default_factory=asyncio.Event)

    async def read(self, reader: asyncio.StreamReader, not_before: float) -> None:
        """Read until EOF (or an error, taken as EOF), queueing each chunk."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                chunk = await reader.read(READ_SIZE)
            except (ConnectionError, OSError):
                chunk = _EOF
            self.chunks.append((max(loop.time(), not_before) + self.delay, chunk))
            self.waiting += len(chunk)
            self.arrived.set()
            if not chunk:
                return
            while self.waiting >= self.max_buffer:  # the far side is slow: stop reading
                self.room.clear()
                await self.room.wait()

    async def write(self, writer: asyncio.StreamWriter) -> None:
        """Write each chunk at its time, then the EOF as a half-close.

        Raises:
            ConnectionError: the far side is gone (the connection is dropped).
        """
        loop = asyncio.get_running_loop()
        while True:
            while not self.chunks:
                self.arrived.clear()
                await self.arrived.wait()
            due = self.chunks[0][0]
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            # Everything due by now goes out in one write.
            now = loop.time()
            batch: list[bytes] = []
            eof = False
            while self.chunks and self.chunks[0][0] <= now:
                chunk = self.chunks.popleft()[1]
                if not chunk:
                    eof = True
                    break
                batch.append(chunk)
            try:
                if batch:
                    writer.write(b"".join(batch))
                    await writer.drain()
                if eof and writer.can_write_eof():
                    writer.write_eof()
            except OSError as exc:  # ConnectionError included
                raise ConnectionError(f"far side gone: {exc}") from exc
            self.waiting -= sum(map(len, batch))
            self.room.set()
            if eof:
                return


class DelayProxy:
    """A running proxy: ``port`` on ``host`` forwards to ``target``, ``delay`` seconds
    one way. ``connections`` counts the connections accepted so far."""

    def __init__(self, target: tuple[str, int], delay: float, max_buffer: int) -> None:
        self.target, self.delay, self.max_buffer = target, delay, max_buffer
        self.host, self.port = "", 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._accepted, host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]

    async def close(self) -> None:
        """Stop accepting and drop the open connections."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(
        self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        self.connections += 1
        # A TCP handshake over the path costs a round trip before the first byte.
        not_before = asyncio.get_running_loop().time() + 2 * self.delay
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            await asyncio.sleep(2 * self.delay)  # the refusal travels back too
            client_writer.close()
            return
        up, down = _Pipe(self.delay, self.max_buffer), _Pipe(self.delay, self.max_buffer)
        ended = False
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(up.read(client_reader, not_before))
                tg.create_task(up.write(server_writer))
                tg.create_task(down.read(server_reader, not_before))
                tg.create_task(down.write(client_writer))
            ended = True  # both directions carried their EOF: nothing left to send
        except* ConnectionError:
            pass  # one side went away: drop both, as a middlebox would
        finally:
            for writer in (client_writer, server_writer):
                # Dropped (or the proxy closed): unsent bytes are discarded.
                writer.close() if ended else writer.transport.abort()


async def start_proxy(
    target: tuple[str, int] | str,
    delay: float = 0.025,
    *,
    listen: tuple[str, int] | str = ("127.0.0.1", 0),
    max_buffer: int = MAX_BUFFER,
) -> DelayProxy:
    """Start a proxy to ``target`` (``(host, port)`` or ``"host:port"``), ``delay``
    seconds one way in each direction; port 0 in ``listen`` picks a free port."""
    target = _address(target) if isinstance(target, str) else target
    host, port = _address(listen) if isinstance(listen, str) else listen
    proxy = DelayProxy(target, delay, max_buffer)
    await proxy.start(host, port)
    return proxy


@contextlib.asynccontextmanager
async def delay_proxy(
    target: tuple[str, int] | str,
    delay: float = 0.025,
    *,
    listen: tuple[str, int] | str = ("127.0.0.1", 0),
    max_buffer: int = MAX_BUFFER,
) -> AsyncIterator[DelayProxy]:
    """:func:`start_proxy` as an async context manager: closed on exit."""
    proxy = await start_proxy(target, delay, listen=listen, max_buffer=max_buffer)
    try:
        yield proxy
    finally:
        await proxy.close()


@contextlib.contextmanager
def proxy_thread(target: tuple[str, int] | str, delay: float = 0.025) -> Iterator[DelayProxy]:
    """A proxy on an event loop in a thread of its own, for synchronous callers."""
    started = threading.Event()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    proxies: list[DelayProxy] = []
    errors: list[BaseException] = []

    async def run() -> None:
        try:
            proxies.append(await start_proxy(target, delay))
        except BaseException as exc:
            errors.append(exc)
            raise
        finally:
            started.set()
        await stop.wait()
        await proxies[0].close()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    started.wait()
    if errors:
        thread.join()
        loop.close()
        raise RuntimeError(f"delay proxy failed to start: {errors[0]}")
    try:
        yield proxies[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=5)
        loop.close()


async def _main(args: argparse.Namespace) -> None:
    proxy = await start_proxy(args.target, args.delay_ms / 1000, listen=args.listen)
    print(f"{proxy.host}:{proxy.port} -> {args.target} delay {args.delay_ms} ms", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await proxy.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port (0: any free)")
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--delay-ms", type=float, default=25.0, help="one-way delay")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
