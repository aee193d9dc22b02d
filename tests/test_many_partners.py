"""A node of many partners: ``setpeer run`` serves 100 partners' sessions at once, with
its file-descriptor limit raised to fit ``max_connections``; ``check-config`` warns when
the partners that connect to us would fill ``max_connections`` or the hard limit is
below it."""

from __future__ import annotations

import hashlib
import json
import resource
import secrets
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from peer.commands._capacity import HEADROOM, RESERVED_FILES
from peer.tokens.keys import generate_private_jwks, public_jwks
from tests.cli import ROOT, setpeer
from tests.timing import seconds

PARTNERS = 100


def many_partners(folder: Path, count: int, max_connections: int) -> list[str]:
    """``node.toml``: ``count`` partners that open their sessions to us (one public
    JWKS file for all: their keys do not matter here). Returns their bearers."""
    (folder / "n.jwks.json").write_text(json.dumps(generate_private_jwks("ES256")))
    (folder / "n.jwks.json").chmod(0o600)
    (folder / "n.token").write_text(secrets.token_urlsafe(16))
    (folder / "n.token").chmod(0o600)
    (folder / "p.json").write_text(json.dumps(public_jwks(generate_private_jwks("ES256"))))
    bearers = [secrets.token_urlsafe(16) for _ in range(count)]
    parts = [
        f"""[peer]
issuer = "https://n.test.example"
listen = "127.0.0.1:0"
store = "sqlite:///n.db"
signing_keys = "n.jwks.json"
allow_insecure_loopback = true
[peer.limits]
max_connections = {max_connections}
"""
    ]
    for i, bearer in enumerate(bearers):
        parts.append(
            f"""[[partners]]
name = "p{i}"
issuer = "https://p{i}.test.example"
audience = "https://p{i}.test.example"
jwks = "p.json"
[partners.auth]
bearer = "file:n.token"
[partners.inbound]
bearer_sha256 = "{hashlib.sha256(bearer.encode()).hexdigest()}"
"""
        )
    (folder / "node.toml").write_text("".join(parts))
    return bearers


def _file_limit(soft: int, hard: int | None = None) -> None:
    """In the child: the file-descriptor limit ``run`` starts with."""
    current_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, current_hard if hard is None else hard))


def test_check_config_warns_when_partners_fill_max_connections(tmp_path: Path) -> None:
    many_partners(tmp_path, PARTNERS, max_connections=PARTNERS)
    out = setpeer("check-config", "-c", str(tmp_path / "node.toml"))
    assert out.returncode == 0, out.stderr
    assert f"warning: {PARTNERS} partners open their sessions to this node" in out.stderr
    assert f"raise max_connections to at least {PARTNERS + HEADROOM}" in out.stderr

    many_partners(tmp_path, PARTNERS, max_connections=PARTNERS + HEADROOM)
    out = setpeer("check-config", "-c", str(tmp_path / "node.toml"))
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_check_config_warns_when_the_hard_file_limit_is_below_max_connections(
    tmp_path: Path,
) -> None:
    many_partners(tmp_path, 2, max_connections=400)
    command = [sys.executable, "-m", "peer", "check-config", "-c", str(tmp_path / "node.toml")]
    low = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds(60),
        cwd=ROOT,
        preexec_fn=lambda: _file_limit(256, 256),
    )
    assert low.returncode == 0, low.stderr
    assert "warning: the file-descriptor limit (ulimit -n) is 256" in low.stderr
    assert f"may need {400 + RESERVED_FILES}" in low.stderr
    # A low soft limit alone is no problem: run raises it up to the hard one.
    soft_only = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=seconds(60),
        cwd=ROOT,
        preexec_fn=lambda: _file_limit(256),
    )
    assert soft_only.returncode == 0 and soft_only.stderr == "", soft_only.stderr


def _open_files(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    raise AssertionError("no open-files limit in /proc")


@pytest.mark.slow
async def test_run_raises_its_file_limit_and_holds_100_partners_sessions(tmp_path: Path) -> None:
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 512:
        pytest.skip("the hard file-descriptor limit is below 512")
    bearers = many_partners(tmp_path, PARTNERS, max_connections=300)
    node = subprocess.Popen(
        [sys.executable, "-m", "peer", "run", "-c", str(tmp_path / "node.toml")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        preexec_fn=lambda: _file_limit(256),  # a soft limit below 300 connections
    )
    try:
        assert node.stdout is not None
        with anyio.fail_after(seconds(30)):
            line = await anyio.to_thread.run_sync(node.stdout.readline)
        assert line.startswith("setpeer listening on "), line
        url = line.split()[-1]
        assert _open_files(node.pid) == 300 + RESERVED_FILES
        sessions: list[ClientConnection] = []
        try:
            with anyio.fail_after(seconds(30)):
                for bearer in bearers:
                    sessions.append(
                        await connect(
                            url.replace("http://", "ws://") + "/pushpull",
                            subprotocols=["pushpull"],  # type: ignore[list-item]
                            additional_headers={"Authorization": f"Bearer {bearer}"},
                        )
                    )
                async with httpx.AsyncClient() as client:
                    while True:
                        metrics = (await client.get(url + "/metrics")).text
                        up = metrics.count('state="websocket"} 1.0')
                        if up == PARTNERS:
                            break
                        await anyio.sleep(0.05)
            assert all(ws.subprotocol == "pushpull" for ws in sessions)
        finally:
            for ws in sessions:
                await ws.close()
    finally:
        node.terminate()
        _, err = node.communicate(timeout=seconds(30))
    assert node.returncode == 0, err
    assert "max_connections" not in err  # 300 fits 100 partners: no warning
    assert f"partner=p{PARTNERS - 1} session=websocket" in err
