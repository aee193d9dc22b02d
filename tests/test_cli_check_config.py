"""``setpeer check-config``: the real command in a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from peer.tokens.keys import generate_private_jwks, public_jwks
from tests.timing import seconds

SECRET = "inline-Secret-that-must-not-leak"

VALID = f"""
[peer]
issuer = "https://a.example"
listen = "127.0.0.1:0"
store = "sqlite:///a.db"
signing_keys = "a.jwks.json"
allow_insecure_loopback = true

[[partners]]
name = "b"
issuer = "https://b.example"
audience = "https://b.example"
jwks = "b.public.json"
endpoint = "ws://127.0.0.1:9443/pushpull"
initiate = true

[partners.auth]
bearer = "env:SETPEER_CLI_TEST_TOKEN"

[partners.inbound]
bearer_sha256 = "{hashlib.sha256(b"b").hexdigest()}"
"""


def check_config(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k != "SETPEER_CLI_TEST_TOKEN"}
    return subprocess.run(
        [sys.executable, "-m", "peer", "check-config", *args],
        capture_output=True,
        text=True,
        timeout=seconds(60),
        env=environment | (env or {}),
        check=False,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    private = generate_private_jwks("ES256")
    (tmp_path / "a.jwks.json").write_text(json.dumps(private))
    (tmp_path / "a.jwks.json").chmod(0o600)  # a private key others may read: a warning
    (tmp_path / "b.public.json").write_text(json.dumps(public_jwks(generate_private_jwks())))
    (tmp_path / "peer.toml").write_text(VALID)
    return tmp_path


def test_valid_config_exits_0(folder: Path) -> None:
    """A valid config with its secrets available: ``ok: N partners`` on stdout."""
    result = check_config("-c", str(folder / "peer.toml"), env={"SETPEER_CLI_TEST_TOKEN": "t"})
    assert (result.returncode, result.stdout, result.stderr) == (0, "ok: 1 partners\n", "")


def test_every_problem_on_stderr_exits_2(folder: Path) -> None:
    """Exit 2; one ``key.path: message`` line per problem; secrets never echoed."""
    text = (
        VALID.replace('send_via = "pushpull"\n', "")
        .replace("initiate = true", 'initiate = true\nsend_via = "smoke"')
        .replace('"env:SETPEER_CLI_TEST_TOKEN"', json.dumps(SECRET))
        .replace('listen = "127.0.0.1:0"', 'listen = "127.0.0.1:0"\nlisten_port = 1')
        .replace("[peer]", "[peer.limits]\nwindow = 0\n[peer]")
    )
    (folder / "bad.toml").write_text(text)
    result = check_config("--config", str(folder / "bad.toml"))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert sorted(line.split(": ", 1)[0] for line in lines) == [
        "partners[0].auth.bearer",
        "partners[0].send_via",
        "peer.limits.window",
        "peer.listen_port",
    ]
    assert "partners[0].send_via: must be one of pushpull, push, multipush, poll" in lines
    assert SECRET not in result.stderr


def test_unset_secret_is_a_problem_unless_skipped(folder: Path) -> None:
    """Secrets are resolved by check-config (not by load_config); --no-secrets skips that."""
    result = check_config("-c", str(folder / "peer.toml"))
    assert result.returncode == 2
    assert result.stderr == (
        "partners[0].auth.bearer: environment variable SETPEER_CLI_TEST_TOKEN is not set\n"
    )
    result = check_config("-c", str(folder / "peer.toml"), "--no-secrets")
    assert (result.returncode, result.stdout) == (0, "ok: 1 partners\n")


def test_unreadable_or_broken_file(folder: Path) -> None:
    """A file that cannot be read or parsed is one ``(file)`` problem, exit 2."""
    (folder / "broken.toml").write_text("[peer\n")
    for name, fragment in [("missing.toml", "cannot read"), ("broken.toml", "not valid TOML")]:
        result = check_config("-c", str(folder / name))
        assert result.returncode == 2
        assert result.stderr.startswith("(file): ") and fragment in result.stderr
        assert len(result.stderr.splitlines()) == 1


def test_usage_error_without_config() -> None:
    """``-c`` is required: argparse's usage error, exit 2."""
    result = check_config()
    assert result.returncode == 2 and "-c/--config" in result.stderr


def test_one_line_per_problem_whatever_the_path(folder: Path) -> None:
    """A line break in a file path is escaped, so each problem stays one line."""
    odd = folder / "odd\nfolder"
    odd.mkdir()
    (odd / "peer.toml").write_text(VALID.replace('"b.public.json"', '"../b.public.json"'))
    result = check_config("-c", str(odd / "peer.toml"), "--no-secrets")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"peer.signing_keys: file not found: {folder}/odd\\nfolder/a.jwks.json"
    ]
