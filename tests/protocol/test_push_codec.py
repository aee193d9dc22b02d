"""RFC 8935 push wire shapes, both roles (PUSH-n, codec-observable items)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from peer.errors import (
    AccessDenied,
    AuthenticationFailed,
    FrameTooLarge,
    MalformedFrame,
    UnsupportedMediaType,
    WireError,
)
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
from tests.protocol import spec_examples as ex

LIMITS = FrameLimits()
CT = "application/secevent+jwt"
TOKEN = ex.PUSH_SET


def push(body: bytes, content_type: str | None = CT, limits: FrameLimits = LIMITS) -> str:
    return parse_push_request(body, content_type, limits=limits)


class TestRecipient:
    def test_push2_media_type_required(self) -> None:
        """PUSH-2: Content-Type application/secevent+jwt; anything else is 415."""
        assert push(TOKEN.encode()) == TOKEN
        for bad in (None, "", "application/json", "text/plain", "application/jwt", "secevent+jwt"):
            with pytest.raises(UnsupportedMediaType) as info:
                push(TOKEN.encode(), bad)
            assert (info.value.http_status, info.value.err) == (415, "invalid_request")

    def test_push2_media_type_case_and_parameters(self) -> None:
        """PUSH-2: media types compare case-insensitively; parameters are ignored."""
        for ct in ("Application/SecEvent+JWT; charset=utf-8", " application/secevent+jwt ;x=y"):
            assert push(TOKEN.encode(), ct) == TOKEN

    def test_push4_published_set_parses(self) -> None:
        """PUSH-4: RFC 8935 Figure 1's SET (joined) is exactly one compact JWS."""
        assert push(ex.by_name("rfc8935-fig1-set").body) == ex.PUSH_SET
        assert ex.PUSH_SET.split(".")[0].endswith("Cg")  # header has a trailing newline

    def test_push4_figure1_as_printed_is_invalid_request(self) -> None:
        """PUSH-4, push.md pitfall: the folded body as printed is not a compact JWS."""
        with pytest.raises(MalformedFrame) as info:
            push(ex.PUSH_BODY_AS_PRINTED)
        assert (info.value.err, info.value.http_status) == ("invalid_request", 400)

    def test_push4_trailing_whitespace_only_is_tolerated(self) -> None:
        """PUSH-4 (decision): a trailing CRLF/LF/space/tab is stripped, nothing else."""
        for tail in (b"\r\n", b"\n", b" ", b"\t\r\n"):
            assert push(TOKEN.encode() + tail) == TOKEN

    @pytest.mark.parametrize(
        "body",
        [
            b"",
            b"a.b",
            b"a.b.c.d",
            b"a..c",
            b".b.c",
            b" a.b.c",
            b"a.b.c x",
            b"a.b\n.c",
            b'"a.b.c"',
            b'{"sets": {}}',
            "é.a.b".encode(),
            b"a.b.c\x00",
            b"a+b.c.d",
            b"a/b.c.d",
            b"a=.b.c",
        ],
    )
    def test_push4_push14_not_a_compact_jws_is_400(self, body: bytes) -> None:
        """PUSH-4, PUSH-14: anything but one compact JWS is 400 invalid_request."""
        with pytest.raises(MalformedFrame) as info:
            push(body)
        assert (info.value.err, info.value.http_status) == ("invalid_request", 400)

    def test_oversized_body_is_413_before_parsing(self) -> None:
        """push.md pitfall (no size limit in the spec): over max_set_bytes is 413."""
        limits = FrameLimits(max_set_bytes=50)
        assert push(b"a" * 24 + b"." + b"b" * 24 + b".", limits=limits)
        with pytest.raises(FrameTooLarge) as info:
            push(b"\xff" * 51, limits=limits)
        assert info.value.http_status == 413

    def test_push15_push16_error_body_and_headers(self) -> None:
        """PUSH-15, PUSH-16, PUSH-17: 400 body {err, description} as JSON, Content-Language en."""
        body = json.loads(error_response_body(SetErr("invalid_issuer", "not ours")))
        assert body == {"err": "invalid_issuer", "description": "not ours"}
        assert json.loads(error_response_body(SetErr("invalid_key"))) == {
            "err": "invalid_key",
            "description": "invalid_key",
        }
        assert ERROR_HEADERS == {"content-type": "application/json", "content-language": "en"}

    @pytest.mark.parametrize(
        ("error", "status"),
        [
            (MalformedFrame("bad"), 400),
            (FrameTooLarge("big"), 413),
            (UnsupportedMediaType("type"), 415),
            (AuthenticationFailed("who"), 401),
            (AccessDenied("no"), 403),
        ],
    )
    def test_push15_request_errors_have_an_rfc8935_body(
        self, error: WireError, status: int
    ) -> None:
        """PUSH-13, PUSH-15, PUSH-18: every request error has its status and a registered code."""
        body = json.loads(error_response_body(error))
        assert set(body) == {"err", "description"} and is_registered(body["err"])
        assert error.http_status == status

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
        assert not is_registered("too_many_sets") and not is_registered("invalid subject")
        assert is_error_code("too_many_sets") and not is_error_code("invalid subject")
        assert not is_error_code("") and not is_error_code("x" * 65)


