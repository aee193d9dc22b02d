"""Bench rows of the local side: what the hop between the identity service and the node
costs, beside the embedded facade in the same run.

- publish: ``Peer.publish`` inside the node's process, against ``Client.publish``
  from another process through the local interface (Unix socket); 32 publishing
  tasks, each SET durable before its call returns;
- receive: the application's ``receive()`` + ``done()`` per SET, embedded, through
  ``Client`` (long polling) and by webhook (the node POSTs each SET to a local HTTP
  server that answers 204).

One node, one partner that never connects (its SETs stay pending; its inbox is filled
before the node starts, through the store). Rates are SETs/s of wall time from the
first SET to the last; CPU is per 1,000 SETs, the node's and the application's process
each. ``scripts/bench --only local`` runs these rows alone.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peer import Client, Peer, load_config  # noqa: E402
from peer.store import open_store  # noqa: E402
from peer.store.base import InboundNew  # noqa: E402
from peer.tokens.keys import generate_private_jwks, public_jwks  # noqa: E402

EVENT = "https://bench.setpeer.example/event"
PUBLISHERS = 32


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def write_config(folder: Path, *, deliver: str | None = None) -> Path:
    """Node ``b`` with partner ``a`` (which never connects); the local interface on
    ``app.sock`` beside the config."""
    private = generate_private_jwks("ES256")
    (folder / "b.jwks.json").write_text(json.dumps(private))
    (folder / "a.public.json").write_text(json.dumps(public_jwks(generate_private_jwks("ES256"))))
    (folder / "b.token").write_text(secrets.token_urlsafe(24))
    hook = f'deliver = "{deliver}"\n' if deliver else ""
    text = f"""
