"""SSF 1.0 transmitter role on the wire: a partner with ``ssf = "receiver"`` manages
its stream with a real node on 127.0.0.1 through plain httpx requests.

Discovery (SSF-20..24), every management exchange with its statuses (SSF 8, the
table of SSF-25..36), binding to the partner's own stream (SSF-25), verification
with the echoed state (SSF-35, SSF-36), push with the receiver's Authorization value
(SSF-19), pause / resume / disable, subject filtering (SSF-29), stream-updated on
our own changes (SSF-28), and a restart that keeps it all.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from peer import Peer, StreamDisabled
from peer.config import PeerConfig, load_config
from peer.protocol.ssf_streams import (
    MULTIPUSH_METHOD,
    POLL_METHOD,
    PUSH_METHOD,
    PUSHPULL_METHOD,
    STREAM_UPDATED_EVENT,
    VERIFICATION_EVENT,
)
from peer.tokens.schemas import EventSchemas
from tests.adapters.fake_partner import Answer, Call, FakePartner, fake_partner
from tests.peers import SESSION_REVOKED, NodeFiles
from tests.timing import MS, seconds

CREDENTIAL_CHANGE = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
UNKNOWN_EVENT = "https://example.com/event-type/none"
SUPPORTED = sorted(
    EventSchemas.default().known_event_types() - {VERIFICATION_EVENT, STREAM_UPDATED_EVENT}
)


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class Setup:
    """Node ``a`` and its partners: ``b`` and ``c`` are SSF receivers, ``d`` is not."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.a = NodeFiles("a", folder)
        self.a.make_keys()
        self.tokens = {name: secrets.token_urlsafe(24) for name in "bcd"}
        for name in "bcd":
            NodeFiles(name, folder).make_keys()

    def config(self) -> PeerConfig:
        ssf = {"b": '"receiver"', "c": '"receiver"', "d": "true"}
        partners = "".join(
            f"""
[[partners]]
name = "{name}"
issuer = "https://{name}.test.example"
audience = "https://{name}.test.example"
jwks = "{name}.public.json"
ssf = {ssf[name]}
[partners.limits]
retry_initial = 0.05
retry_max = 0.2
[partners.inbound]
bearer_sha256 = "{hashlib.sha256(self.tokens[name].encode()).hexdigest()}"
"""
            for name in "bcd"
        )
        text = f"""
[peer]
issuer = "{self.a.issuer}"
listen = "127.0.0.1:0"
store = "sqlite:///a.db"
signing_keys = "a.jwks.json"
allow_insecure_loopback = true
{partners}"""
        path = self.folder / "a.toml"
        path.write_text(text)
        return load_config(path)

    def client(self, node: Peer, name: str = "b") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=node.url,
            headers={"authorization": f"Bearer {self.tokens[name]}"},
            timeout=seconds(10),
        )


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    return Setup(tmp_path)


@pytest.fixture
async def node(setup: Setup) -> AsyncIterator[Peer]:
    async with Peer(setup.config()) as peer:
        yield peer


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    with anyio.fail_after(seconds(timeout)):
        while not check():  # noqa: ASYNC110 - the fake partner records calls in a list
            await anyio.sleep(5 * MS)


def accept_all(call: Call) -> Answer:
    return Answer(202)


def pushed(fake: FakePartner) -> list[dict[str, Any]]:
    return [claims_of(call.body.decode()) for call in fake.paths("/events")]


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/ssf/stream", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


# -- discovery -------------------------------------------------------------------------


async def test_discovery_document(node: Peer, setup: Setup) -> None:
    """SSF-20, SSF-23, SSF-24: 200 JSON at the well-known location, no credentials
    needed; issuer is ours, endpoints absolute, schemes from the inbound auth."""
    async with httpx.AsyncClient(base_url=node.url) as client:
        response = await client.get("/.well-known/ssf-configuration")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    doc = response.json()
    assert doc["issuer"] == setup.a.issuer and doc["spec_version"] == "1_0"
    assert doc["jwks_uri"] == node.url + "/.well-known/jwks.json"
    assert doc["delivery_methods_supported"] == [
        PUSH_METHOD,
        POLL_METHOD,
        PUSHPULL_METHOD,
        MULTIPUSH_METHOD,
    ]
    for key, path in [
        ("configuration_endpoint", "/ssf/stream"),
        ("status_endpoint", "/ssf/status"),
        ("add_subject_endpoint", "/ssf/subjects/add"),
        ("remove_subject_endpoint", "/ssf/subjects/remove"),
        ("verification_endpoint", "/ssf/verify"),
    ]:
        assert doc[key] == node.url + path
    assert doc["authorization_schemes"] == [{"spec_urn": "urn:ietf:rfc:6750"}]
    assert doc["default_subjects"] == "ALL"