class TestTransmitter:
    @pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
    def test_push12_any_2xx_is_accepted(self, status: int) -> None:
        """PUSH-12 (Figure 2: 202, empty body); decision 4: any 2xx counts, body ignored."""
        assert classify_push_response(status, {}, b"") == Accepted()
        assert classify_push_response(status, {}, b"<html>ignored</html>") == Accepted()

    def test_push12_figure2(self) -> None:
        """PUSH-12: RFC 8935 Figure 2."""
        fig = ex.by_name("rfc8935-fig2-accepted")
        assert fig.status is not None
        assert classify_push_response(fig.status, {}, fig.body) == Accepted()

    @pytest.mark.parametrize("code", sorted(set(ERROR_CODES) - {"authentication_failed"}))
    def test_push14_400_with_each_code_is_rejected_with_it(self, code: str) -> None:
        """PUSH-14, PUSH-21: a 400 with an error code fails the SET with that code."""
        body = json.dumps({"err": code, "description": "why"}).encode()
        assert classify_push_response(400, {}, body) == Rejected(code, "why")

    def test_push21_400_authentication_failed_retries_with_reauth(self) -> None:
        """PUSH-21 / decision 7: 400 authentication_failed (Figure 4) refreshes and retries."""
        fig = ex.by_name("rfc8935-fig4-authentication-failed")
        outcome = classify_push_response(400, {"retry-after": "3"}, fig.body)
        assert outcome == Retry("authentication_failed", 3.0, reauthenticate=True)

    def test_push21_401_retries_with_reauth(self) -> None:
        """PUSH-21 / decision 7: 401 means fresh credentials, then retry."""
        for body in (b"", b'{"err": "authentication_failed", "description": "x"}', b"junk"):
            outcome = classify_push_response(401, {"www-authenticate": "Bearer"}, body)
            assert isinstance(outcome, Retry) and outcome.reauthenticate
        assert classify_push_response(401, {"retry-after": "9"}, b"") == Retry(
            "401 authentication failed", 9.0, reauthenticate=True
        )

    def test_push21_403_access_denied_is_surfaced(self) -> None:
        """PUSH-21: access_denied helps only after reconfiguration: Rejected, not retried."""
        body = b'{"err": "access_denied", "description": "no"}'
        assert classify_push_response(403, {}, body) == Rejected("access_denied", "no")
        assert classify_push_response(403, {}, b"") == Retry("HTTP 403", None)

    @pytest.mark.parametrize(
        "name",
        [
            "rfc8935-fig3-invalid-key",
            "rfc8935-fig5-access-denied",
            "multi-set-push-02-fig5-error",
        ],
    )
    def test_published_error_bodies(self, name: str) -> None:
        """RFC 8935 Figures 3 and 5 (caption says access_denied, body invalid_issuer) and
        multi-set-push-02 Figure 5 give the outcome their err says."""
        fig = ex.by_name(name)
        err = json.loads(fig.body)["err"]
        outcome = classify_push_response(400, {}, fig.body)
        if err == "authentication_failed":
            assert isinstance(outcome, Retry) and outcome.reauthenticate
        else:
            assert outcome == Rejected(err, json.loads(fig.body)["description"])

    def test_push18_unknown_codes_are_kept_verbatim(self) -> None:
        """PUSH-18: a transmitter copes with codes it does not know."""
        for err in ("invalid subject", "too_many_sets", "x" * 200):
            body = json.dumps({"err": err, "description": "d"}).encode()
            assert classify_push_response(400, {}, body) == Rejected(err, "d")

    def test_push13_429_retry_after_seconds_and_http_date(self) -> None:
        """PUSH-11, PUSH-13: 429 retries after Retry-After (delta-seconds or IMF-fixdate)."""
        assert classify_push_response(429, {"retry-after": "2"}, b"") == Retry("HTTP 429", 2.0)
        dated = {"retry-after": "Thu, 01 Jan 1970 00:01:40 GMT"}
        assert classify_push_response(429, dated, b"", now=70.0) == Retry("HTTP 429", 30.0)
        assert classify_push_response(429, {}, b"") == Retry("HTTP 429", None)

    @pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 301, 404, 409, 418])
    def test_push11_recoverable_failures_retry(self, status: int) -> None:
        """PUSH-11, PUSH-21: 5xx, 408 and other codeless failures retry later."""
        assert classify_push_response(status, {}, b"") == Retry(f"HTTP {status}", None)
        assert classify_push_response(status, {"retry-after": "7"}, b"") == Retry(
            f"HTTP {status}", 7.0
        )

    def test_413_and_415_are_final(self) -> None:
        """A SET refused as too large or of the wrong type will not pass on retry."""
        assert isinstance(classify_push_response(413, {}, b""), Rejected)
        assert isinstance(classify_push_response(415, {}, b""), Rejected)

    @pytest.mark.parametrize(
        "body",
        [b"", b"<html>", b"[]", b"null", b'{"err": 5}', b'{"err": ""}', b'{"e": "x"}', b"\xff"],
    )
    def test_malformed_400_body_still_fails_the_set(self, body: bytes) -> None:
        """A 400 without a readable error body is a rejection with invalid_request."""
        assert classify_push_response(400, {}, body) == Rejected(
            "invalid_request", "400 without an RFC 8935 error body"
        )

    def test_error_body_with_odd_description(self) -> None:
        """A non-string description is dropped, the code still counts."""
        body = b'{"err": "invalid_key", "description": 42}'
        assert classify_push_response(400, {}, body) == Rejected("invalid_key", "")

    def test_problem_json_error_body(self) -> None:
        """Decision 5: problem+json bodies with an err member are read too."""
        body = b'{"type": "about:blank", "detail": "bad key", "err": "invalid_key"}'
        assert classify_push_response(400, {}, body) == Rejected("invalid_key", "bad key")

    @settings(max_examples=300, deadline=None)
    @given(
        status=st.integers(min_value=0, max_value=999),
        retry_after=st.none() | st.text(max_size=40),
        body=st.binary(max_size=300) | st.builds(lambda v: json.dumps(v).encode(), st.text()),
    )
    def test_classify_never_raises(self, status: int, retry_after: str | None, body: bytes) -> None:
        """Whatever a recipient answers, the transmitter gets one of the three outcomes."""
        headers = {} if retry_after is None else {"retry-after": retry_after}
        outcome = classify_push_response(status, headers, body, now=0.0)
        assert isinstance(outcome, Accepted | Rejected | Retry)
        if isinstance(outcome, Retry) and outcome.after is not None:
            assert 0.0 <= outcome.after <= 86_400.0


class TestRetryAfter:
    def test_delta_seconds(self) -> None:
        """RFC 9110 §10.2.3 delta-seconds; capped at a day."""
        assert parse_retry_after("120") == 120.0
        assert parse_retry_after(" 0 ") == 0.0
        assert parse_retry_after("99999999999") == 86_400.0

    def test_http_date(self) -> None:
        """RFC 9110 §5.6.7 IMF-fixdate, relative to ``now``; past dates mean now."""
        assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=40.0) == 60.0
        assert parse_retry_after("Thu, 01 Jan 1970 00:01:40 GMT", now=400.0) == 0.0
        assert parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now=0.0) == 86_400.0

    @pytest.mark.parametrize(
        "value", [None, "", "soon", "-5", "1.5", "1e3", "²", "١٢", "Thu, 01 Jan 1970", "0x10"]
    )
    def test_garbage_is_ignored(self, value: str | None) -> None:
        """Anything else (non-ASCII digits included) is no Retry-After at all."""
        assert parse_retry_after(value) is None
