"""Every received SET reaches the webhook, in inbox order per partner, marked done once
it got a 2xx: through refusals, a slow receiver, and a receiver that goes away."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import anyio
import pytest

from peer import ConfigError, Peer, WebhookConfigured, load_config
from peer.config.secrets import check_secrets
from peer.local.webhook import QUEUED
from tests.adapters.fake_partner import Action, Answer, Call
from tests.adapters.wire import wait_for
from tests.peers import NodeFiles
from tests.timing import MS, seconds

from .helpers import HOOK_TOKEN, hooked_node, push, receiver, undone, write_hooked_config


@pytest.mark.slow
async def test_refusals_slowness_and_an_outage_lose_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="setpeer.webhook")
    token = secrets.token_urlsafe(16)
    os.environ[HOOK_TOKEN] = token
    ok: list[tuple[str, str]] = []  # (partner, jti) of each call answered 2xx
    slow = [0.0]
    many = QUEUED + 6  # a's lane fills up: the reader passes over a's rows, then goes back

    def script(call: Call) -> Action:
        body = call.json()
        assert call.headers["authorization"] == f"Bearer {token}"
        assert call.headers["content-type"] == "application/json"
        assert set(body) == {"seq", "partner", "jti", "claims", "token"}
        assert body["claims"]["jti"] == body["jti"]
        if body["jti"] == "a-0" and sum(1 for p, _ in ok if p == "c") < 5:
            return Answer(500, {"error": "not now"})  # until c's first five are in
        ok.append((body["partner"], body["jti"]))
        return Answer(204, delay=slow[0])

    async with receiver(script) as hook:
        deliver_auth = f"env:{HOOK_TOKEN}"
        async with hooked_node(tmp_path, hook.url, ("a", "c"), deliver_auth=deliver_auth) as (
            node,
            clients,
        ):
            # One partner's SET refused does not hold back the other partner's, even
            # behind more of its SETs than its lane holds.
            for i in range(many):
                await push(clients["a"], f"a-{i}")
            for i in range(5):
                await push(clients["c"], f"c-{i}")
            await wait_for(lambda: len(ok) == many + 5, seconds(10))
            first_a = ok.index(("a", "a-0"))
            assert {("c", f"c-{i}") for i in range(5)} <= set(ok[:first_a])
            refused = node.webhook_state()["deliveries"]["refused"]  # type: ignore[index]
            assert refused >= 1

            # The receiver goes away: SETs wait, the webhook goes down, once.
            await hook.stop()
            for i in range(5):
                await push(clients["a"], f"a-{many + i}")
                await push(clients["c"], f"c-{5 + i}")
            await wait_for(lambda: node.webhook_state()["state"] == "down", seconds(10))  # type: ignore[index]
            state = node.webhook_state()
            assert state is not None
            assert state["backlog"] == 10
            assert {entry["partner"] for entry in state["retrying"]} == {"a", "c"}
            assert "ConnectError" in (state["last_error"] or "")
            # It comes back, answering slowly: everything arrives.
            slow[0] = 30 * MS
            await hook.start()
            total = many + 5 + 10
            await wait_for(lambda: len(ok) == total, seconds(10))
            await wait_for(lambda: node.webhook_state()["backlog"] == 0, seconds(5))  # type: ignore[index]
            state = node.webhook_state()
            assert state is not None
            assert (state["state"], state["consecutive_failures"], state["retrying"]) == (
                "up",
                0,
                [],
            )
            assert state["deliveries"]["delivered"] == total
            assert state["deliveries"]["refused"] == refused
            metrics = node.render_metrics()[0].decode()
            assert "setpeer_webhook_up 1.0" in metrics
            assert f'setpeer_webhook_deliveries_total{{outcome="delivered"}} {total}.0' in metrics
            assert f'setpeer_webhook_deliveries_total{{outcome="refused"}} {refused}.0' in metrics
            assert "setpeer_webhook_backlog 0.0" in metrics
            assert node.stats()["a"]["received"] == many + 5
        config = tmp_path / "b.toml"

    # Each SET delivered once, in inbox (= push) order per partner; all done.
    assert len(set(ok)) == len(ok) == total
    for name, count in (("a", many + 5), ("c", 10)):
        assert [jti for partner, jti in ok if partner == name] == [
            f"{name}-{i}" for i in range(count)
        ]
    assert await undone(config) == []
    assert len(hook.answered()) == total + refused  # never a POST more
    lines = [r.getMessage() for r in caplog.records if r.name == "setpeer.webhook"]
    downs = [line for line in lines if line.startswith("webhook down")]
    ups = [line for line in lines if line.startswith("webhook up again")]
    assert len(downs) == len(ups) >= 1, lines
    assert "ConnectError" in downs[-1]


async def test_pulling_is_refused_while_a_webhook_is_configured(tmp_path: Path) -> None:
    async with hooked_node(tmp_path, "http://127.0.0.1:9/hook") as (node, _):
        with pytest.raises(WebhookConfigured, match=r"\[peer.app\] deliver"):
            async for _ in node.receive():
                pass
        state = node.webhook_state()
        assert state is not None
        assert (state["url"], state["state"], state["backlog"]) == (
            "http://127.0.0.1:9/hook",
            "up",
            0,
        )


async def test_without_deliver_there_is_no_webhook(tmp_path: Path) -> None:
    b, a = NodeFiles("b", tmp_path), NodeFiles("a", tmp_path)
    b.make_keys()
    a.make_keys()
    path = write_hooked_config(b, [a], "http://127.0.0.1:9/hook")
    text = path.read_text().replace('deliver = "http://127.0.0.1:9/hook"\n', "")
    path.write_text(text)
    async with Peer(load_config(path)) as node:
        assert node.webhook_state() is None
        assert "setpeer_webhook" not in node.render_metrics()[0].decode()


async def test_an_unresolvable_deliver_auth_stops_the_start(tmp_path: Path) -> None:
    os.environ.pop("SETPEER_TEST_NO_SUCH_TOKEN", None)
    b, a = NodeFiles("b", tmp_path), NodeFiles("a", tmp_path)
    b.make_keys()
    a.make_keys()
    path = write_hooked_config(
        b, [a], "http://127.0.0.1:9/hook", deliver_auth="env:SETPEER_TEST_NO_SUCH_TOKEN"
    )
    config = load_config(path)  # the reference's form is fine
    assert check_secrets(config) == [
        ("peer.app.deliver_auth", "environment variable SETPEER_TEST_NO_SUCH_TOKEN is not set")
    ]
    with anyio.fail_after(seconds(10)), pytest.raises(ConfigError, match="deliver_auth"):
        async with Peer(config):
            pass