# -- management exchanges ----------------------------------------------------------------


async def test_every_exchange_and_status(node: Peer, setup: Setup) -> None:
    """SSF 8.1.1-8.1.4: create 201 (poll by default) / 409, read 200 (array without
    stream_id) / 404, update 200, replace 200 / 400, status 200 / 400, subjects 200 /
    204, verify 204 / 429, delete 204 / 404."""
    async with setup.client(node) as b:
        assert (await b.get("/ssf/stream")).json() == []
        config = await create(
            b, events_requested=[SESSION_REVOKED, UNKNOWN_EVENT], description="mine", extra=1
        )
        sid = config["stream_id"]
        assert config["iss"] == setup.a.issuer and config["aud"] == "https://b.test.example"
        assert config["delivery"] == {"method": POLL_METHOD, "endpoint_url": node.url + "/poll"}
        assert config["events_supported"] == SUPPORTED
        assert config["events_delivered"] == [SESSION_REVOKED]  # supported and requested
        assert config["description"] == "mine" and "extra" not in config
        second = await b.post("/ssf/stream", json={})
        assert second.status_code == 409 and second.json()["err"] == "conflict"

        assert (await b.get("/ssf/stream")).json() == [config]
        assert (await b.get("/ssf/stream", params={"stream_id": sid})).json() == config
        assert (await b.get("/ssf/stream", params={"stream_id": "other"})).status_code == 404

        patched = await b.patch("/ssf/stream", json={"stream_id": sid, "description": "new"})
        assert patched.status_code == 200
        assert patched.json() == {**config, "description": "new"}
        missing = await b.put("/ssf/stream", json={"stream_id": sid})
        assert missing.status_code == 400  # delivery is REQUIRED in a replace
        replaced = await b.put(
            "/ssf/stream", json={"stream_id": sid, "delivery": {"method": POLL_METHOD}}
        )
        assert replaced.status_code == 200
        assert "description" not in replaced.json() and "events_requested" not in replaced.json()
        assert replaced.json()["events_delivered"] == SUPPORTED
        assert (await b.patch("/ssf/stream", json={"stream_id": "x"})).status_code == 404

        status = await b.get("/ssf/status", params={"stream_id": sid})
        assert status.json() == {"stream_id": sid, "status": "enabled"}
        assert (await b.get("/ssf/status", params={"stream_id": "x"})).status_code == 404
        assert (await b.get("/ssf/status")).status_code == 404
        paused = await b.post(
            "/ssf/status", json={"stream_id": sid, "status": "paused", "reason": "maintenance"}
        )
        assert paused.status_code == 200
        assert paused.json() == {"stream_id": sid, "status": "paused", "reason": "maintenance"}
        for bad in ("on", None, 1):
            refused = await b.post("/ssf/status", json={"stream_id": sid, "status": bad})
            assert refused.status_code == 400 and refused.json()["err"] == "invalid_request"

        subject = {"format": "email", "email": "u@example.com"}
        added = await b.post("/ssf/subjects/add", json={"stream_id": sid, "subject": subject})
        assert added.status_code == 200 and added.content == b""
        for body in ({"stream_id": sid}, {"stream_id": sid, "subject": {"email": "x"}}):
            assert (await b.post("/ssf/subjects/add", json=body)).status_code == 400
        body = {"stream_id": "x", "subject": subject}
        assert (await b.post("/ssf/subjects/add", json=body)).status_code == 404
        removed = await b.post("/ssf/subjects/remove", json={"stream_id": sid, "subject": subject})
        assert removed.status_code == 204
        assert (await b.post("/ssf/subjects/remove", json=body)).status_code == 404

        assert (await b.post("/ssf/verify", json={"stream_id": sid})).status_code == 204
        again = await b.post("/ssf/verify", json={"stream_id": sid, "state": "s"})
        assert again.status_code == 429 and int(again.headers["retry-after"]) >= 1  # SSF-36
        assert (await b.post("/ssf/verify", json={"stream_id": "x"})).status_code == 404
        assert (await b.post("/ssf/verify", json={"stream_id": sid, "state": 5})).status_code == 400

        assert (await b.delete("/ssf/stream", params={"stream_id": "x"})).status_code == 404
        assert (await b.delete("/ssf/stream", params={"stream_id": sid})).status_code == 204
        assert (await b.delete("/ssf/stream", params={"stream_id": sid})).status_code == 404
        assert (await b.get("/ssf/stream")).json() == []
        assert (await b.get("/ssf/status", params={"stream_id": sid})).status_code == 404


