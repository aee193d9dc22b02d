"""``GET /metrics``: Prometheus text that matches ``stats()`` and ``status``.

Two real nodes exchange SETs; ``/metrics`` is scraped with a plain HTTP client while
SETs flow and after, parsed with prometheus-client's own parser, and compared with
``node.stats()`` and ``setpeer status --json``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from peer import Peer
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.timing import MS, seconds


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels)."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


async def scrape(node: Peer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient() as client:
        reply = await client.get(node.url + "/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    return samples(reply.text)


@pytest.mark.slow
async def test_metrics_match_stats_and_status(tmp_path: Path) -> None:
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        async with Peer(write_config(a_files, b_files, endpoint=endpoint)) as a:
            count = 300

            async def consume() -> None:
                async for rx in b.receive():
                    await rx.done()

            async with anyio.create_task_group() as tg:
                tg.start_soon(consume)
                for i in range(count):
                    await a.publish("b", {SESSION_REVOKED: {}})
                    if i == count // 2:
                        during = await scrape(a)  # mid-stream: well-formed, plausible
                        acked = during[("setpeer_sets_acked_total", (("partner", "b"),))]
                        assert 0 <= acked <= count
                with anyio.fail_after(30_000 * MS):
                    await a.flush(timeout=seconds(30))
                    while b.stats()["a"]["received"] < count:  # noqa: ASYNC110
                        await anyio.sleep(10 * MS)
                tg.cancel_scope.cancel()

            # A bad SET: a counted rejection by reason on b.
            async with httpx.AsyncClient() as client:
                reply = await client.post(
                    b.url + "/events",
                    content=b"e30.e30.sig",
                    headers={
                        "authorization": f"Bearer {a_files.token_out}",
                        "content-type": "application/secevent+jwt",
                    },
                )
            assert reply.status_code == 400
            # Kept among b's failures too, its jti unreadable.
            (refused,) = [f for f in b.failures() if f.direction == "inbound"]
            assert (refused.partner, refused.jti, refused.err) == ("a", "", "invalid_request")
            assert refused.description and b.stats()["a"]["refused"] == 1

            on_a, on_b = await scrape(a), await scrape(b)
            partner_b, partner_a = (("partner", "b"),), (("partner", "a"),)
            stats_a, stats_b = a.stats()["b"], b.stats()["a"]
            for key in ("acked", "failed", "received"):
                assert on_a[(f"setpeer_sets_{key}_total", partner_b)] == stats_a[key]
                assert on_b[(f"setpeer_sets_{key}_total", partner_a)] == stats_b[key]
            for key in ("pending", "inflight"):
                assert on_a[(f"setpeer_sets_{key}", partner_b)] == stats_a[key] == 0
            assert on_a[("setpeer_sets_acked_total", partner_b)] == count
            assert on_a[("setpeer_sets_sent_total", partner_b)] >= count
            assert on_b[("setpeer_sets_received_total", partner_a)] == count
            assert (
                on_b[
                    (
                        "setpeer_sets_rejected_total",
                        (("partner", "a"), ("reason", "invalid_request")),
                    )
                ]
                >= 1
            )
            assert on_a[("setpeer_session", (("partner", "b"), ("state", "websocket")))] == 1
            # Every SET a published was timed from publish to ack.
            assert on_a[("setpeer_publish_to_ack_seconds_count", partner_b)] == count
            assert on_a[("setpeer_store_seconds_count", (("operation", "enqueue"),))] == count
            assert on_b[("setpeer_store_seconds_count", (("operation", "accept_inbound"),))] >= 1

    # The store's view (setpeer status) agrees with what was scraped.
    status = subprocess.run(
        [sys.executable, "-m", "peer", "status", "-c", str(tmp_path / "a.toml"), "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds(60),
    )
    stored = json.loads(status.stdout)["b"]
    assert (stored["acked"], stored["pending"], stored["inflight"]) == (count, 0, 0)
