"""``setpeer status``: whether the node runs, then per partner session, pending, in
flight, acked, failed, received, unhandled (received, not yet done), refused (the
partner's SETs we refused), and the newest failures of both directions.

The running node answers through its local interface; without one, the store is
read, read-only: the node's heartbeat there says whether it runs (a killed node's
session rows are not taken for live sessions), and a store that does not exist is
not created. ``--watch`` redraws the status every ``--interval`` seconds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import sqlite3
import sys
import time
from typing import Any

import anyio

from ..config import PeerConfig
from ..errors import PeerError, StoreError
from ..local.heartbeat import NodeView, node_view
from ..local.status import COLUMNS, read_status, status_json
from ..logs import escape_controls
from ..ssf.status import stream_status
from ..store import open_store, sqlite_path
from ..store.base import SCHEMA_VERSION, Store
from ._common import EXIT_CONFIG, add_config_argument, command_parser, load_or_exit
from ._local import running_node

__all__ = ["add_parser", "main"]

# ANSI: cursor home, clear the screen (a TTY redraws in place).
_REDRAW = "\x1b[H\x1b[2J"
_MAX_INTERVAL = 3600.0


def add_parser(subparsers: Any, name: str) -> None:
    parser = command_parser(
        subparsers,
        name,
        "whether the node runs, per-partner delivery counts and recent failures",
        "setpeer status -c a.toml --json",
    )
    add_config_argument(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    parser.add_argument(
        "--watch", action="store_true", help="redraw every --interval seconds until Ctrl-C"
    )
    parser.add_argument(
        "--interval", metavar="S", default="2", help="seconds between redraws (default 2)"
    )
    parser.set_defaults(handler=main)


def _existing_store_url(config: PeerConfig) -> str:
    """The store's URL, once it is known to exist with our schema: status reads, it
    never creates or upgrades a store.

    Raises:
        StoreError: a memory store, no SQLite file, or an older or newer schema.
    """
    if config.store == "memory://":
        raise StoreError(
            "the node does not answer on its local interface, and a memory:// store"
            " keeps nothing outside the node's process"
        )
    if config.store.startswith("sqlite:"):
        path = sqlite_path(config.store, config.config_dir)
        if not path.is_file():
            raise StoreError(f"no store at {path} (the node has not run yet?)")
        try:
            conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
            try:
                (version,) = conn.execute("PRAGMA user_version").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read store {path}: {exc}") from None
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"{path} has schema version {version}, this setpeer reads"
                f" {SCHEMA_VERSION}: `setpeer migrate` or starting the node upgrades it"
            )
    return config.store


async def collect(config: PeerConfig) -> tuple[NodeView | None, dict[str, dict[str, Any]]]:
    """Whether the node runs (None: it answered on its local interface) and the
    status of every configured partner: from the running node (the webhook's state
    too), else read from the store.

    Raises:
        StoreError: no store there, or it cannot be read.
    """
    client = await running_node(config)
    if client is not None:
        try:
            return None, await client.status()
        finally:
            await client.aclose()
    store: Store = await open_store(_existing_store_url(config), base_dir=config.config_dir)
    try:
        view = node_view(await store.nodes())
        status = status_json(await read_status(config, store, running=view["running"]))
        for name, entry in (await stream_status(config, store)).items():
            status[name]["stream"] = entry
        return view, status
    finally:
        await store.aclose()


def _when(at: float) -> str:
    if not at:
        return "-"
    return datetime.datetime.fromtimestamp(at, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.0f}h"


def node_line(view: NodeView | None, now: float) -> str:
    """``node: running ...`` or ``node: not running ...``, with what it rests on."""
    if view is None:
        return "node: running (it answered on its local interface)"
    if view["running"]:
        parts = [
            f"pid {n['pid']} on {escape_controls(str(n['host']))},"
            f" up {_ago(now - float(str(n['started_at'])))},"
            f" last heartbeat {_ago(now - float(str(n['beat_at'])))} ago"
            for n in view["nodes"]
        ]
        return "node: running (" + "; ".join(parts) + ")"
    last = view["last_beat"]
    if last is None:
        return "node: not running (no heartbeat in the store)"
    return f"node: not running (last heartbeat {_when(last)}, {_ago(now - last)} ago)"


def _table(status: dict[str, dict[str, Any]], now: float) -> str:
    header = ("partner", *COLUMNS, "attempts", "next retry")
    rows: list[tuple[str, ...]] = [header]
    for name, entry in status.items():
        next_retry = entry.get("next_retry")
        when = "-" if not next_retry else f"in {max(0.0, next_retry - now):.1f}s"
        cells = [str(entry[c]) for c in COLUMNS]
        if entry.get("running") is False:
            cells[0] = "down (not running)"
        rows.append((escape_controls(name), *cells, str(entry.get("attempts") or "-"), when))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _reason_lines(status: dict[str, dict[str, Any]]) -> list[str]:
    """The newest failures per partner, every field escaped (a partner wrote them)."""
    lines = []
    for name, entry in status.items():
        for r in entry.get("reasons") or []:
            fields = (name, r["direction"], r["err"], repr(r["description"]), f"jti {r['jti']}")
            lines.append("  " + "  ".join([_when(r["at"]), *map(escape_controls, fields)]))
    return ["recent failures (newest first per partner):", *lines] if lines else []


def render(view: NodeView | None, status: dict[str, dict[str, Any]], now: float) -> str:
    """The text block ``status`` prints (and ``--watch`` redraws)."""
    lines = [node_line(view, now), _table(status, now), *_reason_lines(status)]
    hook = next((entry["webhook"] for entry in status.values() if "webhook" in entry), None)
    if hook is not None:
        lines.append(_webhook_line(hook, now))
    lines += [_stream_line(name, e["stream"]) for name, e in status.items() if "stream" in e]
    return "\n".join(lines)


def _interval(text: str) -> float:
    """The ``--interval`` value; ValueError if it is no number of seconds in range."""
    value = float(text)
    if not math.isfinite(value) or not 0.1 <= value <= _MAX_INTERVAL:
        raise ValueError(text)
    return value


def _once(config: PeerConfig, as_json: bool) -> str:
    """One status block (or JSON line). Raises PeerError."""
    view, status = anyio.run(collect, config)
    if as_json:
        return json.dumps(status)
    return render(view, status, time.time())


def main(args: argparse.Namespace) -> int:
    """Print the status (or JSON); exit 1 if the store cannot be read, 2 on a bad
    argument; ``--watch`` exits 0 on Ctrl-C."""
    config = load_or_exit(args.config)
    try:
        interval = _interval(args.interval)
    except ValueError:
        print(
            f"setpeer status: --interval takes seconds from 0.1 to {_MAX_INTERVAL:.0f},"
            f" not {escape_controls(repr(args.interval))}",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    if args.watch:
        return _watch(config, args.json, interval)
    try:
        print(_once(config, args.json))
    except PeerError as exc:
        print(f"setpeer status: {escape_controls(str(exc))}", file=sys.stderr)
        return 1
    return 0


def _watch(config: PeerConfig, as_json: bool, interval: float) -> int:
    """Redraw until Ctrl-C: in place on a terminal (JSON: one line per turn); a store
    that cannot be read is shown, and read again next turn."""
    redraw = sys.stdout.isatty() and not as_json
    try:
        while True:
            try:
                block = _once(config, as_json)
            except PeerError as exc:
                block = f"setpeer status: {escape_controls(str(exc))}"
            stamp = "" if as_json else f"{_when(time.time())}  every {interval:g}s, Ctrl-C ends\n"
            if redraw:
                sys.stdout.write(_REDRAW + stamp + block + "\n")
            else:
                sys.stdout.write(stamp + block + ("\n" if as_json else "\n\n"))
            sys.stdout.flush()
            time.sleep(interval)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
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


def _webhook_line(hook: dict[str, Any], now: float) -> str:
    """``webhook: down for 42s (connection refused), 3 failures in a row, backlog 17``."""
    since = max(0.0, now - float(hook.get("since") or now))
    line = f"webhook: {hook['state']} for {since:.0f}s"
    if hook.get("last_error") and hook["state"] != "up":
        line += f" ({escape_controls(str(hook['last_error']))})"
    if hook.get("consecutive_failures"):
        line += f", {hook['consecutive_failures']} failures in a row"
    return line + f", backlog {hook.get('backlog', 0)}"
