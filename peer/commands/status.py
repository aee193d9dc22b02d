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
from ..logs import escape_controls
from ..ssf.status import stream_status
from ..store import open_store
from ._common import add_config_argument, command_parser, load_or_exit
from ._local import running_node

__all__ = ["add_parser", "main"]


def add_parser(subparsers: Any, name: str) -> None:
    parser = command_parser(
        subparsers,
        name,
        "per-partner session and delivery counts, from the running node or the store",
        "setpeer status -c a.toml --json",
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    parser.set_defaults(handler=main)


async def collect(config: PeerConfig) -> dict[str, dict[str, Any]]:
    """The status of every configured partner: from the running node through its
    local interface (the webhook's state too), else read from the store."""
    client = await running_node(config)
    if client is not None:
        try:
            return await client.status()
        finally:
            await client.aclose()
    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        status = status_json(await read_status(config, store))
        for name, entry in (await stream_status(config, store)).items():
            status[name]["stream"] = entry
        return status
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
        print(json.dumps(status))
    else:
        print(_table(status))
        hook = next((entry["webhook"] for entry in status.values() if "webhook" in entry), None)
        if hook is not None:
            print(_webhook_line(hook))
        for name, entry in status.items():
            if "stream" in entry:
                print(_stream_line(name, entry["stream"]))
    return 0


def _stream_line(name: str, stream: dict[str, Any]) -> str:
    """``stream idp: 4f2a... paused (maintenance), verification verified``."""
    if stream.get("stream_id") is None:
        return f"stream {name}: none"
    line = f"stream {name}: {escape_controls(str(stream['stream_id']))} {stream['status']}"
    if stream.get("reason"):
        line += f" ({escape_controls(str(stream['reason']))})"
    verification = stream.get("verification")
    state = verification.get("state") if isinstance(verification, dict) else None
    return line + f", verification {state or 'never asked'}"


def _webhook_line(hook: dict[str, Any]) -> str:
    """``webhook: down for 42s (connection refused), 3 failures in a row, backlog 17``."""
    since = max(0.0, time.time() - float(hook.get("since") or time.time()))
    line = f"webhook: {hook['state']} for {since:.0f}s"
    if hook.get("last_error") and hook["state"] != "up":
        line += f" ({escape_controls(str(hook['last_error']))})"
    if hook.get("consecutive_failures"):
        line += f", {hook['consecutive_failures']} failures in a row"
    return line + f", backlog {hook.get('backlog', 0)}"
