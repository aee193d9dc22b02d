"""The push-pull Communication Object codec (spec/pushpull.md, codec items)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from peer.errors import FrameTooLarge, MalformedFrame
from peer.protocol import CommunicationObject, FrameLimits, SetErr
from tests.protocol import examples

LIMITS = FrameLimits()
TOKEN = "aGVhZGVy.cGF5bG9hZA.c2ln"


def parse(body: bytes | str, limits: FrameLimits = LIMITS) -> CommunicationObject:
    return CommunicationObject.parse(body, limits=limits)


class TestShape:
    def test_pp3_empty_object_is_valid(self) -> None:
        """PP-3: every member is optional; {} is a Communication Object."""
        frame = parse(b"{}")
        assert frame == CommunicationObject()
        assert not frame

    def test_pp3_published_example_parses(self) -> None:
        """PP-3, PP-4, PP-5, PP-6: the -03 §5.1 example carries all three members."""
        frame = parse(examples.PUSHPULL_OBJECT)
        assert list(frame.sets) == ["d93341ad-1ad7-4e4b-bd70-7d8f2e4c2e0a"]
        assert list(frame.ack) == ["c6fb3d4f-0e89-4e1b-8b7e-3b0c7c3c3d8a"]
        assert frame.set_errs["1dcb9e52-1e7b-4c9b-a4c4-4c7d7c1ef1c1"].err == "invalid_request"

    def test_pp4_sets_maps_jti_to_set(self) -> None:
        """PP-4: sets maps each jti to the SET string."""
        assert parse(json.dumps({"sets": {"j1": TOKEN}})).sets == {"j1": TOKEN}

    def test_pp4_sets_omitted_when_empty_on_serialize(self) -> None:
        """PP-4, PP-5: empty members are omitted on the wire."""
        assert CommunicationObject().serialize() == b"{}"
        assert CommunicationObject(ack=["a"]).serialize() == b'{"ack":["a"]}'

    def test_pp5_ack_may_be_empty(self) -> None:
        """PP-5: an empty ack array is allowed."""
        assert parse(b'{"ack": []}').ack == ()

    def test_pp6_set_errs_need_err(self) -> None:
        """PP-6: each setErrs entry has err; a missing err is a malformed object."""
        with pytest.raises(MalformedFrame):
            parse(b'{"setErrs": {"j": {"description": "x"}}}')

    def test_pp6_description_absent_is_accepted_and_always_sent(self) -> None:
        """PP-6 / decision 8: accept a missing description, always send one."""
        frame = parse(b'{"setErrs": {"j": {"err": "invalid_key"}}}')
        assert frame.set_errs["j"] == SetErr("invalid_key", "")
        assert json.loads(frame.serialize())["setErrs"]["j"]["description"]

    def test_pp9_max_response_events(self) -> None:
        """PP-9: maxResponseEvents is a non-negative number; 0 means no SETs."""
        assert parse(b'{"maxResponseEvents": 0}').max_response_events == 0
        assert parse(b'{"maxResponseEvents": 25}').max_response_events == 25
        assert parse(b'{"maxResponseEvents": 5.0}').max_response_events == 5
        for bad in (b"-1", b"1.5", b'"10"', b"true", b"null", b"[]"):
            with pytest.raises(MalformedFrame):
                parse(b'{"maxResponseEvents": ' + bad + b"}")

    def test_pp14_ack_may_name_earlier_sets(self) -> None:
        """PP-14: ack and setErrs may name SETs the codec has never seen in this object."""
        frame = parse(b'{"ack": ["old-1"], "setErrs": {"old-2": {"err": "invalid_key"}}}')
        assert frame.ack == ("old-1",) and "old-2" in frame.set_errs

    def test_pp27_all_members_round_trip(self) -> None:
        """PP-27: sets, ack and setErrs travel in every Communication Object."""
        frame = CommunicationObject(
            sets={"a": TOKEN}, ack=["b"], set_errs={"c": SetErr("invalid_issuer", "no")}
        )
        assert parse(frame.serialize()) == frame


class TestPitfalls:
    def test_acks_spelling_is_an_unknown_member(self) -> None:
        """Decision 2 (PP-26/PP-27 say "acks"): acks is ignored, not aliased to ack."""
        assert parse(b'{"acks": ["x"]}').ack == ()

    def test_unknown_members_are_ignored(self) -> None:
        """PP pitfall 14: unknown members are ignored."""
        assert parse(b'{"future": {"x": [1, 2]}, "ack": ["a"]}').ack == ("a",)

    def test_map_key_is_kept_even_if_jti_differs(self) -> None:
        """Decision 10: the codec keeps the sets key; the verifier compares it with jti."""
        assert "d93341ad-1ad7-4e4b-bd70-7d8f2e4c2e0a" in parse(examples.PUSHPULL_OBJECT).sets

    def test_duplicate_jti_keys_are_rejected(self) -> None:
        """PP pitfall 13: two identical jti keys in sets are a malformed object."""
        with pytest.raises(MalformedFrame, match="duplicate"):
            parse(b'{"sets": {"j": "a.b.c", "j": "d.e.f"}}')

    def test_duplicate_member_names_rejected_at_any_level(self) -> None:
        """PP pitfall 13: duplicates anywhere (top level, setErrs entries)."""
        for body in (b'{"ack": [], "ack": []}', b'{"setErrs": {"j": {"err": "a", "err": "b"}}}'):
            with pytest.raises(MalformedFrame):
                parse(body)


class TestPerSetProblems:
    def test_bad_set_values_become_per_set_errors(self) -> None:
        """Decision 10: a non-string, oversized or non-JWS SET is a setErrs answer."""
        limits = FrameLimits(max_set_bytes=64)
        body = json.dumps(
            {"sets": {"ok": TOKEN, "num": 5, "big": "a." + "b" * 100 + ".c", "bad": "not a jws"}}
        )
        frame = parse(body, limits)
        assert frame.sets == {"ok": TOKEN}
        assert set(frame.rejected) == {"num", "big", "bad"}
        assert all(e.err == "invalid_request" for e in frame.rejected.values())


class TestLimits:
    def test_too_many_sets_is_413(self) -> None:
        """MP-22 limit applied to push-pull too: over max_sets_per_frame is 413 / 1009."""
        limits = FrameLimits(max_sets_per_frame=2)
        with pytest.raises(FrameTooLarge) as info:
            parse(json.dumps({"sets": {f"j{i}": TOKEN for i in range(3)}}), limits)
        assert (info.value.http_status, info.value.close_code) == (413, 1009)

    def test_too_many_acks(self) -> None:
        """Number of acks is bounded."""
        limits = FrameLimits(max_acks_per_frame=3)
        with pytest.raises(FrameTooLarge):
            parse(json.dumps({"ack": ["a", "b", "c", "d"]}), limits)
        with pytest.raises(FrameTooLarge):
            parse(
                json.dumps({"ack": ["a", "b"], "setErrs": {"c": {"err": "x"}, "d": {"err": "y"}}}),
                limits,
            )

    def test_body_over_limit_is_refused_before_parsing(self) -> None:
        """PP-13: an oversized body is an error (413 / 1009), checked before decoding."""
        limits = FrameLimits(max_frame_bytes=100)
        with pytest.raises(FrameTooLarge):
            parse(b"{" + b" " * 200 + b"}", limits)

    def test_long_strings_are_refused(self) -> None:
        """String length is bounded (jti, err, description)."""
        limits = FrameLimits(max_string_bytes=8)
        with pytest.raises(FrameTooLarge):
            parse(b'{"ack": ["123456789"]}', limits)

    def test_errors_carry_their_wire_form(self) -> None:
        """PP-13: every refusal knows its RFC 8935 code, HTTP status and close code."""
        with pytest.raises(MalformedFrame) as info:
            parse(b"[]")
        err = info.value
        assert (err.err, err.http_status, err.close_code) == ("invalid_request", 400, 1007)
        assert err.body() == {"err": "invalid_request", "description": err.description}


jtis = st.text(min_size=1, max_size=40)
tokens = st.from_regex(
    r"[A-Za-z0-9_-]{1,20}\.[A-Za-z0-9_-]{1,20}\.[A-Za-z0-9_-]{0,20}", fullmatch=True
)
set_errs = st.builds(
    SetErr, st.from_regex(r"[a-z_]{1,20}", fullmatch=True), st.text(min_size=1, max_size=40)
)


@settings(max_examples=300, deadline=None)
@given(
    sets=st.dictionaries(jtis, tokens, max_size=20),
    ack=st.lists(jtis, max_size=20),
    errs=st.dictionaries(jtis, set_errs, max_size=10),
    mre=st.none() | st.integers(min_value=0, max_value=10_000),
)
def test_round_trip(
    sets: dict[str, str], ack: list[str], errs: dict[str, SetErr], mre: int | None
) -> None:
    """PP-27: serialize then parse is the identity for every well-formed object."""
    frame = CommunicationObject(sets=sets, ack=tuple(ack), set_errs=errs, max_response_events=mre)
    assert parse(frame.serialize()) == frame
