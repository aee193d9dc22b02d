"""Logs that explain: JSON lines carry their fields as keys; a refused handshake is
logged by us (partner when known, reason, remote address) and uvicorn's reasonless
line is gone; a dialer refused with 401 says so once at WARNING, not on every retry;
session lines carry their session id; DEBUG shows frames by size and count, never a
token.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import websockets

from peer import Peer
from peer.config import load_config
from peer.logs import JSONFormatter, install_redaction
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.timing import MS, seconds

FAST = {"reconnect_initial": 0.02, "reconnect_max": 0.05}


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """Every record of setpeer and uvicorn, DEBUG and up, as JSON lines."""
    install_redaction()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JSONFormatter())
    loggers = [logging.getLogger(name) for name in ("setpeer", "uvicorn.error")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def entries(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


async def test_refused_upgrade_logged_by_us_once(tmp_path: Path, json_lines: io.StringIO) -> None:
    """Two upgrades with a wrong bearer: one WARNING with status, code, reason and
    remote address (the second within 10 s is counted, not logged); nothing from
    uvicorn about an incomplete handshake."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        url = b.url.replace("http://", "ws://") + "/pushpull"
        for _ in range(2):
            with pytest.raises(websockets.InvalidStatus):
                await websockets.connect(
                    url, additional_headers={"Authorization": "Bearer wrong"}
                ).__aenter__()
    lines = entries(json_lines)
    refused = [e for e in lines if "refused" in str(e["message"]) and e.get("status") == 401]
    assert len(refused) == 1, refused
    entry = refused[0]
    assert entry["level"] == "warning" and entry["err"] == "authentication_failed"
    assert entry["description"] == "invalid bearer token" and entry["partner"] is None
    assert str(entry["remote"]).startswith("127.0.0.1:") and entry["path"] == "/pushpull"
    assert "wrong" not in json_lines.getvalue()
    assert "without completing handshake" not in json_lines.getvalue()


async def test_dialer_refused_logs_once_then_debug(tmp_path: Path, json_lines: io.StringIO) -> None:
    """a dials b with a token b does not know: the 401 is one WARNING line naming the
    partner; its repeats on every reconnect are DEBUG."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        write_config(a_files, b_files, endpoint=endpoint, limits=FAST)
        toml = tmp_path / "a.toml"
        toml.write_text(toml.read_text().replace("SETPEER_TEST_TOKEN_A", "SETPEER_TEST_TOKEN_B"))
        async with Peer(load_config(toml)):

            def tries() -> list[dict[str, object]]:
                return [
                    e
                    for e in entries(json_lines)
                    if e["logger"] == "setpeer.dialer" and "HTTP 401" in str(e["message"])
                ]

            with anyio.fail_after(seconds(10)):
                while len(tries()) < 3:  # noqa: ASYNC110
                    await anyio.sleep(20 * MS)
    said = tries()
    assert [e["level"] for e in said[:3]] == ["warning", "debug", "debug"], said
    assert said[0]["partner"] == "b" and "retrying" in str(said[0]["message"])


async def test_session_ids_and_debug_frames(tmp_path: Path, json_lines: io.StringIO) -> None:
    """Session lines carry the session id and kind as fields; DEBUG frame lines give
    bytes, SET and ack counts, numbered per session; no token in any line."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        async with Peer(write_config(a_files, b_files, endpoint=endpoint)) as a:
            await a.publish("b", {SESSION_REVOKED: {}})
            await a.flush(timeout=seconds(10))
    lines = entries(json_lines)
    opened = [e for e in lines if str(e["message"]).endswith(" opened")]
    assert {e["partner"] for e in opened} == {"a", "b"}
    assert all(isinstance(e["session"], int) and e["session_kind"] == "websocket" for e in opened)
    ids = {e["session"] for e in opened}
    frames = [e for e in lines if e["logger"] == "setpeer.frames"]
    sent = [e for e in frames if e["partner"] == "b" and e["way"] == "out" and e["sets"] == 1]
    assert sent and sent[0]["bytes"] > 100 and sent[0]["session"] in ids
    acks = [e for e in frames if e["partner"] == "a" and e["way"] == "out" and e["acks"] == 1]
    assert acks, frames
    assert {e["frame"] for e in frames if e["session"] == sent[0]["session"]} >= {1}
    assert "eyJ" not in json_lines.getvalue()  # a SET's token never
