"""Multi-SET push wire shapes, -02 with the other revisions' deltas (MP-n)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from peer.errors import FrameTooLarge, MalformedFrame, WireError
from peer.protocol import FrameLimits, SetErr
from peer.protocol.media import JSON, SECEVENT_JWT, SECEVENTS_JSON
from peer.protocol.multipush import (
    REQUEST_MEDIA_TYPES,
    MultiPushRequest,
    MultiPushResponse,
    is_multipush_media_type,
)
from tests.protocol import spec_examples as ex
from tests.protocol.test_communication import ROUND_TRIP_LIMITS, jtis, set_errs, tokens

LIMITS = FrameLimits()


def request(body: bytes | str, limits: FrameLimits = LIMITS) -> MultiPushRequest:
    return MultiPushRequest.parse(body, limits=limits)


def response(body: bytes | str, limits: FrameLimits = LIMITS) -> MultiPushResponse:
    return MultiPushResponse.parse(body, limits=limits)


class TestRequest:
    def test_mp11_figure1_two_sets(self) -> None:
        """MP-2, MP-11: Figure 1's sets maps jti to SET (the RFC 8936 SETs, reused)."""
        assert request(ex.by_name("multi-set-push-02-fig1-request").body) == MultiPushRequest(
            sets={
                "4d3559ec67504aaba65d40b0363faad8": ex.SET_4D35,
                "3d0c3cf797584bd193bd0fb1bd4e7d30": ex.SET_3D0C,
            }
        )

    @pytest.mark.parametrize("body", [b"{}", b'{"set": {}}', b'{"sets": null}', b'{"sets": []}'])
    def test_mp11_sets_required_and_an_object(self, body: bytes) -> None:
        """MP-11: sets is REQUIRED and an object; otherwise 400 invalid_request."""
        with pytest.raises(MalformedFrame) as info:
            request(body)
        assert (info.value.err, info.value.http_status) == ("invalid_request", 400)

    def test_mp3_empty_batch_figure2_intended(self) -> None:
        """MP-3: {"sets": {}} collects owed acks; it is what we send for an empty batch."""
        assert request(ex.by_name("multi-set-push-02-fig2-intended").body) == MultiPushRequest()
        assert MultiPushRequest().serialize() == b'{"sets":{}}'

    def test_mp3_figure2_as_published_is_invalid_json(self) -> None:
        """multipush.md pitfall: Figure 2 as printed has a trailing comma: 400, not accepted."""
        fig = ex.by_name("multi-set-push-02-fig2-as-printed")
        assert not fig.valid
        with pytest.raises(MalformedFrame, match="invalid JSON") as info:
            request(fig.body)
        assert (info.value.err, info.value.http_status) == ("invalid_request", 400)

    def test_mp22_over_limit_batch_is_413(self) -> None:
        """MP-22: exactly the limit passes; one more SET refuses the whole batch with 413."""
        limits = FrameLimits(max_sets_per_frame=10)
        assert len(
            request(json.dumps({"sets": {f"j{i}": "a.b.c" for i in range(10)}}), limits).sets
        )
        with pytest.raises(FrameTooLarge) as info:
            request(json.dumps({"sets": {f"j{i}": "a.b.c" for i in range(11)}}), limits)
        error = info.value
        assert (error.http_status, error.err) == (413, "invalid_request")  # not too_many_sets

    def test_mp22_over_limit_even_when_values_are_bad(self) -> None:
        """MP-22: the count is checked before any value, so junk cannot dodge the limit."""
        limits = FrameLimits(max_sets_per_frame=2)
        with pytest.raises(FrameTooLarge):
            request(b'{"sets": {"a": 1, "b": 2, "c": 3}}', limits)

    def test_mp17_set_problems_are_not_request_errors(self) -> None:
        """MP-17, MP-25 / decision 10: a bad SET goes to setErrs, the others are delivered."""
        body = json.dumps({"sets": {"a": "x.y.z", "b": 7, "c": "p.q.r", "d": "no"}})
        parsed = request(body)
        assert parsed.sets == {"a": "x.y.z", "c": "p.q.r"}
        assert parsed.rejected == {
            "b": SetErr("invalid_request", "SET must be a string in compact form"),
            "d": SetErr("invalid_request", "SET is not a JWS in compact form"),
        }

    def test_mp25_order_carries_no_meaning(self) -> None:
        """MP-25: SETs are independent; any order parses to the same batch."""
        forward = request(b'{"sets": {"a": "x.y.z", "b": "p.q.r"}}')
        backward = request(b'{"sets": {"b": "p.q.r", "a": "x.y.z"}}')
        assert dict(forward.sets) == dict(backward.sets)

    def test_unknown_members_are_ignored(self) -> None:
        """Unknown request members are ignored (SSF convention)."""
        assert request(b'{"sets": {}, "ack": 5, "x": null}') == MultiPushRequest()


