"""examples/webhook_receiver.py, run as documented, receives a node's SETs in order."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import anyio

from tests.adapters.wire import wait_for
from tests.timing import seconds

from .helpers import HOOK_TOKEN, hooked_node, push

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webhook_receiver.py"


async def test_the_example_receiver_prints_each_set_once(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(16)
    os.environ[HOOK_TOKEN] = token
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOOK_TOKEN": token},
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        first = await anyio.to_thread.run_sync(process.stderr.readline)
        url = first.removeprefix("listening on ").strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/setpeer"), first
        deliver_auth = f"env:{HOOK_TOKEN}"
        async with hooked_node(tmp_path, url, deliver_auth=deliver_auth) as (node, clients):
            for i in range(3):
                await push(clients["a"], f"e-{i}")
            with anyio.fail_after(seconds(10)):
                lines = [await anyio.to_thread.run_sync(process.stdout.readline) for _ in range(3)]
            await wait_for(lambda: node.webhook_state()["backlog"] == 0, seconds(10))  # type: ignore[index]
            state = node.webhook_state()
            assert state is not None
            assert state["deliveries"] == {"delivered": 3, "refused": 0, "failed": 0}
    finally:
        process.terminate()
        process.wait(timeout=seconds(10))
        process.stdout.close()
        process.stderr.close()
    printed = [json.loads(line) for line in lines]
    assert [(item["partner"], item["jti"]) for item in printed] == [
        ("a", f"e-{i}") for i in range(3)
    ]
    assert all(item["claims"]["jti"] == item["jti"] for item in printed)
