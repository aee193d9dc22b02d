"""`setpeer status` tells the truth: whether the node runs (its local interface, else
its heartbeat in the store, never stale session rows), read-only on the store, the
newest failures with their reasons, and `--watch`.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from peer import Peer
from peer.local.heartbeat import STALE, node_view
from peer.protocol.effects import Failed
from peer.store import open_store
from peer.store.base import NodeRow, OutboundNew, RefusalNew
from tests.cli import setpeer
from tests.peers import make_pair, write_config
from tests.timing import MS, seconds

HOSTILE = "bad\n2025-01-01 INFO forged line \x1b[2J\u2028"


def one_line_error(out: subprocess.CompletedProcess[str], code: int) -> str:
    assert out.returncode == code, (out.returncode, out.stderr)
    assert out.stdout == "" and len(out.stderr.splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr


def test_node_view_rests_on_fresh_beats_of_live_processes() -> None:
    """Running: a fresh beat and, on this host, a live process. A dead pid or an old
    beat is not running; another host's fresh beat is trusted."""
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    host, now = socket.gethostname(), time.time()
    ours = NodeRow("me", host, os.getpid(), now - 60, now - 1)
    assert node_view([ours], now)["running"] is True
    assert node_view([NodeRow("x", host, dead.pid, 0, now)], now)["running"] is False
    assert node_view([ours], now + STALE + 1)["running"] is False
    elsewhere = NodeRow("y", host + "-other", dead.pid, 0, now)
    view = node_view([elsewhere, NodeRow("x", host, dead.pid, 0, now - 5)], now)
    assert view["running"] is True and [n["owner"] for n in view["nodes"]] == ["y"]
    assert view["last_beat"] == now
    assert node_view([], now) == {"running": False, "nodes": [], "last_beat": None}


@pytest.mark.slow
async def test_status_after_sigkill_says_not_running(tmp_path: Path) -> None:
    """`setpeer run` killed with SIGKILL leaves its session row at "websocket" and its
    socket file; status says the node is not running and shows the session down."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        write_config(a_files, b_files, endpoint=endpoint)
        toml = str(tmp_path / "a.toml")
        process = subprocess.Popen(
            [sys.executable, "-m", "peer", "run", "-c", toml],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert process.stdout is not None
            assert process.stdout.readline().startswith("setpeer listening on ")
            with anyio.fail_after(seconds(20)):
                while True:
                    live = await anyio.to_thread.run_sync(setpeer, "status", "-c", toml)
                    if " websocket " in live.stdout:
                        break
                    await anyio.sleep(50 * MS)
            assert live.stdout.startswith("node: running"), live.stdout
        finally:
            process.kill()
            process.wait(timeout=seconds(30))
            assert process.stdout is not None
            process.stdout.close()
        assert (tmp_path / "a.sock").exists()  # left behind, answers no one
        stale = sqlite3.connect(tmp_path / "a.db").execute("SELECT state FROM sessions")
        assert stale.fetchall() == [("websocket",)]

        text, as_json = [
            await anyio.to_thread.run_sync(setpeer, *args)
            for args in (("status", "-c", toml), ("status", "-c", toml, "--json"))
        ]
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith("node: not running (last heartbeat "), lines
    assert lines[2].split()[:4] == ["b", "down", "(not", "running)"], lines
    entry = json.loads(as_json.stdout)["b"]
    assert (entry["session"], entry["running"], entry["reasons"]) == ("down", False, [])


async def test_status_is_read_only_and_shows_reasons(tmp_path: Path) -> None:
    """No store: one line, exit 1, nothing created; memory:// likewise; an older
    schema is not upgraded. A store with failures shows the newest, escaped."""
    a_files, b_files = make_pair(tmp_path)
    config = write_config(b_files, a_files)
    toml = str(tmp_path / "b.toml")
    db = tmp_path / "b.db"
    assert "no store at" in one_line_error(setpeer("status", "-c", toml), 1)
    assert not db.exists()
    bad = setpeer("status", "-c", toml, "--interval", "0")
    assert "--interval" in one_line_error(bad, 2)

    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 5")
    conn.close()
    assert "schema version 5" in one_line_error(setpeer("status", "-c", toml), 1)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone() == (5,)
    db.unlink()

    store = await open_store(config.store, base_dir=config.config_dir)
    try:
        await store.enqueue([OutboundNew("a", "o1", "t")])
        await store.apply("a", [Failed("o1", "invalid_key", "no key 'k1'")])
        (failed,) = await store.failures()
        await store.record_refusals(
            [RefusalNew("a", f"r{i}", "invalid_request", HOSTILE, failed.at + i) for i in (1, 2)],
            10,
        )
    finally:
        await store.aclose()
    text, as_json = setpeer("status", "-c", toml), setpeer("status", "-c", toml, "--json")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "node: not running (no heartbeat in the store)"
    assert lines[3] == "recent failures (newest first per partner):"
    assert [line.split("  ")[2:4] for line in lines[4:]] == [
        ["a", "inbound"],
        ["a", "inbound"],
        ["a", "outbound"],
    ]
    assert "jti r2" in lines[4] and "\\n" in lines[4] and "\\x1b" in lines[4]
    assert "\x1b" not in text.stdout and "\u2028" not in text.stdout
    reasons = json.loads(as_json.stdout)["a"]["reasons"]
    assert [(r["direction"], r["jti"]) for r in reasons] == [
        ("inbound", "r2"),
        ("inbound", "r1"),
        ("outbound", "o1"),
    ]
    assert reasons[0]["description"] == HOSTILE and reasons[2]["err"] == "invalid_key"

    memory = tmp_path / "m.toml"
    memory.write_text(Path(toml).read_text().replace('"sqlite:///b.db"', '"memory://"'))
    assert "memory://" in one_line_error(setpeer("status", "-c", str(memory)), 1)


def _read_until(fd: int, marker: bytes, count: int) -> bytes:
    """Bytes from ``fd`` until ``marker`` was seen ``count`` times."""
    data = b""
    deadline = time.monotonic() + seconds(20)
    while data.count(marker) < count:
        assert time.monotonic() < deadline, data
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 65536)
            assert chunk, data
            data += chunk
    return data


def test_watch_redraws_and_ends_on_ctrl_c(tmp_path: Path) -> None:
    """--watch: on a terminal each turn clears and redraws; into a pipe, blocks follow
    one another; Ctrl-C (SIGINT) exits 0 either way."""
    a_files, b_files = make_pair(tmp_path)
    write_config(b_files, a_files)
    (tmp_path / "b.db").write_bytes(b"")  # not a database: shown, read again next turn
    command = [sys.executable, "-m", "peer", "status", "-c", str(tmp_path / "b.toml")]
    command += ["--watch", "--interval", "0.1"]

    piped = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert piped.stdout is not None
    data = _read_until(piped.stdout.fileno(), b"Ctrl-C ends", 2)
    piped.send_signal(signal.SIGINT)
    assert piped.wait(timeout=seconds(20)) == 0
    piped.stdout.close()
    assert piped.stderr is not None and b"Traceback" not in piped.stderr.read()
    piped.stderr.close()
    assert b"\x1b" not in data and b"setpeer status: " in data

    main, child = pty.openpty()
    try:
        tty = subprocess.Popen(command, stdout=child, stderr=subprocess.DEVNULL)
        os.close(child)
        data = _read_until(main, b"\x1b[H\x1b[2J", 2)
        tty.send_signal(signal.SIGINT)
        assert tty.wait(timeout=seconds(20)) == 0
    finally:
        os.close(main)
