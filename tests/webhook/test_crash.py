"""`setpeer run` killed with SIGKILL while it delivers to its webhook, then restarted:
every received SET reaches the webhook, in order; only the one in flight may come twice."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path

import anyio
import httpx
import pytest

from peer.tokens.sign import Signer, build_claims
from tests.adapters.fake_partner import Action, Answer, Call
from tests.adapters.wire import SECEVENT_JWT, wait_for
from tests.peers import SESSION_REVOKED, NodeFiles
from tests.test_crash import start_run_at as start_run, stop
from tests.timing import MS, seconds

from .helpers import delivered, receiver, undone, write_hooked_config

COUNT = 20


@pytest.mark.slow
async def test_sigkill_mid_delivery_then_restart_loses_nothing(tmp_path: Path) -> None:
    def script(call: Call) -> Action:
        return Answer(204, delay=40 * MS)  # a slow receiver: the kill lands mid-POST

    b, a = NodeFiles("b", tmp_path), NodeFiles("a", tmp_path)
    b.make_keys()
    a.make_keys()
    signer = Signer(json.loads((tmp_path / "a.jwks.json").read_text()))
    sent = [f"k-{i}" for i in range(COUNT)]
    async with receiver(script) as hook:
        config = write_hooked_config(b, [a], hook.url)
        process, url = await anyio.to_thread.run_sync(start_run, config)
        try:
            async with httpx.AsyncClient() as http:
                for jti in sent:  # 202: stored for good
                    claims = build_claims(
                        iss=a.issuer,
                        aud=b.issuer,
                        events={SESSION_REVOKED: {}},
                        iat=int(time.time()),
                        jti=jti,
                    )
                    response = await http.post(
                        url + "/events",
                        content=signer.sign(claims),
                        headers={
                            "content-type": SECEVENT_JWT,
                            "authorization": f"Bearer {a.token_out}",
                        },
                    )
                    assert response.status_code == 202, response.text
            await wait_for(lambda: len(hook.answered()) >= COUNT // 3, seconds(10))
        finally:
            await anyio.to_thread.run_sync(stop, process, signal.SIGKILL)
        before = delivered(hook.answered())
        assert len(before) < COUNT

        process, _ = await anyio.to_thread.run_sync(start_run, config)
        try:
            await wait_for(
                lambda: {j for _, j in delivered(hook.answered())} == set(sent), seconds(15)
            )
            with anyio.fail_after(seconds(10)):
                while await undone(config):  # noqa: ASYNC110 - another process writes
                    await anyio.sleep(20 * MS)
        finally:
            assert await anyio.to_thread.run_sync(stop, process) == 0

    calls = [jti for _, jti in delivered(hook.answered())]
    assert list(dict.fromkeys(calls)) == sent  # inbox order, across the restart
    twice = [jti for jti, n in Counter(calls).items() if n > 1]
    assert set(twice) <= {before[-1][1]}, (before, calls)  # at most the one in flight
