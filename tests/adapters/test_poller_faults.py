"""RFC 8936 poll, recipient side (``receive_via = "poll"``) against a scripted endpoint.

The fake partner is the transmitter: its ``/poll`` fails first (500, a garbage 200,
a dropped connection) and then serves SETs, some of them again after they were
acknowledged, some of them invalid. The node must store each valid SET once,
acknowledge every receipt in a later poll and report the invalid ones in
``setErrs`` (POLL-4, POLL-7, POLL-11, POLL-12, POLL-15, POLL-19, POLL-22).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio

from peer.tokens.keys import generate_private_jwks
from peer.tokens.sign import Signer, build_claims

from .fake_partner import (
    Action,
    Answer,
    Call,
    Drop,
    FakePartner,
    SenderNode,
    fake_partner,
    sender_node,
)
from .wire import MS, SESSION_REVOKED, setpeer_status, wait_for


class Transmitter:
    """The fake's poll endpoint: fails as told, then serves what is not yet answered.

    Args:
        failures: answers for the first polls.
        served: jti -> SET to serve until the node acks or refuses it.
        again: jtis to serve once more after their ack (a redelivery, POLL-15).
    """

    def __init__(self, failures: list[Action], again: tuple[str, ...] = ()) -> None:
        self.failures = list(failures)
        self.served: dict[str, Any] = {}
        self.again = set(again)
        self.acked: list[str] = []
        self.errors: dict[str, Any] = {}

    def __call__(self, call: Call) -> Action:
        if self.failures:
            return self.failures.pop(0)
        request = call.json()
        self.acked += request.get("ack", [])
        self.errors.update(request.get("setErrs", {}))
        answered = set(self.acked) | set(self.errors)
        sets = {jti: tok for jti, tok in self.served.items() if jti not in answered}
        for jti in sorted(self.again & set(self.acked)):
            self.again.discard(jti)
            sets[jti] = self.served[jti]
        if sets:
            return Answer(200, {"sets": sets})
        # Nothing to serve: an empty answer after a while, as a long poll would give.
        return Answer(200, {"sets": {}}, delay=0 if request.get("returnImmediately") else 0.2)


def sign_from_b(run: SenderNode, jti: str, **overrides: Any) -> str:
    """A SET from the fake partner b to node a, signed with b's key."""
    claims = build_claims(
        iss=run.b.issuer,
        aud=run.a.issuer,
        events={SESSION_REVOKED: {}},
        iat=int(time.time()),
        jti=jti,
    )
    claims.update(overrides)
    return Signer(json.loads((run.b.folder / "b.jwks.json").read_text())).sign(claims)


def polls(fake: FakePartner) -> list[Call]:
    return fake.paths("/poll")


async def test_endpoint_faults_then_recovery(tmp_path: Path) -> None:
    """POLL-4, POLL-6, POLL-7, POLL-11, POLL-15, POLL-17, POLL-21: after a 500, an
    unreadable 200 and a dropped connection the node keeps polling; it stores each
    SET once, acknowledges it in its next poll (at once: ``returnImmediately``), and
    acknowledges a redelivered SET again without storing it twice."""
    transmitter = Transmitter([Answer(500), Answer(200, b"garbage"), Drop()], again=("s1",))
    async with fake_partner(transmitter) as fake:
        async with sender_node(tmp_path, fake, receive_via="poll") as run:
            transmitter.served = {jti: sign_from_b(run, jti) for jti in ("s1", "s2")}
            got: list[str] = []
            with anyio.fail_after(15_000 * MS):
                async for rx in run.node.receive():
                    got.append(rx.jti)
                    await rx.done()
                    if len(got) == 2:
                        break
            await wait_for(lambda: transmitter.acked.count("s1") >= 2, timeout=10_000 * MS)
            await anyio.sleep(100 * MS)
            stats = run.node.stats()["b"]
            assert stats["received"] == 2 and stats["session"] == "poll"
            status = await setpeer_status(run.config)
            assert (status["b"]["received"], status["b"]["session"]) == (2, "poll")
    assert sorted(got) == ["s1", "s2"]
    assert sorted(set(transmitter.acked)) == ["s1", "s2"] and transmitter.errors == {}
    calls = polls(fake)
    for call in calls:
        assert call.headers["content-type"] == "application/json"  # POLL-2
        assert call.headers["accept"] == "application/json"
        assert call.headers["authorization"] == run.bearer
        request = call.json()
        assert isinstance(request["returnImmediately"], bool)
        assert isinstance(request.get("maxEvents", 1), int) and request.get("maxEvents", 1) > 0
    # The poll answering SETs is followed by one that acks them without waiting.
    acking = next(call.json() for call in calls if "s2" in call.json().get("ack", []))
    assert acking["returnImmediately"] is True


async def _bad_sets_polled(tmp_path: Path) -> tuple[Transmitter, list[Call]]:
    transmitter = Transmitter([])
    async with fake_partner(transmitter) as fake:
        async with sender_node(tmp_path, fake, receive_via="poll") as run:
            foreign = Signer(generate_private_jwks("ES256")).sign(
                build_claims(
                    iss=run.b.issuer,
                    aud=run.a.issuer,
                    events={SESSION_REVOKED: {}},
                    iat=int(time.time()),
                    jti="foreign",
                )
            )
            transmitter.served = {
                "good": sign_from_b(run, "good"),
                "wrong-aud": sign_from_b(run, "wrong-aud", aud="https://c.example"),
                "wrong-iss": sign_from_b(run, "wrong-iss", iss="https://evil.example"),
                "foreign": foreign,
                "mismatch": sign_from_b(run, "other-jti"),
                "number": 5,
            }
            await wait_for(lambda: len(transmitter.errors) == 5 and transmitter.acked)
            assert run.node.stats()["b"]["received"] == 1
    return transmitter, polls(fake)


async def test_invalid_sets_are_reported_in_set_errs(tmp_path: Path) -> None:
    """POLL-4, POLL-5, POLL-12, POLL-19, decision 10: SETs that fail validation are
    answered in ``setErrs`` of the next poll with their RFC 8935 code and a
    description; the valid one is acked and stored."""
    transmitter, _ = await _bad_sets_polled(tmp_path)
    assert transmitter.acked == ["good"]
    assert {jti: e["err"] for jti, e in transmitter.errors.items()} == {
        "wrong-aud": "invalid_audience",
        "wrong-iss": "invalid_issuer",
        "foreign": "invalid_key",
        "mismatch": "invalid_request",
        "number": "invalid_request",
    }
    assert all(e["description"] for e in transmitter.errors.values())


async def test_poll_carrying_descriptions_has_content_language(tmp_path: Path) -> None:
    """POLL-22 (RFC 8936 §2.6): a poll request carrying error descriptions includes
    ``Content-Language`` naming their language."""
    _, calls = await _bad_sets_polled(tmp_path)
    reporting = [call for call in calls if call.json().get("setErrs")]
    assert reporting
    for call in reporting:
        assert call.headers.get("content-language") == "en", call.headers
