"""``POST /multipush`` (and ``/events`` with ``application/json``) as a multi-push
recipient (multi-set-push -02, MP-n), seen by a plain HTTP client.

A batch in, 202 ``{"ack": [...], "setErrs": {...}}`` out, every jti accounted for;
request-level problems are a 400 / 401 / 413 / 415 that neither acks nor refuses any
SET (decision 13: both routes behave the same).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .wire import REGISTERED_CODES, SESSION_REVOKED, assert_error, running_node

ROUTES = ["/multipush", "/events"]


@pytest.mark.parametrize("path", ROUTES)
async def test_batch_is_acked_per_set_with_errors_in_set_errs(tmp_path: Path, path: str) -> None:
    """MP-2, MP-6, MP-7, MP-13..16, MP-19, decision 10: 202 JSON; every jti is in
    ``ack`` or ``setErrs`` (registered code, description, Content-Language); only
    the valid SETs are stored."""
    async with running_node(tmp_path) as (node, client):
        sets = {
            "ok-1": client.token("ok-1"),
            "ok-2": client.token("ok-2"),
            "wrong-iss": client.token("wrong-iss", iss="https://evil.example"),
            "wrong-aud": client.token("wrong-aud", aud="https://c.example"),
            "foreign": client.foreign_token("foreign"),
            "future": client.token("future", iat=2**40),
            "mismatch": client.token("not-the-key"),
            "number": 5,
            "not-jws": "abc",
            "too-big": client.token("too-big", pad="x" * 70_000),
        }
        expected = {
            "wrong-iss": "invalid_issuer",
            "wrong-aud": "invalid_audience",
            "foreign": "invalid_key",
            "future": "invalid_request",
            "mismatch": "invalid_request",
            "number": "invalid_request",
            "not-jws": "invalid_request",
            "too-big": "invalid_request",
        }
        response = await client.post(path, {"sets": sets})
        assert response.status_code == 202, response.text
        assert response.headers["content-type"].split(";")[0] == "application/json"
        assert response.headers["content-language"] == "en"  # MP-15: descriptions present
        body = response.json()
        assert sorted(body["ack"]) == ["ok-1", "ok-2"]
        assert {jti: e["err"] for jti, e in body["setErrs"].items()} == expected
        assert all(e["err"] in REGISTERED_CODES for e in body["setErrs"].values())
        assert all(isinstance(e["description"], str) for e in body["setErrs"].values())
        # MP-24: descriptions do not echo the SET (nothing of the token leaks back).
        assert str(sets["future"]).split(".")[1] not in response.text
        assert node.stats()["a"]["received"] == 2


@pytest.mark.parametrize("path", ROUTES)
async def test_empty_batch_and_duplicates(tmp_path: Path, path: str) -> None:
    """MP-3, MP-11, MP-14, PUSH-9, decision 15: ``{"sets": {}}`` is 202 with ``ack: []``;
    a SET sent again (alone or among new ones) is acked again and stored once."""
    async with running_node(tmp_path) as (node, client):
        response = await client.post(path, {"sets": {}})
        assert response.status_code == 202
        assert response.json() == {"ack": []}
        first = {"d-1": client.token("d-1")}
        assert (await client.post(path, {"sets": first})).json() == {"ack": ["d-1"]}
        again = {**first, "d-2": client.token("d-2")}
        response = await client.post(path, {"sets": again})
        assert response.status_code == 202
        assert sorted(response.json()["ack"]) == ["d-1", "d-2"]
        assert "setErrs" not in response.json()
        assert node.stats()["a"]["received"] == 2


@pytest.mark.parametrize("path", ROUTES)
async def test_request_level_errors(tmp_path: Path, path: str) -> None:
    """MP-17, MP-19, MP-22, MP pitfalls: unparsable requests are 400 ``invalid_request``
    about the request; an over-limit batch or body is 413 (with a registered code,
    not ``too_many_sets``); a wrong media type 415; nothing of it is stored."""
    limits = {"max_sets_per_frame": 5, "max_frame_bytes": 300_000}
    async with running_node(tmp_path, limits=limits) as (node, client):
        bad_bodies = [
            b"{not json",
            b"[]",
            b'{"sets": {},}',  # Figure 2 as printed: a trailing comma is not JSON
            b"{}",  # sets is REQUIRED (MP-11)
            b'{"sets": []}',
            b'{"sets": "x"}',
            b'{"sets": {"a": "x.y.z", "a": "x.y.z"}}',  # duplicate member names
            b'{"sets": {"": "x.y.z"}}',  # a jti must be non-empty
            b"\xff\xfe",
        ]
        for body in bad_bodies:
            assert_error(await client.post(path, body), 400, "invalid_request")
        six = {f"s-{i}": client.token(f"s-{i}") for i in range(6)}
        assert_error(await client.post(path, {"sets": six}), 413, "invalid_request")
        huge = {"sets": {"h": "x" * 400_000}}
        assert_error(await client.post(path, huge), 413, "invalid_request")
        five = dict(list(six.items())[:5])
        assert_error(
            await client.post(path, {"sets": five}, content_type="text/plain"),
            415,
            "invalid_request",
        )
        assert node.stats()["a"]["received"] == 0
        # The batch limit is per request: five SETs are fine.
        response = await client.post(path, {"sets": five})
        assert response.status_code == 202 and len(response.json()["ack"]) == 5


async def test_secevents_json_media_type_and_auth_and_methods(tmp_path: Path) -> None:
    """Decision 5 (editor's copy ``application/secevents+json`` accepted), decision 7
    (401 with WWW-Authenticate), MP-1 (POST only: 405 with Allow)."""
    async with running_node(tmp_path) as (node, client):
        body = {"sets": {"sj": client.token("sj")}}
        response = await client.post(
            "/multipush", body, content_type="application/secevents+json; charset=utf-8"
        )
        assert (response.status_code, response.json()) == (202, {"ack": ["sj"]})
        for path in ROUTES:
            response = await client.post(path, body, auth=False)
            assert_error(response, 401, "authentication_failed")
            assert response.headers["www-authenticate"].startswith("Bearer")
            response = await client.post(
                path, body, auth=False, headers={"authorization": "Bearer nope"}
            )
            assert_error(response, 401, "authentication_failed")
        for method in ("GET", "PUT", "DELETE"):
            response = await client.http.request(method, client.url("/multipush"))
            assert (response.status_code, response.headers["allow"]) == (405, "POST")
        assert node.stats()["a"]["received"] == 1


async def test_many_sets_in_one_batch_verified_off_the_loop(tmp_path: Path) -> None:
    """MP-2, MP-25: a batch of 200 independent SETs (verified in a worker thread) is
    answered as a whole; order inside the batch means nothing."""
    async with running_node(tmp_path) as (node, client):
        sets = {f"m-{i}": client.token(f"m-{i}") for i in range(200)}
        sets["m-bad"] = client.token("m-bad", events={SESSION_REVOKED: "x"})
        shuffled = dict(reversed(list(sets.items())))
        response = await client.post("/multipush", json.dumps({"sets": shuffled}))
        assert response.status_code == 202
        body = response.json()
        assert sorted(body["ack"]) == sorted(j for j in sets if j != "m-bad")
        assert body["setErrs"]["m-bad"]["err"] == "invalid_request"
        assert node.stats()["a"]["received"] == 200
