"""Every CLI failure is one line naming what is wrong, with the documented exit code
(README "Exit codes": 0 done, 1 runtime failure, 2 usage or configuration, 3 jti
stored already) and no traceback unless ``--debug``; ``run`` refuses what
``check-config`` refuses, and ``send`` refuses what the partner would."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.cli import EXIT_CONFIG, EXIT_DUPLICATE, EXIT_FAILED, EXIT_OK
from tests.cli import ROOT, setpeer
from tests.peers import SESSION_REVOKED, NodeFiles, make_pair, write_config

EMAIL = '{"format": "email", "email": "jane@example.com"}'


def one_line(out: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    """The one line on stderr, after checking the exit code, the line count, the
    fragments it must hold and that no traceback was printed."""
    assert "Traceback" not in out.stderr, out.stderr
    lines = [line for line in out.stderr.splitlines() if " WARNING " not in line]
    assert len(lines) == 1, out.stderr
    assert out.returncode == code, out.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[NodeFiles, NodeFiles]]:
    a, b = make_pair(tmp_path)
    write_config(a, b, endpoint="ws://127.0.0.1:9/pushpull")
    yield a, b


def test_exit_code_table_is_the_one_the_cli_uses() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| ([0-3]) \| (.+) \|$", readme, re.MULTILINE))
    assert set(rows) == {"0", "1", "2", "3"}
    assert (EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_DUPLICATE) == (0, 1, 2, 3)
    assert "runtime" in rows["1"] and "usage" in rows["2"] and "jti" in rows["3"]


def test_port_in_use(pair: tuple[NodeFiles, NodeFiles], tmp_path: Path) -> None:
    """Was a fifty-line exception group and exit 3 (send's "stored already"): now one
    line naming the setting and the address, exit 1; check-config --bind finds it
    first (exit 2), and without --bind does not try."""
    taken = socket.create_server(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    try:
        a, b = pair
        write_config(a, b, endpoint="ws://127.0.0.1:9/pushpull", listen=f"127.0.0.1:{port}")
        config = str(tmp_path / "a.toml")
        run = setpeer("run", "-c", config)
        one_line(run, 1, "setpeer run: peer.listen: cannot listen on", f":{port}", "in use")
        check = setpeer("check-config", "-c", config, "--bind")
        one_line(check, 2, "peer.listen: cannot listen on", f":{port}")
        assert setpeer("check-config", "-c", config).returncode == 0
    finally:
        taken.close()


def test_failing_store_at_start(pair: tuple[NodeFiles, NodeFiles], tmp_path: Path) -> None:
    """A store that cannot be opened: one line naming it, exit 1; --debug (before or
    after the command) shows the traceback instead."""
    (tmp_path / "a.db").write_bytes(b"not a database " * 100)
    config = str(tmp_path / "a.toml")
    one_line(setpeer("run", "-c", config), 1, "setpeer run:", "a.db", "not a database")
    debug = setpeer("run", "-c", config, "--debug")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert "Traceback" in setpeer("--debug", "run", "-c", config).stderr


def test_usage_errors_exit_2(pair: tuple[NodeFiles, NodeFiles], tmp_path: Path) -> None:
    """--log-level verbose was a ValueError traceback; a bad --payload exited 1; both
    are usage errors: one line, exit 2, nothing stored."""
    config = str(tmp_path / "a.toml")
    level = setpeer("run", "-c", config, "--log-level", "verbose")
    one_line(level, 2, "--log-level", "VERBOSE", "--help")
    send = ("send", "-c", config, "--to", "b", "--event", SESSION_REVOKED)
    one_line(setpeer(*send, "--payload", "{x"), 2, "--payload is not JSON")
    one_line(setpeer(*send, "--payload", "[1]"), 2, "--payload must be a JSON object")
    one_line(setpeer(*send, "--toe", "soon"), 2, "--toe takes a Unix time")
    one_line(setpeer(*send[:4], "nobody", *send[5:]), 2, "nobody")
    assert not (tmp_path / "a.db").exists()


def test_unusable_partner_jwks(pair: tuple[NodeFiles, NodeFiles], tmp_path: Path) -> None:
    """A partner JWK Set whose only key is for encryption passes the file checks but
    leaves nothing to verify with: check-config and run both refuse it, same line."""
    public = tmp_path / "b.public.json"
    jwks = json.loads(public.read_text())
    jwks["keys"][0]["use"] = "enc"
    public.write_text(json.dumps(jwks))
    config = str(tmp_path / "a.toml")
    check = one_line(setpeer("check-config", "-c", config), 2, "partners[0].jwks:", "usable")
    run = one_line(setpeer("run", "-c", config), 2)
    assert run == check


def test_unset_bearer_variable(pair: tuple[NodeFiles, NodeFiles], tmp_path: Path) -> None:
    """Was: run started, /readyz said 200 and each dial logged it. Now check-config and
    run refuse it, naming the key and the variable."""
    env = {k: v for k, v in os.environ.items() if k != "SETPEER_TEST_TOKEN_A"}
    config = str(tmp_path / "a.toml")
    expected = "partners[0].auth.bearer: environment variable SETPEER_TEST_TOKEN_A is not set"
    check = one_line(setpeer("check-config", "-c", config, env=env), 2, expected)
    assert one_line(setpeer("run", "-c", config, env=env), 2) == check
    assert setpeer("check-config", "-c", config, "--no-secrets", env=env).returncode == 0


def test_send_refuses_what_would_be_lost_or_refused(
    pair: tuple[NodeFiles, NodeFiles], tmp_path: Path
) -> None:
    """send on memory:// printed a jti and lost the SET; an unknown enum value and an
    incomplete sub_id were stored and refused by the partner later. All three are
    refused here (exit 2, nothing printed on stdout, nothing stored)."""
    a, b = pair
    send = ("send", "-c", str(tmp_path / "a.toml"), "--to", "b", "--event", SESSION_REVOKED)
    enum = setpeer(*send, "--payload", '{"initiating_entity": "robot"}', "--sub-id", EMAIL)
    one_line(enum, 2, "partner b would refuse this SET", "initiating_entity", "policy")
    subject = setpeer(*send, "--sub-id", '{"format": "email"}')
    one_line(subject, 2, "partner b would refuse this SET", "sub_id", "email")
    assert enum.stdout == subject.stdout == ""
    assert not (tmp_path / "a.db").exists()
    write_config(a, b, endpoint="ws://127.0.0.1:9/pushpull", store="memory://")
    memory = setpeer(*send, "--sub-id", EMAIL)
    one_line(memory, 2, "peer.store is memory://")
    assert memory.stdout == ""


def test_send_txn_and_toe(pair: tuple[NodeFiles, NodeFiles], tmp_path: Path) -> None:
    """--txn and --toe become the SET's claims, stored as signed."""
    send = ("send", "-c", str(tmp_path / "a.toml"), "--to", "b", "--event", SESSION_REVOKED)
    out = setpeer(*send, "--sub-id", EMAIL, "--txn", "t-7", "--toe", "1767225600")
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(tmp_path / "a.db") as db:
        (token,) = db.execute(
            "SELECT token FROM outbox WHERE jti = ?", (out.stdout.strip(),)
        ).fetchone()
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert (claims["txn"], claims["toe"]) == ("t-7", 1767225600)
