"""RFC 8935 push, transmitter side (``send_via = "push"``) against a scripted partner.

Each SET's fate is scripted by its jti: answers a later attempt may fix (5xx, 429,
408, 401, a hang, a dropped connection) are retried until the partner takes it;
a 400 with an error code ends it at once with the partner's code (PUSH-21); an
endpoint that never takes it exhausts ``max_attempts``. Nothing is lost silently:
every end shows in ``failures()``, ``stats()`` and ``setpeer status``.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from .fake_partner import Action, Answer, Drop, Hang, by_jti, fake_partner, sender_node
from .wire import FAST, MS, SECEVENT_JWT, SESSION_REVOKED, setpeer_status, setpeer_status_table

ACCEPT = Answer(202)


def _error(code: str, status: int = 400) -> Answer:
    return Answer(status, {"err": code, "description": f"scripted {code}"})


async def test_recoverable_answers_are_retried_until_delivered(tmp_path: Path) -> None:
    """PUSH-11, PUSH-13, PUSH-21, decision 7: 5xx, 429, 408, 401 and a 400
    ``authentication_failed`` are retried; each SET is delivered, acked once, and never
    sent after its 202. PUSH-2..4: each POST carries exactly one SET, with the
    required headers."""
    plans: dict[str, list[Action]] = {
        "r500": [Answer(500), Answer(500)],
        "r502": [Answer(502, b"<html>bad gateway</html>", {"content-type": "text/html"})],
        "r429": [Answer(429)],
        "r408": [Answer(408)],
        "r401": [Answer(401, headers={"www-authenticate": 'Bearer error="invalid_token"'})],
        "auth400": [_error("authentication_failed")],
    }
    async with fake_partner(by_jti(plans, lambda call: ACCEPT)) as fake:
        async with sender_node(tmp_path, fake, send_via="push") as run:
            node = run.node
            for jti in plans:
                await node.publish("b", {SESSION_REVOKED: {}}, jti=jti)
            await node.flush(timeout=20_000 * MS)
            assert node.failures() == []
            stats = node.stats()["b"]
            assert (stats["acked"], stats["failed"], stats["pending"]) == (len(plans), 0, 0)
            assert stats["session"] == "push"
            seen = len(fake.calls)
            await anyio.sleep(300 * MS)
            assert len(fake.calls) == seen  # nothing is sent again after its 202
            status = await setpeer_status(run.config)
            assert (status["b"]["acked"], status["b"]["failed"]) == (len(plans), 0)
    for jti, plan in plans.items():
        calls = [call for call in fake.calls if jti in call.sets()]
        assert len(calls) == len(plan) + 1, (jti, len(calls))
    for call in fake.calls:
        assert call.path == "/events"
        assert call.headers["content-type"] == SECEVENT_JWT
        assert call.headers["accept"] == "application/json"
        assert call.headers["authorization"] == run.bearer
        token = call.body.decode("ascii")
        assert token.count(".") == 2 and token.strip() == token  # the bare compact JWS


async def test_hang_and_dropped_connection_are_retried(tmp_path: Path) -> None:
    """PUSH-11, PUSH-21: a partner that never answers is given up on after
    ``ack_timeout`` (the adapters' HTTP timeout) and the SET retried; a connection
    closed without an answer is retried too. Both end delivered."""
    plans: dict[str, list[Action]] = {"hang": [Hang()], "drop": [Drop(), Drop()]}
    async with fake_partner(by_jti(plans, lambda call: ACCEPT)) as fake:
        async with sender_node(tmp_path, fake, send_via="push") as run:
            for jti in plans:
                await run.node.publish("b", {SESSION_REVOKED: {}}, jti=jti)
            await run.node.flush(timeout=20_000 * MS)
            assert run.node.failures() == []
            assert run.node.stats()["b"]["acked"] == 2
    hung = [call for call in fake.calls if "hang" in call.sets()]
    assert len(hung) == 2
    assert hung[1].at - hung[0].at >= FAST["ack_timeout"] - 50 * MS  # the timeout ran out
    assert len([call for call in fake.calls if "drop" in call.sets()]) == 3


@pytest.mark.slow
async def test_a_failed_request_does_not_resend_sets_still_in_flight(tmp_path: Path) -> None:
    """PUSH-11 (retransmit only when a failure is suspected), PUSH-21: a connection
    dropped on one POST says nothing about the other POSTs still waiting for their
    answer; their SETs must not be sent a second time meanwhile."""
    plans: dict[str, list[Action]] = {"slow": [Answer(202, delay=1.0)], "drop": [Drop()]}
    async with fake_partner(by_jti(plans, lambda call: ACCEPT)) as fake:
        limits = {"ack_timeout": 5.0}  # the slow answer is well within its time
        async with sender_node(tmp_path, fake, send_via="push", limits=limits) as run:
            node = run.node
            await node.publish("b", {SESSION_REVOKED: {}}, jti="first")  # the endpoint is up
            await node.flush(timeout=5_000 * MS)
            await node.publish("b", {SESSION_REVOKED: {}}, jti="slow")
            with anyio.fail_after(5_000 * MS):
                while not any("slow" in call.sets() for call in fake.calls):  # noqa: ASYNC110
                    await anyio.sleep(5 * MS)
            await node.publish("b", {SESSION_REVOKED: {}}, jti="drop")
            await node.flush(timeout=10_000 * MS)
            assert node.failures() == []
    sent = [jti for call in fake.calls for jti in call.sets()]
    assert sent.count("slow") == 1, sent


@pytest.mark.slow
async def test_retry_after_is_honoured(tmp_path: Path) -> None:
    """PUSH-11, PUSH-21: a 503 with ``Retry-After: 1`` is retried, not before a second
    has passed (for that SET and for the others waiting behind it)."""
    plans: dict[str, list[Action]] = {"busy": [Answer(503, headers={"retry-after": "1"})]}
    async with fake_partner(by_jti(plans, lambda call: ACCEPT)) as fake:
        async with sender_node(tmp_path, fake, send_via="push") as run:
            await run.node.publish("b", {SESSION_REVOKED: {}}, jti="busy")
            while not fake.calls:  # noqa: ASYNC110 - waiting for the fake's first request
                await anyio.sleep(5 * MS)
            await run.node.publish("b", {SESSION_REVOKED: {}}, jti="behind")
            await run.node.flush(timeout=10_000 * MS)
            assert run.node.failures() == []
    first, *later = fake.calls
    assert first.sets().keys() == {"busy"}
    assert {jti for call in later for jti in call.sets()} == {"busy", "behind"}
    assert min(call.at for call in later) - first.at >= 1.0 - 20 * MS


async def test_error_codes_fail_at_once_with_the_partner_code(tmp_path: Path) -> None:
    """PUSH-14, PUSH-15, PUSH-18, PUSH-21, decisions 4/5: a 400 (or 403) with an error
    code is a final refusal: no retry, failed with the code and description verbatim
    (unknown codes too); 400 without a body, 413 and 415 are ``invalid_request``."""
    plans: dict[str, list[Action]] = {
        "invalid_request": [_error("invalid_request")],
        "invalid_key": [_error("invalid_key")],
        "invalid_issuer": [_error("invalid_issuer")],
        "invalid_audience": [_error("invalid_audience")],
        "access_denied": [_error("access_denied", 403)],
        "invalid_state": [_error("invalid_state")],
        "problem": [
            Answer(
                400,
                {"type": "about:blank", "err": "invalid_key", "detail": "problem details"},
                {"content-type": "application/problem+json"},
            )
        ],
        "bare400": [Answer(400)],
        "too_large": [Answer(413)],
        "media": [Answer(415)],
    }
    expected = {
        "invalid_request": ("invalid_request", "scripted invalid_request"),
        "invalid_key": ("invalid_key", "scripted invalid_key"),
        "invalid_issuer": ("invalid_issuer", "scripted invalid_issuer"),
        "invalid_audience": ("invalid_audience", "scripted invalid_audience"),
        "access_denied": ("access_denied", "scripted access_denied"),
        "invalid_state": ("invalid_state", "scripted invalid_state"),
        "problem": ("invalid_key", "problem details"),
    }
    async with fake_partner(by_jti(plans, lambda call: ACCEPT)) as fake:
        async with sender_node(tmp_path, fake, send_via="push") as run:
            node = run.node
            for jti in plans:
                await node.publish("b", {SESSION_REVOKED: {}}, jti=jti)
            await node.flush(timeout=10_000 * MS)
            failures = {f.jti: (f.err, f.description) for f in node.failures()}
            assert failures.keys() == plans.keys()
            for jti, outcome in expected.items():
                assert failures[jti] == outcome, jti
            for jti in ("bare400", "too_large", "media"):
                assert failures[jti][0] == "invalid_request", failures[jti]
            stats = node.stats()["b"]
            assert (stats["failed"], stats["acked"], stats["pending"]) == (len(plans), 0, 0)
            status = await setpeer_status(run.config)
            assert (status["b"]["failed"], status["b"]["pending"]) == (len(plans), 0)
    assert len(fake.calls) == len(plans)  # one attempt each: none retried


async def test_attempts_run_out(tmp_path: Path) -> None:
    """PUSH-11, MP-21 (the same cap for push): an endpoint that always fails gets
    exactly ``max_attempts`` POSTs, then the SET fails with ``delivery_exhausted``."""
    async with fake_partner(lambda call: Answer(500)) as fake:
        async with sender_node(tmp_path, fake, send_via="push") as run:
            jti = await run.node.publish("b", {SESSION_REVOKED: {}})
            await run.node.flush(timeout=10_000 * MS)
            [failure] = run.node.failures()
            assert (failure.jti, failure.err) == (jti, "delivery_exhausted")
            await anyio.sleep(300 * MS)
        status = await setpeer_status(run.config)  # after the node stopped: from the store
    assert len(fake.calls) == FAST["max_attempts"]
    assert (status["b"]["failed"], status["b"]["pending"], status["b"]["inflight"]) == (1, 0, 0)


@pytest.mark.slow
async def test_status_shows_attempts_while_retrying(tmp_path: Path) -> None:
    """PUSH-21: while the partner keeps failing, ``setpeer status`` shows the SET in
    flight with its attempts counted; ``--json`` shows it unfinished, not failed."""
    async with fake_partner(lambda call: Answer(503)) as fake:
        limits = {"max_attempts": 1000, "retry_max": 0.1}
        async with sender_node(tmp_path, fake, send_via="push", limits=limits) as run:
            await run.node.publish("b", {SESSION_REVOKED: {}})
            with anyio.fail_after(10_000 * MS):
                while len(fake.calls) < 3:  # noqa: ASYNC110 - waiting for the fake's requests
                    await anyio.sleep(10 * MS)
            # Attempts reach the store up to a second after they are made (the Link
            # holds them, to skip the write when the ack comes first).
            with anyio.fail_after(5_000 * MS):
                while (table := await setpeer_status_table(run.config))["b"]["attempts"] == "-":  # noqa: ASYNC110
                    await anyio.sleep(100 * MS)
            status = await setpeer_status(run.config)
            stats = run.node.stats()["b"]
    assert int(table["b"]["attempts"]) >= 3, table
    assert int(status["b"]["pending"]) + int(status["b"]["inflight"]) == 1
    assert (status["b"]["failed"], status["b"]["acked"]) == (0, 0)
    assert stats["failed"] == 0
    assert int(stats["pending"]) + int(stats["inflight"]) == 1
    assert len({jti for call in fake.calls for jti in call.sets()}) == 1  # the same SET
