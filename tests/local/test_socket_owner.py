"""Who serves a Unix socket: two configs in one folder, a stale file, a live node."""

from __future__ import annotations

import json
import logging
import re
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from peer import Client, Peer, PeerError
from peer.config import load_config
from tests.peers import make_pair, write_config


def _status_is_bs(folder: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "peer", "status", "-c", str(folder / "b.toml"), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(json.loads(out.stdout)) == {"a"}  # b's partner, not a's


def _without_app_table(path: Path) -> None:
    """The config as written before ``[peer.app]`` existed: the default applies."""
    text = path.read_text()
    path.write_text(re.sub(r"\[peer\.app\]\nlisten = \"[^\"]*\"\n", "", text))


async def test_default_socket_of_two_configs_in_one_folder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Neither config names a socket: the first node takes app.sock, the second runs
    without a local interface and says so, instead of refusing to start."""
    a, b = make_pair(tmp_path)
    write_config(a, b)
    write_config(b, a)
    for name in ("a", "b"):
        _without_app_table(tmp_path / f"{name}.toml")
    a_config, b_config = load_config(tmp_path / "a.toml"), load_config(tmp_path / "b.toml")
    assert a_config.app_socket == b_config.app_socket == tmp_path / "app.sock"
    async with Peer(a_config) as first:
        assert first.app_url == f"unix:{tmp_path / 'app.sock'}"
        mode = (tmp_path / "app.sock").stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        with caplog.at_level(logging.WARNING, logger="setpeer.node"):
            async with Peer(b_config) as second:
                assert second.app_url is None
        assert "another node is serving" in caplog.text
        assert "[peer.app] listen" in caplog.text
        async with Client(first.app_url) as client:  # still the first node's
            assert set(await client.stats()) == {"b"}
            assert await client.node() == {"issuer": a.issuer, "partners": ["b"]}
        # b's commands do not take a's node for theirs: status reads b's own store.
        await anyio.to_thread.run_sync(_status_is_bs, tmp_path)
    assert not (tmp_path / "app.sock").exists()  # removed at stop


async def test_a_named_socket_that_a_live_node_serves_refuses_start(tmp_path: Path) -> None:
    a, b = make_pair(tmp_path)
    config = write_config(a, b, app="unix:shared.sock")
    async with Peer(config):
        with pytest.raises(PeerError, match=r"\[peer.app\] listen: another node is serving"):
            async with Peer(config):
                pass


async def test_a_stale_socket_file_is_replaced_and_other_files_are_not(tmp_path: Path) -> None:
    import socket

    a, b = make_pair(tmp_path)
    config = write_config(a, b, app="unix:a.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(tmp_path / "a.sock"))
    stale.close()  # the file stays; nobody answers on it
    async with Peer(config) as node:
        async with Client(node.app_url or "") as client:
            assert set(await client.stats()) == {"b"}
    (tmp_path / "a.sock").write_text("not a socket")
    with pytest.raises(PeerError, match="is not a socket"):
        async with Peer(config):
            pass
    assert (tmp_path / "a.sock").read_text() == "not a socket"
