"""Two setpeer nodes, "a" and "b", on loopback, exchanging SETs both ways over WebSocket.

a dials b (push-pull over WebSocket, subprotocol pushpull); both publish session-revoked
events to each other at once, and each application marks what it receives as done.
Two runs: saturated (as fast as publish goes: the throughput, and latency that is mostly
queueing) and paced (100 SETs/s each way: the latency of one SET). Prints a live
progress line and a table of both; exits 0 when every SET arrived and was acked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from peer import Peer, load_config
from peer.tokens.keys import generate_private_jwks, public_jwks

SESSION_REVOKED = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"


def write_node(
    folder: Path, name: str, other: str, *, endpoint: str | None, token_out: str, token_in: str
) -> Path:
    os.environ[f"DEMO_TOKEN_{name.upper()}"] = token_out
    dial = f'endpoint = "{endpoint}"\ninitiate = true\n' if endpoint else "initiate = false\n"
    config = f"""
[peer]
issuer = "https://{name}.demo.example"
listen = "127.0.0.1:0"
store = "sqlite:///{name}.db"
signing_keys = "{name}.jwks.json"
allow_insecure_loopback = true

[[partners]]
name = "{other}"
issuer = "https://{other}.demo.example"
audience = "https://{other}.demo.example"
jwks = "{other}.public.json"
{dial}transport = "websocket"

[partners.auth]
bearer = "env:DEMO_TOKEN_{name.upper()}"

[partners.inbound]
bearer_sha256 = "{hashlib.sha256(token_in.encode()).hexdigest()}"
"""
    path = folder / f"{name}.toml"
    path.write_text(config)
    return path


def make_keys(folder: Path, name: str) -> None:
    """A private JWK Set for ``name`` and its public half for the other node."""
    private = generate_private_jwks("ES256")
    (folder / f"{name}.jwks.json").write_text(json.dumps(private))
    (folder / f"{name}.public.json").write_text(json.dumps(public_jwks(private)))


class Round:
    """One exchange's outcome: SETs each way, acked, received, rate and latency."""

    def __init__(self, label: str, count: int) -> None:
        self.label = label
        self.count = count
        self.latencies: list[float] = []
        self.received = {"a": 0, "b": 0}
        self.acked = 0
        self.elapsed = 0.0

    @property
    def ok(self) -> bool:
        return sum(self.received.values()) == 2 * self.count and self.acked == 2 * self.count

    def row(self) -> str:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1000 if lat else float("nan")
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
        rate = sum(self.received.values()) / self.elapsed if self.elapsed else 0.0
        return (
            f"{self.label:<28} {2 * self.count:>6} {self.acked:>6} {rate:>9,.0f} "
            f"{p50:>9.1f} {p99:>9.1f}"
        )


async def exchange(a: Peer, b: Peer, count: int, rate: float, label: str) -> Round:
    """``count`` SETs each way at once, paced at ``rate`` per second (0: as fast as
    possible); each application marks what it receives done."""
    result = Round(label, count)
    sent_at: dict[str, float] = {}
    acked_before = a.stats()["b"]["acked"] + b.stats()["a"]["acked"]

    async def consume(node: Peer, name: str) -> None:
        async for rx in node.receive():
            result.latencies.append(time.perf_counter() - sent_at.get(rx.jti, time.perf_counter()))
            result.received[name] += 1
            await rx.done()

    async def produce(node: Peer, to: str) -> None:
        interval = 1.0 / rate if rate else 0.0
        start = time.perf_counter()
        for i in range(count):
            jti = f"{to}-{i}-{secrets.token_hex(4)}"
            sent_at[jti] = time.perf_counter()
            await node.publish(
                to,
                {
                    SESSION_REVOKED: {
                        "initiating_entity": "policy",
                        "event_timestamp": int(time.time()),
                    }
                },
                sub_id={"format": "email", "email": f"user{i}@{to}.example"},
                jti=jti,
            )
            if interval:
                delay = start + (i + 1) * interval - time.perf_counter()
                if delay > 0:
                    await anyio.sleep(delay)

    def progress(end: str = "") -> None:
        acked = a.stats()["b"]["acked"] + b.stats()["a"]["acked"] - acked_before
        print(
            f"\r{label}: acked {acked:>6}/{2 * count}  "
            f"received a {result.received['a']:>6} b {result.received['b']:>6}",
            end=end,
            flush=True,
        )

    started = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(consume, a, "a")
        tg.start_soon(consume, b, "b")
        async with anyio.create_task_group() as producers:
            producers.start_soon(produce, a, "b")
            producers.start_soon(produce, b, "a")
            while sum(result.received.values()) < 2 * count:
                progress()
                if time.perf_counter() - started > 120:
                    break
                await anyio.sleep(0.1)
        await a.flush(timeout=30)
        await b.flush(timeout=30)
        result.elapsed = time.perf_counter() - started
        tg.cancel_scope.cancel()
    progress("\n")
    result.acked = a.stats()["b"]["acked"] + b.stats()["a"]["acked"] - acked_before
    return result


async def run(count: int, rate: float, paced_count: int) -> int:
    with tempfile.TemporaryDirectory(prefix="setpeer-demo-") as tmp:
        folder = Path(tmp)
        token_ab, token_ba = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        # b first (it listens); a's config needs b's URL.
        make_keys(folder, "a")
        make_keys(folder, "b")
        b_conf = write_node(folder, "b", "a", endpoint=None, token_out=token_ba, token_in=token_ab)
        async with Peer(load_config(b_conf)) as b:
            a_conf = write_node(
                folder,
                "a",
                "b",
                endpoint=b.url.replace("http", "ws", 1) + "/pushpull",
                token_out=token_ab,
                token_in=token_ba,
            )
            async with Peer(load_config(a_conf)) as a:
                print(f"a {a.url}  <->  b {b.url}  (WebSocket, subprotocol pushpull)")
                rounds = [await exchange(a, b, count, 0, "saturated (no pacing)")]
                if paced_count and rate:
                    label = f"paced, {rate:g} SETs/s each way"
                    rounds.append(await exchange(a, b, paced_count, rate, label))
        print(f"\n{'run':<28} {'sent':>6} {'acked':>6} {'SETs/s':>9} {'p50 ms':>9} {'p99 ms':>9}")
        for result in rounds:
            print(result.row())
        print(
            "saturated: publish outruns delivery, so latency is time spent queued; "
            "paced: the latency of one SET at a steady rate"
        )
        if not all(result.ok for result in rounds):
            print("demo FAILED: not every SET arrived and was acked", file=sys.stderr)
            return 1
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000, help="SETs each way, saturated run")
    parser.add_argument(
        "--rate", type=float, default=100, help="SETs/s each way of the paced run (0: none)"
    )
    parser.add_argument(
        "--paced-count", type=int, default=300, help="SETs each way of the paced run (0: none)"
    )
    args = parser.parse_args()
    return anyio.run(run, args.count, args.rate, args.paced_count)


if __name__ == "__main__":
    sys.exit(main())
