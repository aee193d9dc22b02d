"""RFC 8935 push wire shapes, both roles (spec/push.md, codec items)."""

from __future__ import annotations

import json

import pytest

from peer.errors import FrameTooLarge, MalformedFrame, UnsupportedMediaType
from peer.protocol import FrameLimits, SetErr
from peer.protocol.codes import ERROR_CODES, is_error_code, is_registered
from peer.protocol.push import (
    ERROR_HEADERS,
    Accepted,
    Rejected,
    Retry,
    classify_push_response,
    error_response_body,
    parse_push_request,
    parse_retry_after,
)
from tests.protocol import examples

LIMITS = FrameLimits()
TOKEN = examples.SET_A


class TestRecipient:
    def test_push2_media_type_required(self) -> None:
        """PUSH-2: Content-Type application/secevent+jwt; else 415."""
        assert parse_push_request(TOKEN.encode(), "application/secevent+jwt", limits=LIMITS)
        for bad in (None, "", "application/json", "text/plain", "application/jwt"):
            with pytest.raises(UnsupportedMediaType) as info:
                parse_push_request(TOKEN.encode(), bad, limits=LIMITS)
            assert info.value.http_status == 415

    def test_push2_media_type_case_and_parameters(self) -> None:
        """PUSH-2: media types compare case-insensitively; parameters are ignored."""
        ct = "Application/SecEvent+JWT; charset=utf-8"
        assert parse_push_request(TOKEN.encode(), ct, limits=LIMITS) == TOKEN

    def test_push4_body_is_exactly_one_set(self) -> None:
        """PUSH-4: the body is one compact JWS; a trailing CRLF is tolerated (decision)."""
        assert (
            parse_push_request(TOKEN.encode() + b"\r\n", "application/secevent+jwt", limits=LIMITS)
            == TOKEN
        )
        for bad in (
            b"",
            b"a.b",
            TOKEN.encode() + b" x",
            b"{" + TOKEN.encode() + b"}",
            b" " + TOKEN.encode(),
            TOKEN.encode() + b"." + b"x",
            "é.a.b".encode(),
        ):
            with pytest.raises(MalformedFrame) as info:
                parse_push_request(bad, "application/secevent+jwt", limits=LIMITS)
            assert info.value.err == "invalid_request"
            assert info.value.http_status == 400

    def test_push4_oversized_body_is_413(self) -> None:
        """Size limit before parsing (push.md pitfall: no limit in the spec)."""
        with pytest.raises(FrameTooLarge):
            parse_push_request(
                b"a" * 100,
                "application/secevent+jwt",
                limits=FrameLimits(max_set_bytes=50, max_frame_bytes=60),
            )

    def test_push15_error_body(self) -> None:
        """PUSH-14, PUSH-15, PUSH-16: 400 body {err, description}, JSON, Content-Language."""
        body = json.loads(error_response_body(SetErr("invalid_issuer", "not ours")))
        assert body == {"err": "invalid_issuer", "description": "not ours"}
        assert ERROR_HEADERS["content-type"] == "application/json"
        assert ERROR_HEADERS["content-language"] == "en"

    def test_push18_registered_codes(self) -> None:
        """PUSH-18: the codes we emit are the registered ones (+ SSF invalid_state)."""
        assert set(ERROR_CODES) == {
            "invalid_request",
            "invalid_key",
            "invalid_issuer",
            "invalid_audience",
            "authentication_failed",
            "access_denied",
            "invalid_state",
        }
        assert not is_registered("too_many_sets")
        assert is_error_code("too_many_sets") and not is_error_code("invalid subject")


class TestTransmitter:
    def test_push12_202_and_200_mean_accepted(self) -> None:
        """PUSH-12: 202 with an empty body acknowledges; any 2xx is treated alike."""
        assert classify_push_response(202, {}, b"") == Accepted()
        assert classify_push_response(200, {}, b"") == Accepted()

    @pytest.mark.parametrize("code", sorted(ERROR_CODES))
    def test_push14_400_with_each_code_is_rejected(self, code: str) -> None:
        """PUSH-14, PUSH-21: a 400 with an error code fails the SET with that code."""
        body = json.dumps({"err": code, "description": "why"}).encode()
        outcome = classify_push_response(400, {}, body)
        if code == "authentication_failed":
            assert outcome == Retry("authentication_failed", None, reauthenticate=True)
        else:
            assert outcome == Rejected(code, "why")

    def test_push18_unknown_codes_are_kept(self) -> None:
        """PUSH-18: a transmitter copes with codes it does not know; kept verbatim."""
        body = b'{"err": "invalid subject", "description": "x"}'
        assert classify_push_response(400, {}, body) == Rejected("invalid subject", "x")

    def test_push_figure5_body(self) -> None:
        """RFC 8935 Figure 4/5 body shape parses."""
        assert classify_push_response(400, {}, examples.PUSH_ERROR_BODY) == Rejected(
            "invalid_key", "Key ID 12345 has been revoked."
        )

    def test_push21_recoverable_failures_retry(self) -> None:
        """PUSH-11, PUSH-21: 5xx, 429, 408 retry; 401 retries with fresh credentials."""
        assert classify_push_response(500, {}, b"") == Retry("HTTP 500", None)
        assert classify_push_response(503, {"retry-after": "7"}, b"") == Retry("HTTP 503", 7.0)
        assert classify_push_response(429, {"retry-after": "2"}, b"").after == 2.0
        assert classify_push_response(408, {}, b"") == Retry("HTTP 408", None)
        outcome = classify_push_response(401, {"www-authenticate": "Bearer"}, b"")
        assert isinstance(outcome, Retry) and outcome.reauthenticate

    def test_malformed_400_body_still_fails_the_set(self) -> None:
        """A 400 without a readable error body is a rejection (invalid_request)."""
        for body in (b"", b"<html>", b"[]", b'{"err": 5}', b'{"err": ""}'):
            outcome = classify_push_response(400, {}, body)
            assert outcome == Rejected("invalid_request", "400 without an RFC 8935 error body")

    def test_problem_json_error_body(self) -> None:
        """Decision 5: problem+json bodies with an err member are read too."""
        body = b'{"type": "about:blank", "detail": "bad key", "err": "invalid_key"}'
        assert classify_push_response(400, {}, body) == Rejected("invalid_key", "bad key")

    def test_retry_after_forms(self) -> None:
        """Retry-After as delta-seconds or IMF-fixdate (RFC 9110 §10.2.3)."""
        assert parse_retry_after("120") == 120.0
        assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
        assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=400.0) == 0.0
        assert parse_retry_after("99999999999") == 86_400.0
        for bad in (None, "", "soon", "-5", "1.5"):
            assert parse_retry_after(bad) is None
