"""Every delivery mode between two real nodes, both directions at once.

Node ``a`` sends to ``b`` by one mode and ``b`` sends to ``a`` by another: push-pull
over WebSocket or HTTP, RFC 8935 push, multi-push, RFC 8936 poll. Real uvicorn
servers on loopback, real clients, SQLite stores; every SET reaches the other
application exactly once, is acknowledged, and nothing stays pending or in flight.
"""

from __future__ import annotations

import logging
import re
import socket
from pathlib import Path

import pytest

from peer import Peer
from tests.peers import NodeFiles, exchange_both_ways, make_pair, write_config
from tests.timing import MS

# Every pair of modes, 500 SETs each way: about a minute and a half in all.
pytestmark = pytest.mark.slow

MODES = ["pushpull-ws", "pushpull-http", "push", "multipush", "poll"]
COUNT = 500

# Short timings so that a poll redelivery or a retry never stalls a test.
LIMITS = {"reconnect_initial": 0.05, "reconnect_max": 0.5, "long_poll_timeout": 2.0}


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free ports: all held open until all are chosen (picked one
    after another, the system may hand out the port it just took back)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _partner_lines(
    send: str, receive: str, *, other_url: str, dials: bool, transport: str
) -> tuple[str | None, str, str]:
    """(push-pull endpoint or None, transport, extra partner lines) for one side."""
    lines = [
        f'send_via = "{send.split("-")[0]}"',
        f'receive_via = "{receive.split("-")[0]}"',
    ]
    if send == "push":
        lines.append(f'push_endpoint = "{other_url}/events"')
    if send == "multipush":
        lines.append(f'multipush_endpoint = "{other_url}/multipush"')
    if receive == "poll":
        lines.append(f'poll_endpoint = "{other_url}/poll"')
    endpoint = None
    if dials:
        scheme = "ws" if transport == "websocket" else "http"
        endpoint = other_url.replace("http", scheme, 1) + "/pushpull"
    return endpoint, transport, "\n".join(lines) + "\n"


def _allowed(a_to_b: str, b_to_a: str) -> bool:
    # One push-pull session carries both directions: it cannot be WebSocket one way
    # and HTTP the other.
    return {a_to_b, b_to_a} != {"pushpull-ws", "pushpull-http"}


PAIRS = [(x, y) for x in MODES for y in MODES if _allowed(x, y)]


def _configs(tmp: Path, a_to_b: str, b_to_a: str) -> tuple[NodeFiles, NodeFiles, dict[str, str]]:
    a, b = make_pair(tmp)
    ports = dict(zip(("a", "b"), _free_ports(2), strict=True))
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    pushpull = [m for m in (a_to_b, b_to_a) if m.startswith("pushpull")]
    transport = "http" if "pushpull-http" in pushpull else "websocket"
    # a dials b for push-pull (both directions ride on that one session).
    a_endpoint, _, a_extra = _partner_lines(
        a_to_b, b_to_a, other_url=urls["b"], dials=bool(pushpull), transport=transport
    )
    _, _, b_extra = _partner_lines(
        b_to_a, a_to_b, other_url=urls["a"], dials=False, transport=transport
    )
    write_config(
        a,
        b,
        endpoint=a_endpoint,
        transport=transport,
        limits=LIMITS,
        extra_partner=a_extra,
        listen=f"127.0.0.1:{ports['a']}",
    )
    write_config(
        b,
        a,
        transport=transport,
        limits=LIMITS,
        extra_partner=b_extra,
        listen=f"127.0.0.1:{ports['b']}",
    )
    return a, b, urls


@pytest.mark.parametrize(("a_to_b", "b_to_a"), PAIRS, ids=[f"{x}_to_{y}" for x, y in PAIRS])
async def test_matrix_both_directions(
    tmp_path: Path, a_to_b: str, b_to_a: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PUSH-12, MP-7, POLL-7/11, PP-22: 500 SETs each way, each delivered once, acked.

    And never a 429 between two nodes with default limits: a node's own sender, however
    it sends and receives, stays within a partner's default ``max_sessions`` (8 pushes
    beside a WebSocket or a poll made 9 sessions against a cap of 8, and every push
    paused a second for Retry-After, again and again)."""
    from peer.config import load_config

    _configs(tmp_path, a_to_b, b_to_a)
    caplog.set_level(logging.INFO, logger="setpeer")
    async with (
        Peer(load_config(tmp_path / "b.toml")) as b,
        Peer(load_config(tmp_path / "a.toml")) as a,
    ):
        await exchange_both_ways(a, b, COUNT, timeout=60_000 * MS)
    # A 429 status, not a port that ends in 429.
    refused = [
        r.getMessage() for r in caplog.records if re.search(r"(?<!\d)429(?!\d)", r.getMessage())
    ]
    assert refused == [], refused[:3]
