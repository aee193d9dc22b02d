"""``setpeer status`` of a running node that delivers to a webhook: read through the
local interface, it shows the webhook's state (a store read could not)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio

from tests.adapters.wire import wait_for
from tests.timing import seconds

from .helpers import hooked_node, push


async def _status(config: Path, *more: str) -> str:
    done = await anyio.run_process(
        [sys.executable, "-m", "peer", "status", "-c", str(config), *more], check=True
    )
    return done.stdout.decode()


async def test_status_shows_a_webhook_that_is_down(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/setpeer"  # the discard port: nothing listens
    async with hooked_node(tmp_path, url) as (node, clients):
        await push(clients["a"], "w-1")
        await wait_for(lambda: node.webhook_state()["state"] != "up", seconds(10))  # type: ignore[index]
        entry = json.loads(await _status(tmp_path / "b.toml", "--json"))["a"]
        assert entry["unhandled"] == 1
        assert entry["webhook"]["state"] in ("retrying", "down")
        assert entry["webhook"]["backlog"] == 1
        assert entry["webhook"]["last_error"]
        text = await _status(tmp_path / "b.toml")
        assert text.splitlines()[-1].startswith("webhook: ")
        assert "backlog 1" in text.splitlines()[-1]
    # The node stopped: status reads the store, and knows nothing of a webhook.
    entry = json.loads(await _status(tmp_path / "b.toml", "--json"))["a"]
    assert "webhook" not in entry and entry["unhandled"] == 1
