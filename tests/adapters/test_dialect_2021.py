"""A partner on the 2021 drafts (``legacy_partner.py``) exchanging SETs with a node
configured for it (``[partners.dialect]``, docs/dialects.md), both ways, by push and
by poll; and the poll session's state when the partner's endpoint answers errors.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio
import httpx
import pytest

from peer.protocol.delivery_methods import discovery_urls, normalise_method

from .fake_partner import Answer, Call, fake_partner, sender_node
from .legacy_partner import REVOKED, LegacyPartner, legacy_events, sign_legacy
from .wire import MS, SECEVENT_JWT, Client, setpeer_status, wait_for

# We poll it and push to it; it never connects to us: no [partners.inbound].
POLL_AND_PUSH = """ssf = true
[partners.dialect]
ack_member = "acks"
payload_check = "warn"
poll_interval = 0.2
"""


def polls(calls: list[Call]) -> list[Call]:
    return [call for call in calls if call.path == "/poll"]


@pytest.mark.slow
async def test_2021_transmitter_polled_and_pushed_to(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The node polls a 2021 transmitter and pushes to it. POLL-10: its long poll is
    answered 404, so the node polls short from then on (``poll_mode = "auto"``);
    POLL-11 under ``ack_member = "acks"``; POLL-12, POLL-15: it ignores ``setErrs``
    and serves a refused SET again at every poll, and the node's polls slow down
    (bounded count in a window) instead of following at once. SSF-1, CAEP-1:
    ``payload_check = "warn"`` takes its SETs (no ``sub_id``, subject inside the
    event without ``format``, values outside 1.0) as sent, and logs why 1.0 would
    not. SSF-20: its metadata is at the legacy location, with the RISC method URIs
    (SSF-18). It has no inbound credential: its requests are refused 401."""
    caplog.set_level(logging.INFO, logger="setpeer")
    legacy = LegacyPartner()
    async with fake_partner(legacy) as fake:
        legacy.url = fake.url
        async with sender_node(
            tmp_path,
            fake,
            send_via="push",
            receive_via="poll",
            limits={"reconnect_max": 0.4},
            extra=POLL_AND_PUSH,
            inbound=False,
        ) as run:
            legacy.served = {
                "r1": sign_legacy(run, "r1", "revoked"),
                "a1": sign_legacy(run, "a1", "assurance"),
                "bad": sign_legacy(run, "bad", "revoked", aud="https://c.example"),
            }
            got = {}
            with anyio.fail_after(10_000 * MS):
                async for rx in run.node.receive():
                    got[rx.jti] = rx.claims
                    await rx.done()
                    if len(got) == 2:
                        break
            await wait_for(lambda: {"r1", "a1"} <= set(legacy.acked))
            jti = await run.node.publish("b", {REVOKED: {}}, sub_id={"format": "opaque", "id": "s"})
            await wait_for(lambda: jti in legacy.pushed)

            # Served again and again: "bad", which the node refused (setErrs ignored).
            before = len(polls(fake.calls))
            await anyio.sleep(1.5)
            in_window = len(polls(fake.calls)) - before
            stats = run.node.stats()["b"]

            async with httpx.AsyncClient() as http:
                refused = await http.post(
                    run.node.url + "/events",
                    content=legacy.served["r1"],
                    headers={
                        "content-type": SECEVENT_JWT,
                        "authorization": f"Bearer {run.b.token_out}",
                    },
                )
                found = [await http.get(url) for url in discovery_urls(fake.url + "/")]

    assert got["r1"]["events"] == legacy_events("revoked") and "sub_id" not in got["r1"]
    assert got["a1"]["events"] == legacy_events("assurance")
    # Both loops up: the best of them shows (push, then poll).
    assert (stats["received"], stats["acked"], stats["session"]) == (2, 1, "push")
    # Without the pause it would be hundreds: one poll per round trip.
    assert 2 <= in_window <= 15, in_window
    # ... and the pause has grown to reconnect_max (0.4 s, less 20 % jitter).
    times = [call.at for call in polls(fake.calls)]
    assert all(b - a >= 0.3 for a, b in zip(times[-3:], times[-2:], strict=False)), times[-3:]
    requests = [call.json() for call in polls(fake.calls)]
    assert requests[0]["returnImmediately"] is False  # long first, refused with 404
    assert all(r["returnImmediately"] is True for r in requests[1:])
    assert all("ack" not in r for r in requests)  # acks only, as it reads them
    assert sum(1 for r in requests if "bad" in r.get("setErrs", {})) >= 2
    assert legacy.acked.count("bad") == 0
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("setpeer")]
    assert any("answered a long poll with HTTP 404" in m for m in messages)
    assert any("accepted despite" in m for m in messages), messages
    assert refused.status_code == 401
    assert [r.status_code for r in found] == [404, 200]
    methods = found[1].json()["delivery_methods_supported"]
    assert {normalise_method(uri) for uri in methods} == {"push", "poll"}