[peer]
issuer = "https://b.bench.example"
listen = "127.0.0.1:0"
store = "sqlite:///b.db"
signing_keys = "b.jwks.json"
allow_insecure_loopback = true
[peer.app]
listen = "unix:app.sock"
{hook}
[[partners]]
name = "a"
issuer = "https://a.bench.example"
audience = "https://a.bench.example"
jwks = "a.public.json"
initiate = false
[partners.auth]
bearer = "file:b.token"
[partners.inbound]
bearer_sha256 = "{hashlib.sha256(b"unused").hexdigest()}"
"""
    path = folder / "b.toml"
    path.write_text(text)
    return path


async def fill_inbox(folder: Path, count: int) -> None:
    """``count`` SETs from ``a`` in the inbox, as if verified (the node is not running)."""
    store = await open_store("sqlite:///b.db", base_dir=folder)
    try:
        for start in range(0, count, 500):
            items = [
                InboundNew(
                    iss="https://a.bench.example",
                    jti=f"in-{i}",
                    token=f"header.payload-{i}.signature",
                    claims={"jti": f"in-{i}", "events": {EVENT: {"i": i}}},
                )
                for i in range(start, min(count, start + 500))
            ]
            await store.accept_inbound("a", items, [])
    finally:
        await store.aclose()


# -- the node's process -------------------------------------------------------------------


async def node_main(args: argparse.Namespace) -> None:
    """Serve until stdin closes (``serve``), or run the embedded row and report."""
    config = load_config(args.config)
    result: dict[str, Any] = {}
    async with Peer(config) as node:
        print("ready", flush=True)
        cpu0 = _cpu()
        if args.role == "serve":
            await anyio.to_thread.run_sync(sys.stdin.read)  # until the bench closes it
        elif args.role == "publish":
            result["first"] = time.time()
            indexes = iter(range(args.count))

            async def publisher() -> None:
                for i in indexes:
                    await node.publish("a", {EVENT: {"i": i}})

            async with anyio.create_task_group() as tg:
                for _ in range(PUBLISHERS):
                    tg.start_soon(publisher)
            result["last"] = time.time()
        elif args.role == "receive":
            seen = 0
            async for rx in node.receive():
                if not seen:
                    result["first"] = time.time()
                await rx.done()
                seen += 1
                if seen >= args.count:
                    break
            result["last"] = time.time()
        result["cpu"] = _cpu() - cpu0
    Path(args.out).write_text(json.dumps(result))


class _Node:
    """The node in a process of its own."""

    def __init__(self, config: Path, role: str, count: int) -> None:
        self.out = config.parent / f"node-{role}.json"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "node", "--config", str(config), "--role", role]
            + ["--count", str(count), "--out", str(self.out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        while self.process.stdout.readline().strip() != "ready":
            if self.process.poll() is not None:
                raise RuntimeError(f"the node failed: exit {self.process.returncode}")

    def finish(self) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.close()
        if self.process.wait(timeout=120):
            raise RuntimeError(f"the node failed: exit {self.process.returncode}")
        result: dict[str, Any] = json.loads(self.out.read_text())
        return result


def _row(
    name: str, count: int, first: float, last: float, node_cpu: float, app_cpu: float | None
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": name,
        "count": count,
        "sets_per_s": round(count / (last - first)) if last > first else 0,
        "cpu_s_per_1000_node": round(node_cpu / count * 1000, 3),
    }
    if app_cpu is not None:
        row["cpu_s_per_1000_app"] = round(app_cpu / count * 1000, 3)
    return row


# -- the rows -----------------------------------------------------------------------------


def publish_rows(count: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="setpeer-bench-") as tmp:
        r = _Node(write_config(Path(tmp)), "publish", count).finish()
        rows.append(
            _row("local: publish embedded (Peer)", count, r["first"], r["last"], r["cpu"], None)
        )
    with tempfile.TemporaryDirectory(prefix="setpeer-bench-") as tmp:
        config = write_config(Path(tmp))
        node = _Node(config, "serve", count)
        timing: dict[str, float] = {}

        async def publish() -> None:
            async with Client(f"unix:{config.parent / 'app.sock'}") as client:
                await client.publish("a", {EVENT: {"i": -1}})  # the connection is up
                cpu0, timing["first"] = _cpu(), time.time()
                indexes = iter(range(count))

                async def publisher() -> None:
                    for i in indexes:
                        await client.publish("a", {EVENT: {"i": i}})

                async with anyio.create_task_group() as tg:
                    for _ in range(PUBLISHERS):
                        tg.start_soon(publisher)
                timing["last"], timing["cpu"] = time.time(), _cpu() - cpu0

        anyio.run(publish)
        r = node.finish()
        rows.append(
            _row(
                "local: publish via Client (unix socket)",
                count,
                timing["first"],
                timing["last"],
                r["cpu"],
                timing["cpu"],
            )
        )
    return rows


def receive_rows(count: int) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="setpeer-bench-") as tmp:
        config = write_config(Path(tmp))
        anyio.run(fill_inbox, config.parent, count)
        r = _Node(config, "receive", count).finish()
        rows.append(
            _row(
                "local: receive+done embedded (Peer)", count, r["first"], r["last"], r["cpu"], None
            )
        )
    with tempfile.TemporaryDirectory(prefix="setpeer-bench-") as tmp:
        config = write_config(Path(tmp))
        anyio.run(fill_inbox, config.parent, count)
        node = _Node(config, "serve", count)
        timing: dict[str, float] = {}

        async def drain() -> None:
            async with Client(f"unix:{config.parent / 'app.sock'}") as client:
                seen = 0
                cpu0 = _cpu()
                async for rx in client.receive():
                    if not seen:
                        timing["first"] = time.time()
                    await rx.done()
                    seen += 1
                    if seen >= count:
                        break
                timing["last"], timing["cpu"] = time.time(), _cpu() - cpu0

        anyio.run(drain)
        r = node.finish()
        rows.append(
            _row(
                "local: receive+done via Client (unix socket)",
                count,
                timing["first"],
                timing["last"],
                r["cpu"],
                timing["cpu"],
            )
        )
    rows.append(webhook_row(count))
    return rows


def webhook_row(count: int) -> dict[str, Any]:
    """The node POSTs each SET to a threaded HTTP server here that answers 204."""
    times: list[float] = []
    all_in = threading.Event()

    class Hook(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            times.append(time.time())
            self.send_response(204)
            self.end_headers()
            if len(times) >= count:
                all_in.set()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="setpeer-bench-") as tmp:
            url = f"http://127.0.0.1:{server.server_address[1]}/hook"
            config = write_config(Path(tmp), deliver=url)
            anyio.run(fill_inbox, config.parent, count)
            node = _Node(config, "serve", count)
            all_in.wait(timeout=120)
            r = node.finish()
    finally:
        server.shutdown()
        server.server_close()
    return _row("local: receive by webhook", len(times), times[0], times[-1], r["cpu"], None)


def bench_local(quick: bool) -> list[dict[str, Any]]:
    count = 2000 if quick else 10000
    return publish_rows(count) + receive_rows(count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command")
    node = sub.add_parser("node", help="(internal) the node's process")
    node.add_argument("--config", required=True)
    node.add_argument("--role", choices=["serve", "publish", "receive"], required=True)
    node.add_argument("--count", type=int, required=True)
    node.add_argument("--out", required=True)
    args = parser.parse_args()
    if args.command == "node":
        anyio.run(node_main, args)
        return 0
    for row in bench_local(quick=True):
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
