"""``setpeer receive``: through the running node's local interface, or from the store;
each SET marked done once its line is read, ``| head -n 5`` marks exactly five."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from peer import Peer
from peer.store import open_store
from tests.local.helpers import running_pair
from tests.peers import SESSION_REVOKED
from tests.timing import seconds

SETPEER = f"{shlex.quote(sys.executable)} -m peer"


async def _setpeer(command: str) -> subprocess.CompletedProcess[bytes]:
    """``command`` in bash (pipes allowed, pipefail on), without blocking the loop."""
    return await anyio.run_process(
        ["bash", "-c", f"set -o pipefail; {command}"],
        check=False,
        env=os.environ,
    )


async def _undone(folder: Path) -> list[str]:
    store = await open_store("sqlite:///b.db", base_dir=folder)
    try:
        return [row.jti for row in await store.fetch_inbox(after_seq=0, limit=1000)]
    finally:
        await store.aclose()


async def _fill(a: Peer, b: Peer, count: int) -> list[str]:
    jtis = [await a.publish("b", {SESSION_REVOKED: {}}, jti=f"r-{i}") for i in range(count)]
    await a.flush(timeout=seconds(10))
    with anyio.fail_after(seconds(10)):
        while b.stats()["a"]["unhandled"] < count:  # noqa: ASYNC110
            await anyio.sleep(0.01)
    return jtis


@pytest.mark.slow
async def test_follow_into_head_marks_exactly_what_was_printed(tmp_path: Path) -> None:
    """Through b's interface: ``--follow | head -n 5`` prints five, exits 0, and those
    five (no sixth) are done; then, with b stopped, from the store: the other five,
    ``--keep`` prints without marking, a second run prints nothing."""
    config = tmp_path / "b.toml"
    async with running_pair(tmp_path) as (a, b):
        jtis = await _fill(a, b, 10)
        with anyio.fail_after(seconds(30)):
            # The reader starts late: every line could sit in the pipe before it reads
            # one, and marking a line done once written would mark all ten.
            command = f"{SETPEER} receive -c {config} --follow | (sleep 0.5; head -n 5)"
            done = await _setpeer(command)
        assert done.returncode == 0, done.stderr
        printed = [json.loads(line) for line in done.stdout.splitlines()]
        assert [item["jti"] for item in printed] == jtis[:5]
        assert set(printed[0]) == {"seq", "partner", "jti", "claims", "token"}
        assert printed[0]["partner"] == "a" and printed[0]["claims"]["jti"] == jtis[0]
        assert done.stderr == b""
        with anyio.fail_after(seconds(5)):
            while b.stats()["a"]["unhandled"] != 5:  # noqa: ASYNC110
                await anyio.sleep(0.01)
    assert await _undone(tmp_path) == jtis[5:]
    kept = await _setpeer(f"{SETPEER} receive -c {config} --keep")
    assert kept.returncode == 0, kept.stderr
    assert [json.loads(line)["jti"] for line in kept.stdout.splitlines()] == jtis[5:]
    rest = await _setpeer(f"{SETPEER} receive -c {config}")
    assert [json.loads(line)["jti"] for line in rest.stdout.splitlines()] == jtis[5:]
    assert await _undone(tmp_path) == []
    again = await _setpeer(f"{SETPEER} receive -c {config}")
    assert (again.returncode, again.stdout) == (0, b"")


async def test_a_file_gets_every_line_and_each_is_done(tmp_path: Path) -> None:
    """Through the interface into a file (no pipe to wait on): all of them, done."""
    async with running_pair(tmp_path) as (a, b):
        jtis = await _fill(a, b, 3)
        out = tmp_path / "out.jsonl"
        result = await _setpeer(f"{SETPEER} receive -c {tmp_path / 'b.toml'} > {out}")
        assert result.returncode == 0, result.stderr
        assert [json.loads(line)["jti"] for line in out.read_text().splitlines()] == jtis
        assert b.stats()["a"]["unhandled"] == 0


async def test_refusals_are_one_line(tmp_path: Path) -> None:
    """A webhook configured (exit 2), no store yet, a memory store (exit 1)."""
    (tmp_path / "keys.json").write_text('{"keys": []}')
    from tests.peers import make_pair, write_config

    a, b = make_pair(tmp_path)
    write_config(b, a)
    config = tmp_path / "b.toml"
    missing = await _setpeer(f"{SETPEER} receive -c {config}")
    assert missing.returncode == 1
    assert missing.stderr.decode().count("\n") == 1 and b"no store at" in missing.stderr
    assert not (tmp_path / "b.db").exists()  # not created
    text = config.read_text()
    config.write_text(text.replace('store = "sqlite:///b.db"', 'store = "memory://"'))
    memory = await _setpeer(f"{SETPEER} receive -c {config}")
    assert memory.returncode == 1 and b"memory://" in memory.stderr
    hooked = text.replace("[peer.app]\n", '[peer.app]\ndeliver = "http://127.0.0.1:9/hook"\n')
    config.write_text(hooked)
    webhook = await _setpeer(f"{SETPEER} receive -c {config}")
    assert webhook.returncode == 2
    assert webhook.stderr.decode().count("\n") == 1 and b"[peer.app] deliver" in webhook.stderr
