"""Bench rows over a wide-area round trip: every transport through a delaying proxy.

The pair of ``run_pair`` (two node processes, ES256, 100-SET frames) with
``scripts/delay_proxy.py`` on the path between them: the dialling side reaches the
other through the proxy (the sender for push-pull, multi-push and push; for poll the
receiver, which polls the sender). Each direction is delayed ``one_way_ms`` (25 ms by
default: a 50 ms round trip, one continent). ``scripts/bench --only wan`` runs these
rows alone, ``--wan-delay-ms`` changes the delay.

Over a round trip this long, a transport's rate is bounded by how many SETs it keeps
in flight: ``model_sets_per_s`` is that window over the round trip, beside the measured
``sets_per_s``; ``loopback_sets_per_s`` is the same pair through the proxy without
delay (the CPU's bound, this run), and ``model_serial_sets_per_s`` what the window
gives when its processing does not overlap the round trip (see :func:`serial_model`).
Windows, read from the defaults of the node:

- push-pull over WebSocket: ``limits.window`` SETs unacknowledged on one session
  (acks ride back in the partner's frames); window / RTT;
- push-pull over HTTP: ``CONCURRENT_REQUESTS`` POSTs in flight, each up to a batch,
  the answers coming back in each response; min(window, requests x batch) / RTT;
- multi-push: ``CONCURRENT_BATCHES`` POSTs in flight, a batch each; the same formula;
- poll: one poll in flight, ``maxEvents`` (a batch) SETs per response, their
  acknowledgements going out on the next poll; batch / RTT;
- RFC 8935 push: ``CONCURRENT_PUSHES`` POSTs in flight, one SET each; pushes / RTT.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from peer.config.limits import Limits  # noqa: E402
from peer.transports.http_pushpull import CONCURRENT_REQUESTS  # noqa: E402
from peer.transports.multipush_sender import CONCURRENT_BATCHES  # noqa: E402
from peer.transports.push_sender import CONCURRENT_PUSHES  # noqa: E402
from scripts.delay_proxy import proxy_thread  # noqa: E402

ONE_WAY_MS = 25.0
# A light load every transport carries over 200 ms round trips (push: ~37 SETs/s), for
# the path's latency without a queue: 3 s of it (quick), 6 s (full).
PACED_RATE = 20.0
BATCH = 100  # SETs per frame, batch and poll (max_sets_per_frame of the pair's configs)

# (row transport, run_pair mode, SETs quick, SETs full): ~2 s (quick) and ~5 s (full)
# of each at the rate it reaches here; push fewest, at ~120 SETs/s over 50 ms.
PLAN = [
    ("pushpull websocket", "websocket", 5000, 15000),
    ("pushpull http", "http", 5000, 15000),
    ("multipush", "multipush", 5000, 15000),
    ("poll", "poll", 2500, 6000),
    ("push", "push", 250, 600),
]


def window(transport: str) -> int:
    """SETs the transport keeps in flight with the node's default configuration."""
    limit = Limits().window
    return {
        "pushpull websocket": limit,
        "pushpull http": min(limit, CONCURRENT_REQUESTS * BATCH),
        "multipush": min(limit, CONCURRENT_BATCHES * BATCH),
        "poll": min(limit, BATCH),
        "push": min(limit, CONCURRENT_PUSHES),
    }[transport]


def serial_model(sets_in_flight: int, rtt: float, loopback: float) -> int | None:
    """SETs/s if each window of SETs waits a round trip and then its own processing
    (at the loopback rate), the two never overlapping: window / (RTT + window /
    loopback). Exact for a poll (one request in flight, processed before the next is
    sent) and for push (per POST); a floor for the pipelined transports, whose
    ceiling is min(window / RTT, loopback)."""
    if not loopback or not rtt:
        return None
    return round(sets_in_flight / (rtt + sets_in_flight / loopback))


def through(stack: contextlib.ExitStack, one_way: float) -> Callable[[str], str]:
    """A ``via`` for run_pair: each URL rewritten to a new proxy in front of it."""

    def via(url: str) -> str:
        parts = urlsplit(url)
        assert parts.hostname is not None and parts.port is not None, url
        proxy = stack.enter_context(proxy_thread((parts.hostname, parts.port), one_way))
        return urlunsplit(parts._replace(netloc=f"{proxy.host}:{proxy.port}"))

    return via


def bench_wan(quick: bool, one_way_ms: float = ONE_WAY_MS) -> list[dict[str, Any]]:
    """One row per transport, each run three times through the proxy in turn: without
    delay (``loopback_sets_per_s``: what the CPU allows the same pair), with it at full
    speed (the row; its p50/p99 are the queue's: every SET is published at once), and
    with it at ``PACED_RATE`` (``paced_p50_ms``/``paced_p99_ms``: publish to receive
    with no queue, the path's own latency)."""
    from scripts.bench import run_pair

    rtt = 2 * one_way_ms / 1000
    rows = []
    for transport, mode, quick_count, full_count in PLAN:
        count = quick_count if quick else full_count
        results = []
        paced = round(PACED_RATE * (3 if quick else 6))
        for delay, sets, rate in (
            (0.0, count, 0.0),
            (rtt / 2, count, 0.0),
            (rtt / 2, paced, PACED_RATE),
        ):
            with contextlib.ExitStack() as stack:
                via = through(stack, delay)
                results.append(run_pair("ES256", mode, BATCH, sets, rate, timeout=90, via=via))
        loopback, result, light = results
        sets_in_flight = window(transport)
        rows.append(
            {
                "name": f"wan {transport}",
                "transport": transport,
                "alg": "ES256",
                "one_way_ms": one_way_ms,
                "rtt_ms": 2 * one_way_ms,
                "count": count,
                "sets_per_s": result["sets_per_s"],
                "window": sets_in_flight,
                "model_sets_per_s": round(sets_in_flight / rtt) if rtt else None,
                "loopback_sets_per_s": loopback["sets_per_s"],
                "model_serial_sets_per_s": serial_model(
                    sets_in_flight, rtt, loopback["sets_per_s"]
                ),
                "p50_ms": result["p50_ms"],
                "p99_ms": result["p99_ms"],
                "paced_rate": PACED_RATE,
                "paced_p50_ms": light["p50_ms"],
                "paced_p99_ms": light["p99_ms"],
                "received": result["received"],
                "acked": result["acked"],
                "cpu_s_per_1000_sender": result["cpu_s_per_1000_sender"],
                "cpu_s_per_1000_receiver": result["cpu_s_per_1000_receiver"],
            }
        )
        print(
            f"{rows[-1]['name']}: {result['sets_per_s']} SETs/s"
            f" (loopback {loopback['sets_per_s']})",
            flush=True,
        )
    return rows
