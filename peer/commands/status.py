"""``setpeer status``: per partner session, pending, in flight, acked, failed, received,
unhandled (received, not yet done) and refused (the partner's SETs we refused)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import anyio

from ..config import PeerConfig
from ..errors import PeerError
from ..local.status import COLUMNS, read_status, status_json
from ..store import open_store
from ._common import add_config_argument, load_or_exit

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help="per-partner delivery counts from the store"
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    parser.set_defaults(handler=main)


async def collect(config: PeerConfig) -> dict[str, dict[str, Any]]:
    """The status of every configured partner, read from the store."""
    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        return await read_status(config, store)
    finally:
        await store.aclose()


def _table(status: dict[str, dict[str, Any]]) -> str:
    header = ("partner", *COLUMNS, "attempts", "next retry")
    rows: list[tuple[str, ...]] = [header]
    now = time.time()
    for name, entry in status.items():
        next_retry = entry.get("next_retry")
        when = "-" if not next_retry else f"in {max(0.0, next_retry - now):.1f}s"
        rows.append(
            (name, *(str(entry[c]) for c in COLUMNS), str(entry.get("attempts") or "-"), when)
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def main(args: argparse.Namespace) -> int:
    """Print the status table (or JSON); exit 1 if the store cannot be read."""
    config = load_or_exit(args.config)
    try:
        status = anyio.run(collect, config)
    except PeerError as exc:
        print(f"setpeer status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status_json(status)))
    else:
        print(_table(status))
    return 0