async def test_bound_to_the_partners_own_stream(node: Peer, setup: Setup) -> None:
    """SSF-25: no credentials 401 with a challenge; a partner that is no receiver 403;
    another receiver's stream_id is not found (404), never touched."""
    async with setup.client(node, "b") as b, setup.client(node, "c") as c:
        sid = (await create(b))["stream_id"]
        async with httpx.AsyncClient(base_url=node.url) as anonymous:
            refused = await anonymous.get("/ssf/stream")
            assert refused.status_code == 401 and "www-authenticate" in refused.headers
            wrong = await anonymous.get("/ssf/stream", headers={"authorization": "Bearer no"})
            assert wrong.status_code == 401
        async with setup.client(node, "d") as d:
            refused = await d.get("/ssf/stream")
            assert refused.status_code == 403 and refused.json()["err"] == "access_denied"
        assert (await c.get("/ssf/stream")).json() == []
        assert (await c.get("/ssf/stream", params={"stream_id": sid})).status_code == 404
        assert (await c.delete("/ssf/stream", params={"stream_id": sid})).status_code == 404
        body = {"stream_id": sid, "status": "disabled"}
        assert (await c.post("/ssf/status", json=body)).status_code == 404
        assert (await c.post("/ssf/verify", json={"stream_id": sid})).status_code == 404
        assert (await create(c))["stream_id"] != sid  # one stream per receiver, each its own
        status = await b.get("/ssf/status", params={"stream_id": sid})
        assert status.json()["status"] == "enabled"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"delivery": {"method": "urn:example:carrier-pigeon"}}, "delivery.method"),
        ({"delivery": "push"}, "delivery must be an object"),
        ({"delivery": {"method": PUSH_METHOD}}, "endpoint_url"),
        ({"delivery": {"method": PUSH_METHOD, "endpoint_url": "http://rx.example/e"}}, "https"),
        ({"delivery": {"method": PUSH_METHOD, "endpoint_url": "https://x/#f"}}, "fragment"),
        (
            {
                "delivery": {
                    "method": PUSH_METHOD,
                    "endpoint_url": "https://rx.example/e",
                    "authorization_header": "Bearer x\r\nX-Evil: 1",
                }
            },
            "line break",
        ),
        ({"events_requested": SESSION_REVOKED}, "events_requested"),
        ({"events_requested": [1]}, "events_requested"),
        ({"events_requested": ["u"] * 257}, "events_requested"),
        ({"description": "d" * 5000}, "description"),
    ],
)
async def test_malformed_configuration_refused(
    node: Peer, setup: Setup, body: dict[str, Any], fragment: str
) -> None:
    """Every malformed receiver member is a 400 naming it; nothing is created."""
    async with setup.client(node) as b:
        refused = await b.post("/ssf/stream", json=body)
        assert refused.status_code == 400, refused.text
        assert refused.json()["err"] == "invalid_request"
        assert fragment in refused.json()["description"]
        assert (await b.get("/ssf/stream")).json() == []


async def test_hostile_bodies_refused(node: Peer, setup: Setup) -> None:
    """Not JSON, not an object, duplicate members, too deep, wrong media type, oversized:
    400 / 415 / 413 before anything changes."""
    async with setup.client(node) as b:
        json_type = {"content-type": "application/json"}
        for raw in (b"{", b"[]", b'"x"', b'{"a":1,"a":2}', b"[" * 100 + b"]" * 100, b"\xff"):
            answer = await b.post("/ssf/stream", content=raw, headers=json_type)
            assert answer.status_code == 400, raw
        plain = await b.post("/ssf/stream", content=b"{}", headers={"content-type": "text/plain"})
        assert plain.status_code == 415
        huge = b'{"description": "' + b"x" * 70_000 + b'"}'
        assert (await b.post("/ssf/stream", content=huge, headers=json_type)).status_code == 413
        assert (await b.get("/ssf/stream")).json() == []


# -- delivery --------------------------------------------------------------------------


