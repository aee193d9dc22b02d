"""Multi-push, transmitter side (``send_via = "multipush"``) against a scripted partner.

Faults a later request may fix (5xx, 429, ``Retry-After``, a hang, a dropped
connection, an unreadable 202) are retried until the partner acks (MP-8, MP-21); a
request-level refusal fails the batch's SETs with the partner's code (MP-17); a 413
halves the batch (MP-22); answers owed are collected with an empty batch (MP-3),
late and unknown ones are handled (MP-5, MP-18); attempts run out visibly.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from .fake_partner import Action, Answer, Call, Drop, Hang, fake_partner, sender_node
from .wire import FAST, MS, SESSION_REVOKED, jti_of, setpeer_status, wait_for


def ack_all(call: Call) -> Answer:
    """The -02 success answer: 202, every SET of the request acked."""
    return Answer(202, {"ack": list(call.sets())})


def scripted(actions: list[Action], then: Callable[[Call], Action] = ack_all) -> Any:
    """Non-empty batches take ``actions`` in turn, then ``then``; empty ones get ``ack: []``."""
    remaining = list(actions)

    def script(call: Call) -> Action:
        if not call.sets():
            return Answer(202, {"ack": []})
        return remaining.pop(0) if remaining else then(call)

    return script


def sent(calls: list[Call], jti: str) -> list[Call]:
    return [call for call in calls if jti in call.sets()]


@pytest.mark.slow
async def test_faults_are_retried_until_acked(tmp_path: Path) -> None:
    """MP-8, MP-21, PUSH-21, decision 4: 500, 429, a hang past ``ack_timeout``, a
    dropped connection and malformed 202 bodies are each retried; the SET is acked by
    a 200 (multi-push-00) in the end and never sent again (MP-9). MP-10, MP-11: every
    request is a JSON ``{"sets": {jti: SET}}`` POST with the required headers."""
    faults: list[Action] = [
        Answer(500),
        Answer(429),
        Hang(),
        Drop(),
        Answer(202, b"not json", {"content-type": "application/json"}),
        Answer(202, {"ack": "not-a-list"}),
        Answer(202, []),
    ]
    limits = {"max_attempts": 20}

    def acked_by_200(call: Call) -> Action:
        return Answer(200, {"ack": list(call.sets())})  # multi-push-00's success status

    async with fake_partner(scripted(faults, acked_by_200)) as fake:
        async with sender_node(tmp_path, fake, send_via="multipush", limits=limits) as run:
            jti = await run.node.publish("b", {SESSION_REVOKED: {}})
            await run.node.flush(timeout=20_000 * MS)
            assert run.node.failures() == []
            assert run.node.stats()["b"]["acked"] == 1
            seen = len(sent(fake.calls, jti))
            await anyio.sleep(300 * MS)
            assert len(sent(fake.calls, jti)) == seen  # MP-9: never sent after the ack
    assert seen == len(faults) + 1
    for call in fake.calls:
        assert call.path == "/multipush"
        assert call.headers["content-type"] == "application/json"
        assert call.headers["accept"] == "application/json"
        assert call.headers["authorization"] == run.bearer
        for key, token in call.json()["sets"].items():
            assert jti_of(token) == key


@pytest.mark.slow
async def test_retry_after_then_batch_halved_after_413(tmp_path: Path) -> None:
    """MP-22, MP-23, PUSH-11: after ``Retry-After: 1`` nothing is sent for a second;
    the SETs published meanwhile go in one batch (nothing held back), the partner's
    413 halves the batch until it fits, and every SET is acked exactly once."""
    first_answer: list[Action] = [Answer(503, headers={"retry-after": "1"})]

    def within_two(call: Call) -> Action:
        return Answer(413) if len(call.sets()) > 2 else ack_all(call)

    async with fake_partner(scripted(first_answer, within_two)) as fake:
        limits = {"max_attempts": 10}
        async with sender_node(tmp_path, fake, send_via="multipush", limits=limits) as run:
            node = run.node
            jtis = [await node.publish("b", {SESSION_REVOKED: {}})]
            await wait_for(lambda: len(fake.calls) >= 1)
            jtis += [await node.publish("b", {SESSION_REVOKED: {}}) for _ in range(8)]
            await node.flush(timeout=20_000 * MS)
            assert node.failures() == []
            assert node.stats()["b"]["acked"] == 9
    batches = [call for call in fake.calls if call.sets()]
    assert min(call.at for call in batches[1:]) - batches[0].at >= 1.0 - 20 * MS
    assert len(batches[1].sets()) >= 8  # MP-23: all that was due, in one request
    accepted = [call for call in batches[1:] if len(call.sets()) <= 2]
    assert sorted(j for call in accepted for j in call.sets()) == sorted(jtis)


async def test_request_level_refusals_fail_the_batch_with_the_code(tmp_path: Path) -> None:
    """MP-17, MP-19, PUSH-18, PUSH-21, decision 7: a 400/403 with an error code fails
    every SET of the request with it (unknown codes verbatim), without a retry; 400
    ``authentication_failed`` is retried; a 413 for a single SET is final."""
    codes = [
        (400, "invalid_request"),
        (400, "invalid_key"),
        (400, "invalid_issuer"),
        (400, "invalid_audience"),
        (403, "access_denied"),
        (400, "too_many_sets"),
    ]
    actions: list[Action] = [
        Answer(status, {"err": code, "description": f"scripted {code}"}) for status, code in codes
    ]
    actions += [Answer(413), Answer(400, {"err": "authentication_failed"})]
    async with fake_partner(scripted(actions)) as fake:
        async with sender_node(tmp_path, fake, send_via="multipush") as run:
            node = run.node
            for count in range(1, len(codes) + 2):
                await node.publish("b", {SESSION_REVOKED: {}})
                await wait_for(lambda count=count: len(node.failures()) == count)  # type: ignore[misc]
            retried = await node.publish("b", {SESSION_REVOKED: {}})
            await node.flush(timeout=10_000 * MS)
            failures = [(f.err, f.description) for f in node.failures()]
            stats = node.stats()["b"]
            status = await setpeer_status(run.config)
    assert failures[: len(codes)] == [(code, f"scripted {code}") for _, code in codes]
    assert failures[-1][0] == "invalid_request"  # the 413 for one SET
    assert (stats["failed"], stats["acked"], stats["pending"]) == (len(codes) + 1, 1, 0)
    assert (status["b"]["failed"], status["b"]["acked"]) == (len(codes) + 1, 1)
    assert len(sent(fake.calls, retried)) == 2  # authentication_failed, then acked
    assert len([call for call in fake.calls if call.sets()]) == len(codes) + 3


async def test_answers_owed_are_collected_and_late_ones_count(tmp_path: Path) -> None:
    """MP-3, MP-5, MP-7, MP-18: a 202 that answers nothing leaves the SETs in flight
    (an ack for an unknown jti is ignored); an empty batch collects the answers later
    (an ack and a setErr for earlier SETs), and nothing is sent twice."""
    later: dict[str, Any] = {}

    def script(call: Call) -> Action:
        if call.sets():
            later.update(call.sets())
            return Answer(202, {"ack": ["never-sent"]})
        if len(later) < 2:
            return Answer(202, {"ack": []})
        ok, bad = sorted(later)
        return Answer(
            202,
            {"ack": [ok], "setErrs": {bad: {"err": "invalid_key", "description": "late"}}},
            {"content-language": "en"},
        )

    async with fake_partner(script) as fake:
        limits = {"ack_timeout": 5.0}  # no retry: the answers come by collection
        async with sender_node(tmp_path, fake, send_via="multipush", limits=limits) as run:
            node = run.node
            jtis = sorted([await node.publish("b", {SESSION_REVOKED: {}}) for _ in range(2)])
            await node.flush(timeout=10_000 * MS)
            assert [(f.jti, f.err, f.description) for f in node.failures()] == [
                (jtis[1], "invalid_key", "late")
            ]
            assert node.stats()["b"]["acked"] == 1
    assert [len(sent(fake.calls, jti)) for jti in jtis] == [1, 1]
    assert any(call.json() == {"sets": {}} for call in fake.calls)  # MP-3


async def test_attempts_run_out(tmp_path: Path) -> None:
    """MP-21: a partner that always fails gets ``max_attempts`` requests for the SET,
    which then fails with ``delivery_exhausted``, in failures(), stats() and status."""
    async with fake_partner(scripted([], lambda call: Answer(503))) as fake:
        async with sender_node(tmp_path, fake, send_via="multipush") as run:
            jti = await run.node.publish("b", {SESSION_REVOKED: {}})
            await run.node.flush(timeout=10_000 * MS)
            assert [(f.jti, f.err) for f in run.node.failures()] == [(jti, "delivery_exhausted")]
            assert run.node.stats()["b"]["failed"] == 1
        status = await setpeer_status(run.config)
    assert len(sent(fake.calls, jti)) == FAST["max_attempts"]
    assert (status["b"]["failed"], status["b"]["pending"], status["b"]["inflight"]) == (1, 0, 0)


@pytest.mark.slow
async def test_a_dropped_batch_does_not_resend_batches_in_flight(tmp_path: Path) -> None:
    """MP-8, PUSH-11: a connection dropped on one request is no reason to send the
    SETs of another request, still waiting for its answer, a second time."""

    def script(call: Call) -> Action:
        sets = call.sets()
        if not sets:
            return Answer(202, {"ack": []})
        if "slow" in sets:
            return Answer(202, {"ack": list(sets)}, delay=1.0)
        if "drop" in sets and not script.dropped:  # type: ignore[attr-defined]
            script.dropped = True  # type: ignore[attr-defined]
            return Drop()
        return ack_all(call)

    script.dropped = False  # type: ignore[attr-defined]
    async with fake_partner(script) as fake:
        limits = {"ack_timeout": 5.0}  # the slow answer is well within its time
        async with sender_node(tmp_path, fake, send_via="multipush", limits=limits) as run:
            node = run.node
            await node.publish("b", {SESSION_REVOKED: {}}, jti="first")  # the endpoint is up
            await node.flush(timeout=5_000 * MS)
            await node.publish("b", {SESSION_REVOKED: {}}, jti="slow")
            await wait_for(lambda: sent(fake.calls, "slow"))
            await node.publish("b", {SESSION_REVOKED: {}}, jti="drop")
            await node.flush(timeout=10_000 * MS)
            assert node.failures() == []
    assert len(sent(fake.calls, "slow")) == 1, [
        (round(call.at - fake.calls[0].at, 3), sorted(call.sets())) for call in fake.calls
    ]
