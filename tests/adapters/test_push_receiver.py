"""``POST /events`` as an RFC 8935 recipient, seen by a plain HTTP client (PUSH-n).

The client plays partner ``a`` pushing to node ``b``: one SET per POST, 202 with an
empty body, 400 ``{err, description}`` with Content-Language for a SET refused, the
applicable HTTP status (401, 405, 413, 415) for everything else.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import anyio

from .wire import MS, SECEVENT_JWT, SESSION_REVOKED, assert_error, running_node


async def test_valid_set_is_202_empty_and_stored_before_the_answer(tmp_path: Path) -> None:
    """PUSH-2, PUSH-4, PUSH-8, PUSH-12: 202 Accepted, empty body; the SET is stored
    (and counted) by the time the answer arrives and reaches the application."""
    async with running_node(tmp_path) as (node, client):
        token = client.token("push-ok")
        response = await client.post("/events", token, content_type=SECEVENT_JWT)
        assert response.status_code == 202
        assert response.content == b""
        # Persisted before the 202 (PUSH-8): no wait needed to see it counted.
        assert node.stats()["a"]["received"] == 1
        with anyio.fail_after(5_000 * MS):
            async for rx in node.receive():
                assert (rx.partner, rx.jti, rx.token) == ("a", "push-ok", token)
                assert SESSION_REVOKED in rx.claims["events"]
                await rx.done()
                break


async def test_duplicate_is_acknowledged_again_and_stored_once(tmp_path: Path) -> None:
    """PUSH-9, decision 15: a resent SET gets exactly the first answer (202), and the
    application sees it once; a resent invalid SET fails again the same way."""
    async with running_node(tmp_path) as (node, client):
        token = client.token("dup-1")
        bad = client.token("dup-bad", iss="https://evil.example")
        for _ in range(3):
            response = await client.post("/events", token, content_type=SECEVENT_JWT)
            assert (response.status_code, response.content) == (202, b"")
            assert_error(
                await client.post("/events", bad, content_type=SECEVENT_JWT),
                400,
                "invalid_issuer",
            )
        assert node.stats()["a"]["received"] == 1


async def test_each_set_error_code_is_a_400_with_its_code(tmp_path: Path) -> None:
    """PUSH-6, PUSH-14..18: every check the recipient makes has its registered code in
    a 400 JSON body with Content-Language; nothing refused is stored."""
    async with running_node(tmp_path) as (node, client):
        good = client.token("tampered")
        head, payload, signature = good.split(".")
        flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
        none_header = base64.urlsafe_b64encode(
            json.dumps({"alg": "none", "typ": "secevent+jwt"}).encode()
        ).rstrip(b"=")
        cases: list[tuple[str, bytes | str, str]] = [
            # invalid_request: not a parsable SET, or its payload is not valid (2.4).
            ("not a JWS", b"not-a-jws", "invalid_request"),
            ("two segments", b"abc.def", "invalid_request"),
            ("not ASCII", "\u00e9.\u00e9.\u00e9".encode(), "invalid_request"),
            ("payload not JSON", b"eyJhbGciOiJFUzI1NiJ9.bm9wZQ.c2ln", "invalid_request"),
            (
                "jti not a string",
                client.signer.sign({**client.claims("j"), "jti": 5}),
                "invalid_request",
            ),
            ("iat in the future", client.token("future", iat=2**40), "invalid_request"),
            (
                "event payload not an object",
                client.token("payload", events={SESSION_REVOKED: 5}),
                "invalid_request",
            ),
            ("leading space", b" " + good.encode(), "invalid_request"),
            # invalid_key: unknown key, signature that does not verify, alg none.
            ("unknown key", client.foreign_token("foreign"), "invalid_key"),
            ("bad signature", f"{head}.{payload}.{flipped}", "invalid_key"),
            ("alg none", none_header.decode() + "." + payload + ".", "invalid_key"),
            # invalid_issuer (Figure 5's body) and invalid_audience.
            ("other issuer", client.token("iss", iss="https://evil.example"), "invalid_issuer"),
            ("other audience", client.token("aud", aud="https://c.example"), "invalid_audience"),
            ("no audience", client.token("noaud", aud=None), "invalid_audience"),
        ]
        for name, body, err in cases:
            response = await client.post("/events", body, content_type=SECEVENT_JWT)
            assert response.status_code == 400, (name, response.text)
            assert_error(response, 400, err)
        assert node.stats()["a"]["received"] == 0


async def test_authentication_failures_are_401_with_a_challenge(tmp_path: Path) -> None:
    """PUSH-13, PUSH-20, decision 7: missing or wrong credentials get 401 with
    WWW-Authenticate and the ``authentication_failed`` body; the SET is not stored."""
    async with running_node(tmp_path) as (node, client):
        token = client.token("auth")
        for headers, auth in (
            ({}, False),
            ({"authorization": "Bearer not-the-token"}, False),
            ({"authorization": "Basic YTpi"}, False),
            ({"authorization": "Bearer"}, False),
        ):
            response = await client.post(
                "/events", token, content_type=SECEVENT_JWT, headers=headers, auth=auth
            )
            assert_error(response, 401, "authentication_failed")
            assert response.headers["www-authenticate"].startswith("Bearer")
        assert node.stats()["a"]["received"] == 0


async def test_http_level_problems_get_their_status(tmp_path: Path) -> None:
    """PUSH-2, PUSH-13: non-POST 405 with Allow; wrong media type 415; a SET over
    ``max_set_bytes`` 413 before any parsing."""
    async with running_node(tmp_path, limits={"max_set_bytes": 4096}) as (node, client):
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            response = await client.http.request(method, client.url("/events"))
            assert response.status_code == 405, method
            assert response.headers["allow"] == "POST"
        token = client.token("media")
        for content_type in ("text/plain", "application/jwt", None):
            response = await client.post("/events", token, content_type=content_type)
            assert_error(response, 415, "invalid_request")
        # A signed, otherwise valid SET over the limit (PUSH pitfall: enforce a size).
        big = client.token("big", pad="x" * 5000)
        assert_error(
            await client.post("/events", big, content_type=SECEVENT_JWT), 413, "invalid_request"
        )

        # Refused on the announced length, before the body is read.
        junk = b"x" * 200_000
        assert_error(
            await client.post("/events", junk, content_type=SECEVENT_JWT), 413, "invalid_request"
        )
        assert node.stats()["a"]["received"] == 0


async def test_media_type_parameters_case_and_trailing_newline(tmp_path: Path) -> None:
    """PUSH-2 pitfalls, decision: the media type is compared case-insensitively with
    parameters ignored; a trailing CRLF after the token is tolerated."""
    async with running_node(tmp_path) as (node, client):
        variants = [
            ("Application/SecEvent+JWT", client.token("case")),
            ("application/secevent+jwt; charset=utf-8", client.token("param")),
            (SECEVENT_JWT, client.token("crlf") + "\r\n"),
        ]
        for content_type, body in variants:
            response = await client.post("/events", body, content_type=content_type)
            assert (response.status_code, response.content) == (202, b""), content_type
        assert node.stats()["a"]["received"] == 3


async def test_error_descriptions_are_english_whatever_accept_language(tmp_path: Path) -> None:
    """PUSH-5, PUSH-17: Accept-Language asking for German gets English (the fallback
    PUSH-17 allows when no other language is available), declared in Content-Language."""
    async with running_node(tmp_path) as (_, client):
        bad = client.token("lang", aud="https://c.example")
        response = await client.post(
            "/events",
            bad,
            content_type=SECEVENT_JWT,
            headers={"accept-language": "de-DE, de;q=0.9"},
        )
        assert_error(response, 400, "invalid_audience")
        assert response.headers["content-language"] == "en"
