"""``setpeer send`` for scripts: its own ``--jti`` for safe retries, sizes refused
before they are stored, exit statuses; and a command loads only its own module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.timing import seconds

ROOT = Path(__file__).resolve().parents[1]


def setpeer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "peer", *args],
        capture_output=True,
        text=True,
        timeout=seconds(60),
        cwd=ROOT,
    )


def status(config: Path) -> dict[str, dict[str, object]]:
    out = setpeer("status", "-c", str(config), "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_send_retried_with_its_jti_exits_3_and_stores_once(tmp_path: Path) -> None:
    """PP-25: a jti is never reused; a script's retry is told the first was stored."""
    a_files, b_files = make_pair(tmp_path)
    write_config(a_files, b_files, endpoint="ws://127.0.0.1:9/pushpull")
    config = str(tmp_path / "a.toml")
    send = ("send", "-c", config, "--to", "b", "--event", SESSION_REVOKED, "--jti", "evt-1")
    first = setpeer(*send)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "evt-1"
    again = setpeer(*send, "--payload", '{"initiating_entity": "admin"}')
    assert again.returncode == 3
    assert again.stdout == ""
    assert "already has a SET with jti 'evt-1'" in again.stderr
    assert status(tmp_path / "a.toml")["b"]["pending"] == 1


def test_send_refuses_a_set_over_max_set_bytes(tmp_path: Path) -> None:
    a_files, b_files = make_pair(tmp_path)
    write_config(a_files, b_files, endpoint="ws://127.0.0.1:9/pushpull")
    config = str(tmp_path / "a.toml")
    payload = json.dumps({"reason_admin": {"en": "x" * 70_000}})
    out = setpeer(
        "send", "-c", config, "--to", "b", "--event", SESSION_REVOKED, "--payload", payload
    )
    assert out.returncode == 1
    assert "over its max_set_bytes (65536); not stored" in out.stderr
    long_jti = setpeer(
        "send", "-c", config, "--to", "b", "--event", SESSION_REVOKED, "--jti", "j" * 70_000
    )
    assert long_jti.returncode == 1 and "max_set_bytes" in long_jti.stderr
    empty_jti = setpeer("send", "-c", config, "--to", "b", "--event", SESSION_REVOKED, "--jti", "")
    assert empty_jti.returncode == 2 and "jti" in empty_jti.stderr  # a usage problem
    # Nothing stored: the store was not even created (status reads, never creates).
    assert not (tmp_path / "a.db").exists()


def test_a_command_imports_only_its_own_module(tmp_path: Path) -> None:
    """``status`` does not load the node, the transports or joserfc (it starts in
    about half the time); ``--help`` still lists every command."""
    a_files, b_files = make_pair(tmp_path)
    write_config(a_files, b_files)
    assert setpeer("migrate", "-c", str(tmp_path / "a.toml")).returncode == 0  # status reads one
    script = textwrap.dedent(f"""
        import contextlib, io, sys
        from peer.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["status", "-c", {str(tmp_path / "a.toml")!r}]) == 0
        heavy = ("peer.node", "peer.server.serve", "joserfc", "uvicorn", "httpx")
        print(",".join(m for m in heavy if m in sys.modules))
    """)
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=seconds(60),
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
    usage = setpeer("--help")
    for command in ("run", "migrate", "keygen", "check-config", "send", "sign", "status", "verify"):
        assert command in usage.stdout
    typo = setpeer("stauts")
    assert typo.returncode == 2 and "invalid choice" in typo.stderr and "status" in typo.stderr
