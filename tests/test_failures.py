"""Failures in both directions: ``Peer.failures()``, the store's ring, ``setpeer
failures`` and the ``unhandled`` / ``refused`` counts of ``setpeer status``.

Real nodes on loopback with SQLite files; the commands run as real subprocesses.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import anyio
import pytest

from peer import Peer
from peer.config import load_config
from peer.protocol.effects import Failed
from peer.store import open_store
from peer.store.base import InboundNew, OutboundNew, RefusalNew
from tests.cli import setpeer as _setpeer
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.test_metrics import scrape
from tests.timing import MS, seconds


async def _wait_for(condition: object, timeout: float = 20_000 * MS) -> None:
    with anyio.fail_after(timeout):
        while not condition():  # type: ignore[operator]  # noqa: ASYNC110 - polling stats
            await anyio.sleep(10 * MS)


async def test_refused_sets_are_kept_in_both_directions_and_survive_a_restart(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """a signs for the wrong audience: b refuses each SET (invalid_audience) and keeps
    the newest ``failures_kept`` = 3 as inbound failures with the description; a
    keeps all 5 as outbound failures with b's description and their time. b's SETs
    to a, not yet done, count as a's ``unhandled``. After a restart b holds the same
    three, read from its store."""
    caplog.set_level(logging.INFO, logger="setpeer")
    a_files, b_files = make_pair(tmp_path)
    b_config = write_config(b_files, a_files, limits={"failures_kept": 3})
    started = time.time()
    async with Peer(b_config) as b:
        endpoint = b.url.replace("http://", "ws://", 1) + "/pushpull"
        write_config(a_files, b_files, endpoint=endpoint)
        a_toml = tmp_path / "a.toml"
        a_toml.write_text(
            a_toml.read_text().replace(
                f'audience = "{b_files.issuer}"', 'audience = "https://elsewhere.example"'
            )
        )
        async with Peer(load_config(a_toml)) as a:
            jtis = [await a.publish("b", {SESSION_REVOKED: {}}) for _ in range(5)]
            for _ in range(2):
                await b.publish("a", {SESSION_REVOKED: {}})
            await a.flush(timeout=seconds(20))
            await b.flush(timeout=seconds(20))
            await _wait_for(lambda: a.stats()["b"]["received"] == 2)

            outbound = a.failures()
            assert [f.jti for f in outbound] == jtis
            assert {(f.partner, f.direction, f.err) for f in outbound} == {
                ("b", "outbound", "invalid_audience")
            }
            assert all(f.description and started <= f.at <= time.time() for f in outbound)
            assert a.stats()["b"]["failed"] == 5
            on_a, on_b = await scrape(a), await scrape(b)
            by_reason = (("partner", "b"), ("reason", "invalid_audience"))
            assert on_a[("setpeer_sets_failed_by_reason_total", by_reason)] == 5
            by_reason = (("partner", "a"), ("reason", "invalid_audience"))
            assert on_b[("setpeer_sets_rejected_total", by_reason)] == 5
            assert (a.stats()["b"]["unhandled"], a.stats()["b"]["refused"]) == (2, 0)

            inbound = b.failures()
            assert [f.jti for f in inbound] == jtis[2:]  # the ring: newest three
            assert {(f.partner, f.direction, f.err) for f in inbound} == {
                ("a", "inbound", "invalid_audience")
            }
            assert inbound[0].description == outbound[2].description  # b's words, both sides
            assert (b.stats()["a"]["refused"], b.stats()["a"]["unhandled"]) == (5, 0)
        kept = [(f.jti, f.description, f.at) for f in b.failures()]

    # The refusal log line: the first at once, with its jti and description.
    refusal_lines = [r.getMessage() for r in caplog.records if "rejected" in r.getMessage()]
    assert refusal_lines and f"jti={jtis[0]}" in refusal_lines[0]
    assert f"description={inbound[0].description!r}" in refusal_lines[0]
    failed_lines = [r.getMessage() for r in caplog.records if " failed err=" in r.getMessage()]
    assert len(failed_lines) == 5 and "description=" in failed_lines[0]

    async with Peer(b_config) as b:
        assert [(f.jti, f.description, f.at) for f in b.failures()] == kept
        assert b.stats()["a"]["refused"] == 5
        store = await open_store(b_config.store, base_dir=b_config.config_dir)
        try:
            assert [r.jti for r in await store.refusals()] == jtis[2:]
        finally:
            await store.aclose()


async def test_failures_are_one_list_ordered_by_time(tmp_path: Path) -> None:
    """Peer.failures(): every partner, both directions, oldest first by ``at``; the
    in-memory ring keeps ``failures_kept`` of both directions together."""
    a_files, b_files = make_pair(tmp_path)
    config = write_config(b_files, a_files, limits={"failures_kept": 4})
    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        await store.enqueue([OutboundNew("a", f"out{i}", "t") for i in range(3)])
        for i in range(3):
            await store.apply("a", [Failed(f"out{i}", "invalid_key", "kid")])
            await store.record_refusals([RefusalNew("a", f"in{i}", "e", "d", time.time())], 10)
    finally:
        await store.aclose()
    async with Peer(config) as b:
        failures = b.failures()
        assert [f.jti for f in failures] == ["in0", "out1", "in1", "out2", "in2"][-4:]
        assert [f.at for f in failures] == sorted(f.at for f in failures)


# -- the commands ------------------------------------------------------------------

HOSTILE = "line\nbreak \x1b[2J\u2028 ünï"


async def test_failures_and_status_commands(tmp_path: Path) -> None:
    """``setpeer failures`` reads the store, oldest first, one escaped line each (or
    JSON lines), ``--since`` filters; a bad --since exits 2, a missing store 1 and is
    not created. ``setpeer status`` shows unhandled and refused."""
    a_files, b_files = make_pair(tmp_path)
    config = write_config(b_files, a_files)
    toml = str(tmp_path / "b.toml")
    db = tmp_path / "b.db"

    missing = _setpeer("failures", "-c", toml)
    assert missing.returncode == 1, missing.stderr
    assert missing.stdout == "" and len(missing.stderr.splitlines()) == 1
    assert "no store at" in missing.stderr and not db.exists()

    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        await store.enqueue([OutboundNew("a", "o1", "t")])
        await store.apply("a", [Failed("o1", "invalid_key", "no key 'k1'")])
        (failed,) = await store.failures()
        later = failed.at + 100
        await store.record_refusals(
            [RefusalNew("a", "r1", "invalid_request", HOSTILE, later)], 10, dropped={"a": 2}
        )
        await store.accept_inbound("a", [InboundNew(a_files.issuer, "i1", "t", {})], [])
    finally:
        await store.aclose()

    text, as_json, since, bad, status = [
        _setpeer(*args)
        for args in (
            ("failures", "-c", toml),
            ("failures", "-c", toml, "--json"),
            ("failures", "-c", toml, "--json", "--since", str(later - 1)),
            ("failures", "-c", toml, "--since", "yesterday"),
            ("status", "-c", toml, "--json"),
        )
    ]
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split("  ")[1:] == ["outbound", "a", "o1", "invalid_key", "no key 'k1'"]
    assert lines[0].startswith(time.strftime("%Y-", time.gmtime(failed.at)))
    assert lines[0].split("  ")[0].endswith("Z")
    assert lines[1].split("  ")[1:5] == ["inbound", "a", "r1", "invalid_request"]
    assert "\\n" in lines[1] and "\\x1b" in lines[1] and "\\u2028" in lines[1]
    assert "\x1b" not in text.stdout and "\u2028" not in text.stdout

    rows = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(r["direction"], r["jti"]) for r in rows] == [("outbound", "o1"), ("inbound", "r1")]
    assert set(rows[0]) == {"direction", "partner", "jti", "err", "description", "at"}
    assert rows[1]["description"] == HOSTILE and rows[1]["at"] == later
    assert [json.loads(line)["jti"] for line in since.stdout.splitlines()] == ["r1"]

    assert bad.returncode == 2 and bad.stdout == ""
    assert len(bad.stderr.splitlines()) == 1 and "--since" in bad.stderr

    assert status.returncode == 0, status.stderr
    entry = json.loads(status.stdout)["a"]
    assert (entry["refused"], entry["unhandled"], entry["failed"]) == (3, 1, 1)
