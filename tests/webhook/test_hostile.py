"""A hostile or broken webhook: each bad answer is a failed attempt, retried; the SET
is delivered once the webhook answers 2xx, and nothing of the bad answers is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peer.local.webhook import MAX_ANSWER_BYTES
from tests.adapters.fake_partner import Action, Answer, Call, Drop, Hang, Stream
from tests.adapters.wire import wait_for
from tests.timing import seconds

from .helpers import FAST, hooked_node, push, receiver, undone

DEADLINE = FAST["handshake_timeout"] + FAST["ack_timeout"]


@pytest.mark.slow
async def test_redirect_huge_endless_hung_and_dropped_answers_are_retried(tmp_path: Path) -> None:
    seen: dict[str, Any] = {}

    def script(call: Call) -> Action:
        if call.path != "/events":
            return Answer(204)  # a followed redirect would land here
        plan: list[Action] = [
            Answer(307, headers={"location": "/poll"}),
            Stream(size=64 * MAX_ANSWER_BYTES),  # 200 with 4 MiB
            Stream(size=None, every=0.05),  # 200, a byte every 50 ms, forever
            Hang(),
            Drop(),
        ]
        index = len(hook.answered()) - 1
        if index == 1:
            seen["after redirect"] = seen["node"].webhook_state()
        if index < len(plan):
            return plan[index]
        seen["state"] = seen["node"].webhook_state()
        return Answer(200, b"thanks")

    async with (
        receiver(script) as hook,
        hooked_node(tmp_path, hook.url) as (node, clients),
    ):
        seen["node"] = node
        await push(clients["a"], "h-0")
        await wait_for(lambda: node.webhook_state()["backlog"] == 0, seconds(15))  # type: ignore[index]
        state = node.webhook_state()
        assert state is not None
        assert state["deliveries"] == {"delivered": 1, "refused": 1, "failed": 4}
        assert (state["state"], state["consecutive_failures"]) == ("up", 0)

    calls = hook.answered()
    assert len(calls) == 6
    assert hook.fake.paths("/poll") == []  # the redirect was not followed
    assert len(hook.fake.cut_at) == 2  # both streams were cut, the rest never read
    # The hung answer was given up after the read timeout (ack_timeout), within the
    # deadline of the whole POST, and retried after a backoff.
    assert FAST["ack_timeout"] * 0.9 <= calls[4].at - calls[3].at <= DEADLINE + seconds(2)
    # The endless body outlived every per-read timeout: the deadline cut it.
    assert DEADLINE * 0.9 <= calls[3].at - calls[2].at <= DEADLINE + seconds(2)
    redirect = seen["after redirect"]["last_error"]
    assert redirect == "answered 307 (redirects are not followed)"
    before = seen["state"]  # as the sixth POST arrived: five failures in a row
    assert (before["state"], before["consecutive_failures"]) == ("down", 5)
    [retrying] = before["retrying"]
    assert (retrying["partner"], retrying["jti"], retrying["attempts"]) == ("a", "h-0", 5)
    assert "RemoteProtocolError" in retrying["last_error"]  # the dropped connection
    assert await undone(tmp_path / "b.toml") == []