# It polls us and pushes to us (so it connects: it has an inbound credential).
POLLED_AND_PUSHED = """ssf = true
[partners.dialect]
payload_check = "off"
"""


async def test_2021_receiver_polls_us_and_pushes(tmp_path: Path) -> None:
    """The 2021 partner polls our ``/poll`` short, acknowledging in ``acks`` (read
    as ``ack``, decision 2), and pushes its SETs to our ``/events`` (PUSH-12).
    ``payload_check = "off"`` takes them without a top-level ``sub_id`` (SSF-1);
    ``aud`` and the signature are still checked (PUSH-14)."""
    legacy = LegacyPartner()
    async with fake_partner(legacy) as fake:
        async with (
            sender_node(
                tmp_path, fake, send_via="poll", receive_via="push", extra=POLLED_AND_PUSHED
            ) as run,
            httpx.AsyncClient() as http,
        ):
            client = Client(run.node, run.b, run.a, http)
            client.auth = {"authorization": f"Bearer {run.b.token_out}"}
            jti = await run.node.publish("b", {REVOKED: {}}, sub_id={"format": "opaque", "id": "s"})
            served: dict[str, str] = {}
            with anyio.fail_after(5_000 * MS):
                while not served:  # the SET reaches the poll queue just after publish
                    polled = await client.post("/poll", {"returnImmediately": True})
                    assert polled.status_code == 200
                    served = polled.json()["sets"]
                    await anyio.sleep(10 * MS)
            assert list(served) == [jti]
            acked = await client.post("/poll", {"returnImmediately": True, "acks": [jti]})
            assert acked.status_code == 200
            await wait_for(lambda: run.node.stats()["b"]["acked"] == 1)

            for name, kind in (("p1", "revoked"), ("p2", "assurance")):
                pushed = await client.post(
                    "/events", sign_legacy(run, name, kind), content_type=SECEVENT_JWT
                )
                assert pushed.status_code == 202, pushed.text
            wrong = await client.post(
                "/events",
                sign_legacy(run, "p3", "revoked", aud="https://c.example"),
                content_type=SECEVENT_JWT,
            )
            assert (wrong.status_code, wrong.json()["err"]) == (400, "invalid_audience")
            got = []
            with anyio.fail_after(10_000 * MS):
                async for rx in run.node.receive():
                    got.append(rx.jti)
                    await rx.done()
                    if len(got) == 2:
                        break
    assert sorted(got) == ["p1", "p2"]


class Failing:
    """A poll endpoint: empty answers at first, then errors (500, then garbage)."""

    def __init__(self) -> None:
        self.fail = False
        self.times: list[float] = []

    def __call__(self, call: Call) -> Answer:
        self.times.append(time.monotonic())
        assert call.json()["returnImmediately"] is True  # poll_mode = "short"
        if not self.fail:
            return Answer(200, {"sets": {}})
        return Answer(500) if len(self.times) % 2 else Answer(200, b"<html>oops</html>")


@pytest.mark.slow
async def test_short_polls_and_an_erroring_endpoint_shows_down(tmp_path: Path) -> None:
    """``poll_mode = "short"``: every poll asks for an immediate answer and empty ones
    are ``poll_interval`` apart. A poll endpoint that answers errors (POLL-21: a
    500, a 200 that is no poll response) shows the session ``down`` in ``stats()``,
    ``setpeer status`` and ``/metrics``; it was ``poll`` while it answered."""
    failing = Failing()
    async with fake_partner(failing) as fake:
        extra = '[partners.dialect]\npoll_mode = "short"\npoll_interval = 0.25\n'
        async with sender_node(tmp_path, fake, receive_via="poll", extra=extra) as run:
            await wait_for(lambda: len(failing.times) >= 3)
            assert run.node.stats()["b"]["session"] == "poll"
            gaps = [b - a for a, b in zip(failing.times, failing.times[1:], strict=False)]
            assert all(gap >= 0.2 for gap in gaps[:2]), gaps
            failing.fail = True
            count = len(failing.times)
            await wait_for(lambda: len(failing.times) >= count + 2)
            await wait_for(lambda: run.node.stats()["b"]["session"] == "down")
            status = await setpeer_status(run.config)
            async with httpx.AsyncClient() as http:
                metrics = (await http.get(run.node.url + "/metrics")).text
    assert status["b"]["session"] == "down"
    assert 'setpeer_session{partner="b",state="down"} 1.0' in metrics