async def test_push_verification_hold_filter_and_restart(setup: Setup) -> None:
    """Push to the receiver's endpoint with its Authorization value (SSF-19); the
    verification SET echoes the state (SSF-35); paused holds SETs, then they go out in
    order; disabled refuses publish; subjects filter (SSF-29); our own pause sends a
    stream-updated first (SSF-28); a restart keeps stream, subjects, status, delivery."""
    async with fake_partner(accept_all) as fake:
        delivery = {
            "method": PUSH_METHOD,
            "endpoint_url": fake.url + "/events",
            "authorization_header": "Bearer rx-secret",
        }
        async with Peer(setup.config()) as node, setup.client(node) as b:
            config = await create(b, delivery=delivery)
            sid = config["stream_id"]
            assert "authorization_header" not in config["delivery"]  # never echoed
            assert (
                await b.post("/ssf/verify", json={"stream_id": sid, "state": "st-1"})
            ).status_code == 204
            await until(lambda: len(pushed(fake)) == 1)
            (verification,) = pushed(fake)
            assert verification["events"] == {VERIFICATION_EVENT: {"state": "st-1"}}
            assert verification["sub_id"] == {"format": "opaque", "id": sid}
            assert verification["aud"] == "https://b.test.example"
            assert fake.paths("/events")[0].headers["authorization"] == "Bearer rx-secret"

            await b.post("/ssf/status", json={"stream_id": sid, "status": "paused"})
            held = [
                await node.publish(
                    "b", {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": str(i)}
                )
                for i in range(3)
            ]
            await anyio.sleep(seconds(0.3))
            assert len(pushed(fake)) == 1 and node.stats()["b"]["pending"] == 3
            await b.post("/ssf/status", json={"stream_id": sid, "status": "enabled"})
            await until(lambda: len(pushed(fake)) == 4)
            assert [c["jti"] for c in pushed(fake)[1:]] == held  # in order

            # Disabled holds nothing: SETs queued while paused fail, new ones are refused,
            # and enabling again sends none of them.
            await b.post("/ssf/status", json={"stream_id": sid, "status": "paused"})
            dropped = [
                await node.publish(
                    "b", {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": f"d{i}"}
                )
                for i in range(3)
            ]
            await b.post("/ssf/status", json={"stream_id": sid, "status": "disabled"})
            failed = {f.jti: f.err for f in node.failures() if f.direction == "outbound"}
            assert all(failed.get(jti) == "stream_disabled" for jti in dropped), failed
            assert node.stats()["b"]["pending"] == 0
            with pytest.raises(StreamDisabled):
                await node.publish(
                    "b", {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": "x"}
                )
            await b.post("/ssf/status", json={"stream_id": sid, "status": "enabled"})
            await anyio.sleep(seconds(0.2))
            assert len(pushed(fake)) == 4  # none of the dropped ones

            mine = {"format": "email", "email": "me@example.com"}
            await b.post("/ssf/subjects/add", json={"stream_id": sid, "subject": mine})
            other = {"format": "email", "email": "other@example.com"}
            await node.publish("b", {SESSION_REVOKED: {}}, sub_id=other)
            wanted = await node.publish("b", {SESSION_REVOKED: {}}, sub_id=mine)
            await until(lambda: len(pushed(fake)) == 5)
            assert pushed(fake)[-1]["jti"] == wanted

            await node.set_stream_status("b", "paused", "operator")
            updated = pushed(fake)[-1]
            assert updated["events"] == {
                STREAM_UPDATED_EVENT: {"status": "paused", "reason": "operator"}
            }
            assert updated["sub_id"] == {"format": "opaque", "id": sid}

        async with Peer(setup.config()) as node, setup.client(node) as b:
            status = await b.get("/ssf/status", params={"stream_id": sid})
            assert status.json() == {"stream_id": sid, "status": "paused", "reason": "operator"}
            await node.publish("b", {SESSION_REVOKED: {}}, sub_id=other)  # filtered still
            kept = await node.publish("b", {SESSION_REVOKED: {}}, sub_id=mine)
            await anyio.sleep(seconds(0.2))
            assert len(pushed(fake)) == 6  # paused still
            await b.post("/ssf/status", json={"stream_id": sid, "status": "enabled"})
            await until(lambda: len(pushed(fake)) == 7)
            assert pushed(fake)[-1]["jti"] == kept
            assert fake.paths("/events")[-1].headers["authorization"] == "Bearer rx-secret"


async def test_poll_delivery_serves_the_stream(node: Peer, setup: Setup) -> None:
    """A poll stream (the default): the receiver polls the endpoint_url we named."""
    async with setup.client(node) as b:
        config = await create(b)
        jti = await node.publish("b", {SESSION_REVOKED: {}}, sub_id={"format": "opaque", "id": "1"})
        answer = await b.post(config["delivery"]["endpoint_url"], json={"maxEvents": 10})
        assert answer.status_code == 200 and list(answer.json()["sets"]) == [jti]
