"""Secrets on disk are private: ``keygen -o`` writes 0600, new SQLite files are 0600,
and ``check-config`` / ``run`` warn about key and store files others may read."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

from peer.store import open_store
from tests.peers import make_pair, write_config
from tests.timing import seconds


def setpeer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peer", *args],
        capture_output=True,
        text=True,
        timeout=seconds(60),
        cwd=cwd,
        preexec_fn=lambda: os.umask(0o022),  # the usual umask: new files 0644
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keygen_output_file_is_private_and_not_overwritten(tmp_path: Path) -> None:
    key = tmp_path / "key.json"
    assert setpeer("keygen", "-o", str(key)).returncode == 0
    assert mode(key) == 0o600
    assert json.loads(key.read_text())["keys"][0]["d"]
    first = key.read_text()
    again = setpeer("keygen", "-o", str(key))
    assert again.returncode == 1 and "exists" in again.stderr
    assert key.read_text() == first
    key.chmod(0o644)
    assert setpeer("keygen", "-o", str(key), "--force").returncode == 0
    assert mode(key) == 0o600 and key.read_text() != first


def test_keygen_stdout_still_works_with_a_hint(tmp_path: Path) -> None:
    out = setpeer("keygen")
    assert out.returncode == 0
    assert json.loads(out.stdout)["keys"][0]["d"]
    assert "-o FILE" in out.stderr


async def test_new_sqlite_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        store = await open_store(f"sqlite:///{tmp_path / 'n.db'}")
        await store.aclose()
    finally:
        os.umask(old)
    assert mode(tmp_path / "n.db") == 0o600
    for suffix in ("-wal", "-shm"):
        extra = tmp_path / f"n.db{suffix}"
        assert not extra.exists() or mode(extra) == 0o600


def test_check_config_and_run_warn_about_readable_secrets(tmp_path: Path) -> None:
    a, b = make_pair(tmp_path)
    write_config(b, a)
    config = str(tmp_path / "b.toml")
    key = tmp_path / "b.jwks.json"
    key.chmod(0o644)
    out = setpeer("check-config", "-c", config)
    assert out.returncode == 0, out.stderr
    assert f"warning: {key} is readable by group or others (mode 0644)" in out.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "peer", "run", "-c", config],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith("setpeer listening on ")
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=seconds(30)) == 0
    stderr = process.stderr.read()
    process.stdout.close()
    process.stderr.close()
    assert f"WARNING setpeer {key} is readable" in stderr
    # The store run created is private; with the key fixed, no warning is left.
    assert mode(tmp_path / "b.db") == 0o600
    key.chmod(0o600)
    out = setpeer("check-config", "-c", config)
    assert out.returncode == 0 and "warning" not in out.stderr, out.stderr
