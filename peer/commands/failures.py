"""``setpeer failures -c peer.toml [--json] [--since UNIX_TIME]``: failures of both
directions, read from the store, oldest first.

``outbound``: our SETs a partner refused, or that ran out of attempts; ``inbound``:
a partner's SETs we refused (the newest ``failures_kept`` per partner). The store is
read whether or not the node runs; a SQLite file that does not exist is not created.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sys
from typing import Any

import anyio

from ..config import PeerConfig
from ..errors import PeerError
from ..logs import escape_controls
from ..store import open_store
from ._common import EXIT_CONFIG, add_config_argument, command_parser, load_or_exit, require_store

__all__ = ["add_parser", "collect", "main"]

FIELDS = ("direction", "partner", "jti", "err", "description", "at")


def add_parser(subparsers: Any, name: str) -> None:
    parser = command_parser(
        subparsers,
        name,
        "failures of both directions from the store, oldest first",
        "setpeer failures -c a.toml --since 1767225600 --json",
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument(
        "--since", metavar="UNIX_TIME", help="only failures at or after this time (seconds)"
    )
    parser.set_defaults(handler=main)


def _since(text: str | None) -> float | None:
    """The ``--since`` value, or None; ValueError if it is no Unix time."""
    if text is None:
        return None
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(text)
    return value


async def collect(config: PeerConfig, since: float | None = None) -> list[dict[str, Any]]:
    """Every failure the store holds, both directions, oldest first (by ``at``; those
    without a time first).

    Raises:
        StoreError: no store there, or it cannot be read.
    """
    require_store(config)
    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        outbound = await store.failures(since=since)
        inbound = await store.refusals(since=since)
    finally:
        await store.aclose()
    rows = [
        {"direction": "outbound", "partner": r.partner, "jti": r.jti, "err": r.err}
        | {"description": r.description, "at": r.at}
        for r in outbound
    ] + [
        {"direction": "inbound", "partner": r.partner, "jti": r.jti, "err": r.err}
        | {"description": r.description, "at": r.at}
        for r in inbound
    ]
    return sorted(rows, key=lambda row: float(row["at"]))


def _when(at: float) -> str:
    if not at:
        return "-"  # failed before the store kept the time
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _line(row: dict[str, Any]) -> str:
    """One failure for a reader: every field escaped (a partner wrote the jti)."""
    fields = (row["direction"], row["partner"], row["jti"] or "-", row["err"], row["description"])
    return "  ".join([_when(row["at"]), *(escape_controls(str(f)) for f in fields)])


def main(args: argparse.Namespace) -> int:
    """Print the failures; exit 1 if the store cannot be read, 2 on a bad argument."""
    config = load_or_exit(args.config)
    try:
        since = _since(args.since)
    except ValueError:
        print(
            f"setpeer failures: --since takes a Unix time in seconds, not {args.since!r}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        rows = anyio.run(collect, config, since)
    except PeerError as exc:
        print(f"setpeer failures: {escape_controls(str(exc))}", file=sys.stderr)
        return 1
    for row in rows:
        print(json.dumps({key: row[key] for key in FIELDS}) if args.json else _line(row))
    return 0
