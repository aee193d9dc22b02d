"""``POST /poll``: the node as an RFC 8936 transmitter, polled by a plain HTTP client.

Node ``b`` has ``send_via = "poll"`` for partner ``a``: what it publishes waits until
``a`` polls (POLL-1). The client checks the answers (``sets``, ``moreAvailable``),
long polling, acknowledgement and error reports, redelivery of what it never
acknowledged, and that late, repeated or unknown answers do no harm.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from .wire import (
    MS,
    SESSION_REVOKED,
    Client,
    assert_error,
    jti_of,
    running_node,
    seconds,
    setpeer_status,
    wait_for,
)


async def poll(client: Client, **members: Any) -> tuple[dict[str, Any], float]:
    """One poll; returns the 200 body and how long the answer took."""
    start = time.monotonic()
    response = await client.post("/poll", members)
    elapsed = time.monotonic() - start
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"  # POLL-2
    body: dict[str, Any] = response.json()
    assert isinstance(body["sets"], dict)  # POLL-13: always present
    for jti, token in body["sets"].items():
        assert jti_of(token) == jti  # POLL-13: keyed by each SET's jti
    return body, elapsed


async def publish(node: Any, count: int) -> list[str]:
    return [await node.publish("a", {SESSION_REVOKED: {}}) for _ in range(count)]


@pytest.mark.slow
async def test_return_immediately_and_long_poll_timeout(tmp_path: Path) -> None:
    """POLL-6, POLL-10, POLL-13, POLL-14, POLL-20: ``returnImmediately: true`` answers
    at once with ``{"sets": {}}``; the default long poll waits ``long_poll_timeout``
    and then answers ``{"sets": {}}`` too (``moreAvailable`` omitted)."""
    async with running_node(tmp_path, limits={"long_poll_timeout": 1.0}) as (_, client):
        body, elapsed = await poll(client, returnImmediately=True)
        assert body == {"sets": {}}
        assert elapsed < seconds(0.5)
        body, elapsed = await poll(client)
        assert body == {"sets": {}}
        assert 0.9 <= elapsed < 0.9 + 5_000 * MS
        body, elapsed = await poll(client, returnImmediately=False, maxEvents=10)
        assert body == {"sets": {}} and elapsed >= 0.9


async def test_long_poll_answers_when_a_set_is_published(tmp_path: Path) -> None:
    """POLL-1, POLL-20: a long poll in progress returns the SET published meanwhile,
    long before its timeout."""
    async with running_node(tmp_path, limits={"long_poll_timeout": 20.0}) as (node, client):
        result: dict[str, Any] = {}

        async def long_poll() -> None:
            result["body"], result["elapsed"] = await poll(client)

        async with anyio.create_task_group() as tg:
            tg.start_soon(long_poll)
            await anyio.sleep(200 * MS)
            assert "body" not in result  # still waiting
            [jti] = await publish(node, 1)
        assert list(result["body"]["sets"]) == [jti]
        assert result["elapsed"] < seconds(5)
        assert node.stats()["a"]["inflight"] == 1


async def test_max_events_oldest_first_and_more_available(tmp_path: Path) -> None:
    """POLL-8, POLL-13, POLL-14: never more than ``maxEvents``, oldest first;
    ``moreAvailable`` is true while unserved SETs wait, absent once none do."""
    async with running_node(tmp_path) as (node, client):
        published = await publish(node, 5)
        served: list[str] = []
        while len(served) < 5:
            body, _ = await poll(client, maxEvents=2)
            assert 1 <= len(body["sets"]) <= 2, body
            served.extend(body["sets"])
            assert body.get("moreAvailable", False) is (len(served) < 5), (served, body)
        assert served == published
        body, _ = await poll(client, returnImmediately=True)
        assert body == {"sets": {}}  # all five in flight: nothing to serve


async def test_max_events_zero_is_acknowledge_only(tmp_path: Path) -> None:
    """POLL-9, POLL-11, POLL-3: ``maxEvents: 0`` with ``ack`` takes the ack and
    returns no SET even though one is waiting; the next poll gets it."""
    async with running_node(tmp_path) as (node, client):
        [first] = await publish(node, 1)
        body, _ = await poll(client)
        assert list(body["sets"]) == [first]
        [second] = await publish(node, 1)
        await wait_for(lambda: node.stats()["a"]["pending"] == 1)
        body, elapsed = await poll(client, maxEvents=0, returnImmediately=True, ack=[first])
        assert body == {"sets": {}} and elapsed < seconds(0.5)
        assert node.stats()["a"]["acked"] == 1
        body, _ = await poll(client, maxEvents=10)
        assert list(body["sets"]) == [second]
        body, _ = await poll(client, returnImmediately=True, ack=[second])
        assert body == {"sets": {}}
        await node.flush(timeout=5_000 * MS)
        stats = node.stats()["a"]
        assert (stats["acked"], stats["failed"], stats["pending"], stats["inflight"]) == (
            2,
            0,
            0,
            0,
        )


async def test_acks_and_set_errs_settle_served_sets(tmp_path: Path) -> None:
    """POLL-4, POLL-11, POLL-12, POLL-19, PUSH-18: an ack finishes a SET; a setErr
    fails it with the recipient's code verbatim, unknown codes included; both show in
    ``failures()``, ``stats()`` and ``setpeer status --json``."""
    async with running_node(tmp_path) as (node, client):
        ok, bad, odd = await publish(node, 3)
        body, _ = await poll(client, maxEvents=3)
        while len(body["sets"]) < 3:  # the feeder may hand them over in two reads
            more, _ = await poll(client, maxEvents=3)
            body["sets"].update(more["sets"])
        set_errs = {
            bad: {"err": "invalid_audience", "description": "not for us"},
            odd: {"err": "some_future_code", "description": "a code from a later registry"},
        }
        response = await client.post(
            "/poll",
            {"returnImmediately": True, "ack": [ok], "setErrs": set_errs},
            headers={"content-language": "en"},  # POLL-22: the request carries descriptions
        )
        assert response.status_code == 200 and response.json() == {"sets": {}}
        await node.flush(timeout=5_000 * MS)
        failures = {(f.jti, f.err, f.description) for f in node.failures()}
        assert failures == {
            (bad, "invalid_audience", "not for us"),
            (odd, "some_future_code", "a code from a later registry"),
        }
        stats = node.stats()["a"]
        assert (stats["acked"], stats["failed"], stats["pending"], stats["inflight"]) == (
            1,
            2,
            0,
            0,
        )
        status = await setpeer_status(tmp_path / "b.toml")
        assert (status["a"]["acked"], status["a"]["failed"], status["a"]["pending"]) == (1, 2, 0)


async def test_late_repeated_and_unknown_answers_do_no_harm(tmp_path: Path) -> None:
    """POLL-11, POLL-12, MP-5, decision (same jti in ack and setErrs is an error
    report): acks for unknown jtis, acks sent twice, errors for SETs already acked
    are answered 200 and change nothing."""
    async with running_node(tmp_path) as (node, client):
        a1, a2 = await publish(node, 2)
        served: dict[str, str] = {}
        while len(served) < 2:
            body, _ = await poll(client)
            served.update(body["sets"])
        both = {a2: {"err": "invalid_request", "description": "both"}}
        await poll(client, returnImmediately=True, ack=[a1, a2], setErrs=both)
        for _ in range(2):
            body, _ = await poll(
                client,
                returnImmediately=True,
                ack=[a1, "never-sent", a1],
                setErrs={a1: {"err": "invalid_key"}, "ghost": {"err": "invalid_request"}},
            )
            assert body == {"sets": {}}
        await node.flush(timeout=5_000 * MS)
        stats = node.stats()["a"]
        assert (stats["acked"], stats["failed"]) == (1, 1)
        assert [(f.jti, f.err) for f in node.failures()] == [(a2, "invalid_request")]


async def test_unacked_sets_come_back_after_poll_redelivery(tmp_path: Path) -> None:
    """POLL-15, POLL-7: a poller that disappears without acking gets the same SET
    again on a poll after ``poll_redelivery`` (not before); its ack, sent twice, then
    settles it once."""
    limits = {"poll_redelivery": 0.4, "long_poll_timeout": 3.0, "max_attempts": 5}
    async with running_node(tmp_path, limits=limits) as (node, client):
        [jti] = await publish(node, 1)
        first, _ = await poll(client)
        served_at = time.monotonic()
        assert list(first["sets"]) == [jti]
        # Not served again while its redelivery time has not come.
        body, _ = await poll(client, returnImmediately=True)
        assert body == {"sets": {}}
        again, _ = await poll(client)  # long poll: wakes when it is due again
        assert time.monotonic() - served_at >= 0.4 - 20 * MS
        assert again["sets"] == first["sets"]  # the same SET, byte for byte
        for _ in range(2):
            body, _ = await poll(client, returnImmediately=True, ack=[jti])
            assert body == {"sets": {}}
        await node.flush(timeout=5_000 * MS)
        assert node.stats()["a"]["acked"] == 1 and node.failures() == []


async def test_attempt_cap_fails_a_set_never_acknowledged(tmp_path: Path) -> None:
    """POLL-16, POLL-3: after ``max_attempts`` servings without an answer the SET fails
    with ``delivery_exhausted``: visible in failures(), stats() and status, never lost
    silently, never served again."""
    limits = {"poll_redelivery": 0.3, "long_poll_timeout": 3.0, "max_attempts": 2}
    async with running_node(tmp_path, limits=limits) as (node, client):
        [jti] = await publish(node, 1)
        for _ in range(2):
            body, _ = await poll(client)
            assert list(body["sets"]) == [jti]
        await wait_for(lambda: node.failures() != [], timeout=5_000 * MS)
        [failure] = node.failures()
        assert (failure.jti, failure.err) == (jti, "delivery_exhausted")
        body, _ = await poll(client, returnImmediately=True)
        assert body == {"sets": {}}
        stats = node.stats()["a"]
        assert (stats["failed"], stats["pending"], stats["inflight"]) == (1, 0, 0)
        await node.flush(timeout=5_000 * MS)
        status = await setpeer_status(tmp_path / "b.toml")
        assert (status["a"]["failed"], status["a"]["pending"], status["a"]["inflight"]) == (1, 0, 0)


async def test_invalid_poll_requests(tmp_path: Path) -> None:
    """POLL-21, POLL-2, POLL-23: an invalid poll request is a 400 (its answers are not
    applied); wrong media type 415; no credentials 401 with WWW-Authenticate; 405
    for anything but POST."""
    async with running_node(tmp_path) as (node, client):
        [jti] = await publish(node, 1)
        body, _ = await poll(client)
        assert list(body["sets"]) == [jti]
        bad: list[bytes | dict[str, Any]] = [
            b"{not json",
            b"[]",
            b'{"maxEvents": 1, "maxEvents": 2}',
            {"maxEvents": -1},
            {"maxEvents": "5"},
            {"maxEvents": 1.5},
            {"maxEvents": True},
            {"returnImmediately": "true"},
            {"returnImmediately": 1},
            {"ack": jti},
            {"ack": [5]},
            {"ack": [jti], "setErrs": []},
            {"ack": [jti], "setErrs": {"x": {}}},
            {"ack": [jti], "setErrs": {"x": "invalid_request"}},
        ]
        for request in bad:
            response = await client.post("/poll", request)
            assert response.status_code == 400, (request, response.text)
        assert node.stats()["a"]["acked"] == 0  # the acks in refused requests did not count
        response = await client.post("/poll", {"ack": [jti]}, content_type="text/plain")
        assert_error(response, 415, "invalid_request")
        response = await client.post("/poll", {"returnImmediately": True}, auth=False)
        assert_error(response, 401, "authentication_failed")
        assert response.headers["www-authenticate"].startswith("Bearer")
        for method in ("GET", "PUT", "DELETE"):
            response = await client.http.request(method, client.url("/poll"))
            assert (response.status_code, response.headers["allow"]) == (405, "POST")
        assert node.stats()["a"]["acked"] == 0


async def test_unknown_members_are_ignored(tmp_path: Path) -> None:
    """POLL wire format: unknown request members are ignored; ``acks``, where pollers
    on the older drafts acknowledge, is read as ``ack`` on ``/poll`` (decision 2)."""
    async with running_node(tmp_path) as (node, client):
        [first] = await publish(node, 1)
        body, _ = await poll(client, future_member={"x": 1})
        assert list(body["sets"]) == [first]
        await poll(client, returnImmediately=True, acks=[first], maxEvents=0)
        await wait_for(lambda: node.stats()["a"]["acked"] == 1)
        [second] = await publish(node, 1)
        body, _ = await poll(client)
        assert list(body["sets"]) == [second]
        await poll(client, returnImmediately=True, ack=[second], acks=[second], maxEvents=0)
        await wait_for(lambda: node.stats()["a"]["acked"] == 2)