class TestResponse:
    def test_mp14_figure3_ack(self) -> None:
        """MP-14, MP-16: Figure 3's 202 body acknowledges one SET."""
        fig = ex.by_name("multi-set-push-02-fig3-ack")
        assert fig.status == 202
        assert response(fig.body) == MultiPushResponse(ack=("3d0c3cf797584bd193bd0fb1bd4e7d30",))

    def test_mp14_mp18_figure4_ack_and_errors(self) -> None:
        """MP-14, MP-18: Figure 4 acks three earlier SETs (jtis opaque, not UUIDs) and errs one."""
        parsed = response(ex.by_name("multi-set-push-02-fig4-ack-and-errors").body)
        assert parsed.ack == (
            "f52901c499611ef94540242ac12000322",
            "0636e274399711ef9454-0242ac120002",
            "d563c72479a04ff0ba415657fa5e2cb11",
        )
        assert parsed.set_errs == {
            "4d3559ec67504aaba65d40b0363faad8": SetErr("invalid_key", "Failed validation")
        }
        assert parsed.has_descriptions  # MP-15: Content-Language needed

    def test_multipush00_figure4_unknown_code_kept(self) -> None:
        """multi-push-00 delta: its Figure 4 (status 200) uses "invalid subject"; kept verbatim."""
        fig = ex.by_name("multi-push-00-fig4-ack-and-errors")
        assert fig.status == 200
        errs = response(fig.body).set_errs
        assert errs["4d3559ec67504aaba65d40b0363faad8"].err == "invalid subject"

    def test_mp14_ack_always_sent(self) -> None:
        """MP-14: ack is REQUIRED, so it is sent even when empty; setErrs only when any."""
        assert json.loads(MultiPushResponse().serialize()) == {"ack": []}
        assert not MultiPushResponse().has_descriptions
        both = MultiPushResponse(ack=["a"], set_errs={"b": SetErr("invalid_key", "revoked")})
        assert json.loads(both.serialize()) == {
            "ack": ["a"],
            "setErrs": {"b": {"err": "invalid_key", "description": "revoked"}},
        }

    def test_mp14_missing_ack_reads_as_empty(self) -> None:
        """multi-push-00 delta: ack was optional; a missing ack reads as []."""
        assert response(b"{}") == MultiPushResponse()
        assert response(b'{"setErrs": {"j": {"err": "x"}}}').ack == ()

    def test_mp14_description_optional(self) -> None:
        """MP-14 / decision 8: description OPTIONAL on receipt."""
        parsed = response(b'{"ack": [], "setErrs": {"j": {"err": "x"}}}')
        assert parsed.set_errs == {"j": SetErr("x", "")}

    @pytest.mark.parametrize(
        "body",
        [
            b"[]",
            b'{"ack": "j"}',
            b'{"ack": [1]}',
            b'{"ack": [], "setErrs": {"j": {}}}',
            b'{"ack": [], "setErrs": []}',
            b'{"ack": [], "ack": []}',
            b"{,}",
        ],
    )
    def test_mp17_mp19_malformed_response_bodies(self, body: bytes) -> None:
        """MP-17, MP-19: a malformed success body is a typed error, never a crash."""
        with pytest.raises(MalformedFrame):
            response(body)

    def test_mp16_mp17_request_level_error_body(self) -> None:
        """MP-16, MP-17: request-level failures answer 400 {err, description} (JSON)."""
        with pytest.raises(WireError) as info:
            request(b'{"sets": 1}')
        assert info.value.http_status == 400
        assert info.value.body() == {
            "err": "invalid_request",
            "description": "sets must be an object mapping jti to SET",
        }


class TestMediaTypes:
    @pytest.mark.parametrize(
        "content_type",
        [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/secevents+json",
            " APPLICATION/SECEVENTS+JSON ;q=1",
        ],
    )
    def test_mp10_accepted(self, content_type: str) -> None:
        """MP-10 and the editor's copy (decision 5): both JSON media types are accepted."""
        assert is_multipush_media_type(content_type)

    @pytest.mark.parametrize(
        "content_type", [None, "", SECEVENT_JWT, "application/problem+json", "text/json", "json"]
    )
    def test_mp10_refused(self, content_type: str | None) -> None:
        """Anything else is not multi-push (RFC 8935's type dispatches elsewhere, decision 13)."""
        assert not is_multipush_media_type(content_type)

    def test_request_media_types(self) -> None:
        """We send application/json; secevents+json is accepted, never sent (decision 5)."""
        assert frozenset({JSON, SECEVENTS_JSON}) == REQUEST_MEDIA_TYPES


@settings(max_examples=300, deadline=None)
@given(sets=st.dictionaries(jtis, tokens, max_size=ROUND_TRIP_LIMITS.max_sets_per_frame))
def test_request_round_trip(sets: dict[str, str]) -> None:
    """Serialize then parse is the identity for every batch, up to the batch limit."""
    batch = MultiPushRequest(sets)
    assert request(batch.serialize(), ROUND_TRIP_LIMITS) == batch


@settings(max_examples=300, deadline=None)
@given(
    ack=st.lists(jtis, max_size=20),
    errs=st.dictionaries(jtis, set_errs, max_size=20),
)
def test_response_round_trip(ack: list[str], errs: dict[str, SetErr]) -> None:
    """Serialize then parse is the identity for every response (acks + errors up to 40)."""
    answer = MultiPushResponse(ack, errs)
    assert response(answer.serialize(), ROUND_TRIP_LIMITS) == answer
