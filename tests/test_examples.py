"""examples/embedded.py and examples/client.py, run as their docstrings say: each
tells partner b of a revoked session and prints what b sends (the webhook receiver's
test is tests/webhook/test_example.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio

from peer import Peer
from tests.local.helpers import running_pair
from tests.peers import SESSION_REVOKED, make_pair, write_config
from tests.timing import seconds

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


async def _run_example(command: list[str], b: Peer) -> list[dict[str, object]]:
    """Start the example; once it has published, b publishes one SET back to a; the
    example prints it and exits. Returns its lines; checks b got the example's SET."""
    process = await anyio.open_process(command, stderr=subprocess.PIPE)
    lines: list[dict[str, object]] = []
    try:
        assert process.stdout is not None
        with anyio.fail_after(seconds(30)):
            buffered = b""
            async for chunk in process.stdout:
                buffered += chunk
                while b"\n" in buffered:
                    line, buffered = buffered.split(b"\n", 1)
                    lines.append(json.loads(line))
                    if len(lines) == 1:
                        await b.publish(
                            "a", {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": "u9"}
                        )
            assert await process.wait() == 0
        async for rx in b.receive():
            assert rx.jti == lines[0]["published"]
            assert rx.subject == {"format": "email", "email": "alice@example.com"}
            await rx.done()
            break
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()
    return lines


async def test_embedded_example(tmp_path: Path) -> None:
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as b:
        endpoint = b.url.replace("http://", "ws://") + "/pushpull"
        write_config(a_files, b_files, endpoint=endpoint)
        command = [sys.executable, str(EXAMPLES / "embedded.py"), "-c", str(tmp_path / "a.toml")]
        lines = await _run_example([*command, "--to", "b", "--count", "1"], b)
    assert lines[0]["to"] == "b"
    assert lines[1]["partner"] == "b" and lines[1]["events"] == [SESSION_REVOKED]
    assert lines[1]["subject"] == {"format": "opaque", "id": "u9"}


async def test_client_example(tmp_path: Path) -> None:
    async with running_pair(tmp_path) as (a, b):
        command = [sys.executable, str(EXAMPLES / "client.py"), str(a.app_url)]
        lines = await _run_example([*command, "--to", "b", "--count", "1"], b)
    assert lines[0]["to"] == "b"
    assert lines[1]["partner"] == "b" and lines[1]["events"] == [SESSION_REVOKED]
    assert lines[1]["subject"] == {"format": "opaque", "id": "u9"}
