"""``setpeer receive -c peer.toml [--follow] [--keep]``: received SETs as JSON lines.

Each line is ``{"seq", "partner", "jti", "claims", "token"}``, in inbox order, and the
SET is marked done once its line is written (not with ``--keep``). Through the running
node's local interface when one answers, else straight from the store.

"Written" means read by the other end when standard output is a pipe: the line is
marked done only once the reader has drained the pipe, so ``setpeer receive --follow |
head -n 5`` marks exactly the five lines ``head`` printed (``peer/commands/pipe.py``).
A reader that goes away ends the command quietly with exit 0.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from ..config import PeerConfig
from ..errors import PeerError
from ..local.items import received_item
from ..store import open_store
from ._common import EXIT_CONFIG, add_config_argument, command_parser, load_or_exit, require_store
from ._local import running_node
from .pipe import ReaderGone, write_and_wait

if TYPE_CHECKING:
    from ..client import Client
    from ..received import Received

__all__ = ["add_parser", "main"]

PAGE = 100
FOLLOW_WAIT = 25.0  # seconds one long poll of the local interface waits
STORE_POLL = 0.2  # seconds between reads of the store with --follow and no node

Item = tuple[dict[str, Any], Callable[[], Awaitable[None]]]


def add_parser(subparsers: Any, name: str) -> None:
    parser = command_parser(
        subparsers,
        name,
        "print received SETs as JSON lines, marking each done once written",
        "setpeer receive -c b.toml --follow | head -n 5   # marks exactly the five printed done",
    )
    add_config_argument(parser)
    parser.add_argument("--follow", action="store_true", help="wait for more; stop with Ctrl-C")
    parser.add_argument(
        "--keep", action="store_true", help="do not mark what is printed done (a peek)"
    )
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    if config.app.deliver is not None:
        print(
            "setpeer receive: this node delivers received SETs to its webhook "
            "([peer.app] deliver); pulling them too would race it",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        anyio.run(_receive, config, args.follow, args.keep)
    except ReaderGone:
        # Whoever read our output has gone (`| head`): nothing more is marked done.
        # Python would complain flushing stdout at exit; point it at /dev/null.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        return 130
    except PeerError as exc:
        print(f"setpeer receive: {exc}", file=sys.stderr)
        return 1
    return 0


async def _receive(config: PeerConfig, follow: bool, keep: bool) -> None:
    items = await _through_node(config, follow)
    if items is None:
        items = _from_store(config, follow)
    out = sys.stdout.buffer
    async for line, done in items:
        data = json.dumps(line, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"
        await anyio.to_thread.run_sync(write_and_wait, out, data)
        if not keep:
            await done()


async def _through_node(config: PeerConfig, follow: bool) -> AsyncIterator[Item] | None:
    """The running node's SETs through its local interface, or None if none answers."""
    client = await running_node(config)
    if client is None:
        return None
    try:
        first = await client.received(limit=PAGE)
    except BaseException:
        await client.aclose()
        raise
    return _pages(client, first, follow)


async def _pages(client: Client, page: list[Received], follow: bool) -> AsyncIterator[Item]:
    try:
        after = 0
        while True:
            for rx in page:
                after = rx.seq
                yield received_item(rx), rx.done
            if not page and not follow:
                return
            page = await client.received(after=after, limit=PAGE, wait=FOLLOW_WAIT if follow else 0)
    finally:
        await client.aclose()


async def _from_store(config: PeerConfig, follow: bool) -> AsyncIterator[Item]:
    """No node answers: read the store itself (never creating one)."""
    require_store(config)
    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        after = 0
        while True:
            rows = await store.fetch_inbox(after_seq=after, limit=PAGE)
            for row in rows:
                after = row.seq

                async def done(seq: int = row.seq) -> None:
                    await store.mark_done([seq])

                yield received_item(row), done
            if not rows:
                if not follow:
                    return
                await anyio.sleep(STORE_POLL)
    finally:
        await store.aclose()
