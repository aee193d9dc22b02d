"""A correctly signed SET with a huge number in a time claim is refused alone.

``"iat": 10**400`` is valid JSON, and Python's reader returns it as an int; ``float()``
of it, ``math.isfinite`` of it and its sum with a float raise OverflowError. Before the
bound on NumericDates that error escaped the verifier: HTTP 500 on every route, close
1011 on a WebSocket, and the valid SETs of the same frame were neither stored nor acked.
Now each such SET gets ``invalid_request`` in ``setErrs`` and the rest go through.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from peer import Peer
from peer.tokens.jose import sign_bytes
from tests.adapters.wire import running_node
from tests.hostile.helpers import Attacker, b64
from tests.peers import make_pair, write_config
from tests.timing import seconds

HUGE = 10**400
CLAIMS = ("iat", "exp", "nbf", "toe")


def huge_set(attacker: Attacker, jti: str, claim: str, value: Any = HUGE) -> str:
    """A SET from ``a`` signed with its real key whose ``claim`` is ``value``.

    stdlib json: orjson (the Signer's encoder) cannot write integers beyond 64 bits.
    """
    claims = attacker.claims(jti) | {claim: value}
    header = {"alg": "ES256", "typ": "secevent+jwt", "kid": attacker.key.kid}
    data = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    return data + "." + b64(sign_bytes("ES256", attacker.key.private_key, data.encode()))


def frame(attacker: Attacker, tag: str) -> tuple[dict[str, str], set[str], set[str]]:
    """Two valid SETs and one huge-number SET per time claim: (sets, good, bad)."""
    good = {f"{tag}-ok-1", f"{tag}-ok-2"}
    bad = {f"{tag}-{claim}" for claim in CLAIMS} | {f"{tag}-neg-iat"}
    sets = {jti: attacker.set_token(jti) for jti in good}
    sets |= {f"{tag}-{claim}": huge_set(attacker, f"{tag}-{claim}", claim) for claim in CLAIMS}
    sets[f"{tag}-neg-iat"] = huge_set(attacker, f"{tag}-neg-iat", "iat", -HUGE)
    return sets, good, bad


def check_answer(body: dict[str, Any], good: set[str], bad: set[str]) -> None:
    assert set(body.get("ack", [])) == good, body
    assert {jti: e["err"] for jti, e in body.get("setErrs", {}).items()} == dict.fromkeys(
        bad, "invalid_request"
    )


async def received(node: Peer, count: int) -> set[str]:
    got: set[str] = set()
    with anyio.fail_after(seconds(10)):
        async for rx in node.receive():
            got.add(rx.jti)
            await rx.done()
            if len(got) == count:
                return got
    return got


async def test_huge_numbers_over_websocket_and_http_pushpull(tmp_path: Path) -> None:
    """One frame per transport: the valid SETs are acked and stored, each huge one
    refused with invalid_request, the session stays open (no 1011, no 500)."""
    a_files, b_files = make_pair(tmp_path)
    async with Peer(write_config(b_files, a_files)) as node:
        attacker = Attacker(node.url, a_files, b_files)
        started = time.perf_counter()
        sets, good_ws, bad = frame(attacker, "ws")
        async with await attacker.session() as ws:
            await ws.send(json.dumps({"sets": sets}))
            with anyio.fail_after(seconds(10)):
                reply: dict[str, Any] = {}
                while not reply.get("ack") and not reply.get("setErrs"):
                    reply = json.loads(await ws.recv())
            check_answer(reply, good_ws, bad)
            # The session is still usable: another valid SET is acked on it.
            await ws.send(json.dumps({"sets": {"ws-after": attacker.set_token("ws-after")}}))
            with anyio.fail_after(seconds(10)):
                while "ws-after" not in reply.get("ack", []):
                    reply = json.loads(await ws.recv())
        sets, good_http, bad = frame(attacker, "http")
        async with httpx.AsyncClient() as client:
            response = await client.post(
                attacker.http, json={"sets": sets}, headers=attacker.auth, timeout=seconds(10)
            )
        assert response.status_code == 200, response.text
        check_answer(response.json(), good_http, bad)
        stored = await received(node, 5)
        print(f"huge-number frames over ws+http answered in {time.perf_counter() - started:.2f} s")
        assert stored == good_ws | good_http | {"ws-after"}
        assert node.stats()["a"]["received"] == 5


@pytest.mark.parametrize("path", ["/multipush", "/events"])
async def test_huge_numbers_over_multipush(tmp_path: Path, path: str) -> None:
    """MP batches: 202 with the huge ones in setErrs, the valid ones acked and stored."""
    async with running_node(tmp_path) as (node, client):
        attacker = Attacker(node.url, client.a, client.b)
        sets, good, bad = frame(attacker, "mp")
        response = await client.post(path, {"sets": sets})
        assert response.status_code == 202, response.text
        check_answer(response.json(), good, bad)
        assert await received(node, 2) == good


@pytest.mark.parametrize("claim", CLAIMS)
async def test_huge_number_over_rfc8935_push(tmp_path: Path, claim: str) -> None:
    """RFC 8935 push of one SET: 400 invalid_request, then a valid SET still 202."""
    async with running_node(tmp_path) as (node, client):
        attacker = Attacker(node.url, client.a, client.b)
        content_type = "application/secevent+jwt"
        bad = await client.post(
            "/events", huge_set(attacker, "bad", claim), content_type=content_type
        )
        assert bad.status_code == 400, bad.text
        assert bad.json()["err"] == "invalid_request"
        ok = await client.post("/events", attacker.set_token("ok"), content_type=content_type)
        assert ok.status_code == 202, ok.text
        assert await received(node, 1) == {"ok"}
