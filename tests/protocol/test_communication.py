"""The push-pull Communication Object codec (push-pull PP-n, codec-observable items)."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings, strategies as st

from peer.errors import FrameTooLarge, MalformedFrame, WireError
from peer.protocol import CommunicationObject, FrameLimits, SetErr
from peer.protocol.communication import parse_ack, parse_set_errs, parse_sets
from peer.protocol.media import JSON, media_type
from tests.adapters.wire import jti_of
from tests.protocol import spec_examples as ex

LIMITS = FrameLimits()
TOKEN = "aGVhZGVy.cGF5bG9hZA.c2ln"


def parse(body: bytes | str, limits: FrameLimits = LIMITS) -> CommunicationObject:
    return CommunicationObject.parse(body, limits=limits)


class TestShape:
    def test_pp3_empty_object_is_a_communication_object(self) -> None:
        """PP-3: every member is optional; {} is a Communication Object (and is falsy)."""
        frame = parse(b"{}")
        assert frame == CommunicationObject()
        assert not frame

    @pytest.mark.parametrize("body", [b"[]", b"null", b'"x"', b"1", b"true", b"[{}]"])
    def test_pp3_body_must_be_an_object(self, body: bytes) -> None:
        """PP-3: a Communication Object is a JSON object; any other value is refused."""
        with pytest.raises(MalformedFrame, match="object"):
            parse(body)

    def test_pp4_sets_maps_jti_to_set(self) -> None:
        """PP-4: sets maps each jti to the SET string; the order is kept."""
        frame = parse(json.dumps({"sets": {"j2": TOKEN, "j1": TOKEN + "x"}}))
        assert list(frame.sets.items()) == [("j2", TOKEN), ("j1", TOKEN + "x")]

    def test_pp4_pp5_empty_members_are_omitted_when_sent(self) -> None:
        """PP-4, PP-5: sets/ack/setErrs are left out when empty."""
        assert CommunicationObject().serialize() == b"{}"
        assert CommunicationObject(ack=["a"]).serialize() == b'{"ack":["a"]}'
        assert CommunicationObject(sets={}, ack=(), set_errs={}).to_json() == {}

    def test_pp5_ack_may_be_empty_or_omitted(self) -> None:
        """PP-5: an empty ack array and an absent ack mean the same."""
        assert parse(b'{"ack": []}') == parse(b"{}")

    @pytest.mark.parametrize("ack", [b'"j"', b"{}", b"[1]", b"[null]", b'[""]', b"[[]]"])
    def test_pp5_ack_must_be_an_array_of_jtis(self, ack: bytes) -> None:
        """PP-5: ack is an array of non-empty strings."""
        with pytest.raises(MalformedFrame):
            parse(b'{"ack": ' + ack + b"}")

    def test_pp6_set_errs_entry(self) -> None:
        """PP-6: each setErrs entry maps a jti to {err, description}; unknown codes kept."""
        frame = parse(b'{"setErrs": {"j": {"err": "invalid subject", "description": "d"}}}')
        assert frame.set_errs == {"j": SetErr("invalid subject", "d")}

    @pytest.mark.parametrize(
        "entry",
        [b'"x"', b"[]", b"{}", b'{"description": "x"}', b'{"err": ""}', b'{"err": 5}'],
    )
    def test_pp6_set_errs_entry_needs_err(self, entry: bytes) -> None:
        """PP-6: err is REQUIRED and a non-empty string."""
        with pytest.raises(MalformedFrame):
            parse(b'{"setErrs": {"j": ' + entry + b"}}")

    def test_pp6_description_absent_is_accepted_and_always_sent(self) -> None:
        """PP-6 / decision 8: accept a missing description, always send one."""
        frame = parse(b'{"setErrs": {"j": {"err": "invalid_key"}}}')
        assert frame.set_errs["j"] == SetErr("invalid_key", "")
        assert json.loads(frame.serialize())["setErrs"]["j"] == {
            "err": "invalid_key",
            "description": "invalid_key",
        }
        with pytest.raises(MalformedFrame):
            parse(b'{"setErrs": {"j": {"err": "x", "description": null}}}')

    def test_pp7_request_may_ack_send_or_both(self) -> None:
        """PP-7: a request may carry only acks, only SETs, or both."""
        only_ack = parse(b'{"ack": ["a"], "setErrs": {"b": {"err": "invalid_key"}}}')
        only_sets = parse(json.dumps({"sets": {"c": TOKEN}}))
        both = parse(json.dumps({"sets": {"c": TOKEN}, "ack": ["a"]}))
        assert only_ack.ack == ("a",) and not only_ack.sets
        assert only_sets.sets == {"c": TOKEN} and not only_sets.ack
        assert both.sets == {"c": TOKEN} and both.ack == ("a",)

    def test_pp8_pp12_body_is_application_json(self) -> None:
        """PP-8, PP-12: the body is a UTF-8 JSON object sent as application/json."""
        frame = CommunicationObject(sets={"é": TOKEN}, ack=["ü"])
        assert json.loads(frame.serialize().decode("utf-8")) == frame.to_json()
        assert media_type("Application/JSON; charset=utf-8") == JSON == "application/json"

    def test_pp9_max_response_events(self) -> None:
        """PP-9, pitfall 8: a non-negative integer; 0 means "no SETs in the response"."""
        assert parse(b'{"maxResponseEvents": 0}').max_response_events == 0
        assert parse(b'{"maxResponseEvents": 25}').max_response_events == 25
        assert parse(b'{"maxResponseEvents": 5.0}').max_response_events == 5
        assert parse(b"{}").max_response_events is None
        big = parse(b'{"maxResponseEvents": ' + b"9" * 40 + b"}").max_response_events
        assert big == int("9" * 40)
        assert CommunicationObject(max_response_events=0).to_json() == {"maxResponseEvents": 0}

    @pytest.mark.parametrize("bad", [b"-1", b"1.5", b"-0.5", b'"10"', b"true", b"null", b"[]"])
    def test_pp9_pitfall8_bad_max_response_events(self, bad: bytes) -> None:
        """Pitfall 8: negative, fractional or non-number values are 400 invalid_request."""
        with pytest.raises(MalformedFrame) as info:
            parse(b'{"maxResponseEvents": ' + bad + b"}")
        assert (info.value.err, info.value.http_status) == ("invalid_request", 400)

    def test_pp11_pp12_a_response_body_is_a_communication_object(self) -> None:
        """PP-11, PP-12: the 200 body is a Communication Object, possibly {}."""
        response = CommunicationObject(sets={"s": TOKEN}, ack=["a"])
        assert parse(response.serialize()) == response
        assert parse(CommunicationObject().serialize()) == CommunicationObject()

    @pytest.mark.parametrize(
        ("body", "limits", "status"),
        [
            (b"not json", LIMITS, 400),
            (b"[]", LIMITS, 400),
            (b'{"sets": []}', LIMITS, 400),
            (b'{"sets": {"": "a.b.c"}}', LIMITS, 400),
            (b'{"ack": [1]}', LIMITS, 400),
            (b'{"a": 1, "a": 2}', LIMITS, 400),
            (b"{" + b" " * 100 + b"}", FrameLimits(max_frame_bytes=64), 413),
            (b'{"sets": {"a": "x.y.z", "b": "x.y.z"}}', FrameLimits(max_sets_per_frame=1), 413),
            (b'{"ack": ["a", "b"]}', FrameLimits(max_acks_per_frame=1), 413),
            (b'{"ack": ["abcdef"]}', FrameLimits(max_string_bytes=5), 413),
        ],
    )
    def test_pp13_errors_carry_their_wire_form(
        self, body: bytes, limits: FrameLimits, status: int
    ) -> None:
        """PP-13: an unparseable request is an error with an RFC 8935 code (invalid_request)
        and status 400, or 413 when over a limit; the body is {err, description}."""
        with pytest.raises(WireError) as info:
            parse(body, limits)
        error = info.value
        assert isinstance(error, MalformedFrame if status == 400 else FrameTooLarge)
        assert (error.err, error.http_status) == ("invalid_request", status)
        assert error.close_code == (1007 if status == 400 else 1009)
        assert error.body() == {"err": "invalid_request", "description": error.description}

    def test_pp14_ack_and_set_errs_may_name_earlier_sets(self) -> None:
        """PP-14: ack/setErrs may name jtis not carried in this object; the codec keeps them."""
        frame = parse(json.dumps({"sets": {"new": TOKEN}, "ack": ["old-1"]}).encode())
        assert frame.ack == ("old-1",) and "old-1" not in frame.sets

    def test_pp27_all_members_in_one_object(self) -> None:
        """PP-27: sets, ack and setErrs travel together in any Communication Object."""
        frame = CommunicationObject(
            sets={"a": TOKEN}, ack=["b"], set_errs={"c": SetErr("invalid_issuer", "no")}
        )
        assert set(frame.to_json()) == {"sets", "ack", "setErrs"}
        assert parse(frame.serialize()) == frame


class TestPublishedExamples:
    def test_pp3_section_5_1_example(self) -> None:
        """PP-3..PP-6: push-pull -03 §5.1 parses with all three members."""
        frame = parse(ex.by_name("pushpull-03-5.1-communication-object").body)
        assert list(frame.sets) == [
            "dfc38da2-939e-4536-bec9-b8a16ed45c4e",
            "d93341ad-7329-4d1b-ba4a-9ff6f9f34003",
        ]
        assert len(frame.ack) == 3 and not frame.rejected
        assert frame.set_errs == {
            "5c436b19-0958-4367-b408-2dd542606d3b": SetErr(
                "invalid subject", "subject format not supported"
            )
        }

    def test_pp9_section_6_3_request_and_response(self) -> None:
        """PP-9, PP-11: the §6.3 request (maxResponseEvents 10) and 200 response parse."""
        request = parse(ex.by_name("pushpull-03-6.3-request").body)
        assert request.max_response_events == 10 and request.ack == ()
        assert request.sets["9deb50b0-d2f8-4793-a420-5e5678cf25a8"] == ex.PP_SET_9DEB
        response = parse(ex.by_name("pushpull-03-6.3-response").body)
        assert response.ack == ("d8d439e6-b103-47c7-86d9-d5951ce774d1",)
        assert response.sets == {"3f1c5fc7-99c5-4c2b-a9a3-68ea90be9ca9": ex.PP_SET_3F1C}

    def test_pitfall9_key_differs_from_jti_codec_keeps_key(self) -> None:
        """Pitfall 9 / decision 10: §5.1 pairs key d93341ad-... with a SET whose jti is
        3d0c3cf7...; the codec keeps the key and does not reject (the verifier compares)."""
        frame = parse(ex.by_name("pushpull-03-5.1-communication-object").body)
        key = "d93341ad-7329-4d1b-ba4a-9ff6f9f34003"
        assert frame.sets[key] == ex.SET_3D0C
        assert jti_of(frame.sets[key]) == "3d0c3cf797584bd193bd0fb1bd4e7d30" != key
        assert key not in frame.rejected


class TestPitfalls:
    def test_pitfall2_acks_is_ignored(self) -> None:
        """Pitfall 2 / decision 2: "acks" (-03 Conformance prose) is not aliased to ack."""
        assert parse(b'{"acks": ["x"]}') == CommunicationObject()
        assert parse(b'{"acks": ["x"], "ack": ["y"]}').ack == ("y",)

    def test_pitfall13_duplicate_jti_keys_are_rejected(self) -> None:
        """Pitfall 13: two identical jti keys in sets (or setErrs) refuse the object."""
        for body in (
            b'{"sets": {"j": "a.b.c", "j": "d.e.f"}}',
            b'{"setErrs": {"j": {"err": "a"}, "j": {"err": "b"}}}',
            b'{"ack": [], "ack": ["j"]}',
            b'{"setErrs": {"j": {"err": "a", "err": "b"}}}',
        ):
            with pytest.raises(MalformedFrame, match="duplicate"):
                parse(body)

    def test_pitfall13_duplicates_in_ack_array_are_kept(self) -> None:
        """An ack array may repeat a jti (it is not an object); the codec keeps the list."""
        assert parse(b'{"ack": ["a", "a"]}').ack == ("a", "a")

    def test_pitfall14_unknown_members_are_ignored(self) -> None:
        """Pitfall 14: unknown members, of any type, are ignored."""
        body = b'{"future": {"x": [1, 2]}, "n": null, "ack": ["a"], "maxEvents": "x"}'
        assert parse(body) == CommunicationObject(ack=("a",))

    def test_same_jti_in_ack_and_set_errs_is_kept(self) -> None:
        """Pitfall 15: a contradiction is passed on whole; the Ledger decides (decision)."""
        frame = parse(b'{"ack": ["j"], "setErrs": {"j": {"err": "invalid_key"}}}')
        assert frame.ack == ("j",) and "j" in frame.set_errs


class TestPerSetProblems:
    def test_decision10_bad_set_values_become_per_set_errors(self) -> None:
        """Decision 10: a non-string, oversized or non-JWS SET is a setErrs answer."""
        limits = FrameLimits(max_set_bytes=64)
        values = {"ok": TOKEN, "num": 5, "null": None, "obj": {}, "big": "a." + "b" * 100 + ".c"}
        values |= {"bad": "not a jws", "two": "a.b", "space": "a.b.c ", "nl": "a.b.c\n"}
        frame = parse(json.dumps({"sets": values}), limits)
        assert frame.sets == {"ok": TOKEN}
        assert set(frame.rejected) == set(values) - {"ok"}
        assert {e.err for e in frame.rejected.values()} == {"invalid_request"}

    def test_helpers_directly(self) -> None:
        """parse_sets/parse_ack/parse_set_errs check one member each."""
        assert parse_sets({"a": TOKEN}, LIMITS) == ({"a": TOKEN}, {})
        assert parse_ack(["a", "b"], LIMITS) == ("a", "b")
        assert parse_set_errs({"a": {"err": "x", "extra": 1}}, LIMITS) == {"a": SetErr("x", "")}
        for call in (
            lambda: parse_sets([], LIMITS),
            lambda: parse_ack({}, LIMITS),
            lambda: parse_set_errs([], LIMITS),
        ):
            with pytest.raises(MalformedFrame):
                call()


class TestLimits:
    def test_mp22_too_many_sets_is_413(self) -> None:
        """MP-22's limit applies to push-pull too: exactly the limit passes, one more is 413."""
        limits = FrameLimits(max_sets_per_frame=3)
        at_limit = {"sets": {f"j{i}": TOKEN for i in range(3)}}
        assert len(parse(json.dumps(at_limit), limits).sets) == 3
        with pytest.raises(FrameTooLarge):
            parse(json.dumps({"sets": {f"j{i}": TOKEN for i in range(4)}}), limits)

    def test_acks_and_set_errs_share_one_limit(self) -> None:
        """ack entries plus setErrs entries are bounded together."""
        limits = FrameLimits(max_acks_per_frame=3)
        errs = {"c": {"err": "x"}}
        assert len(parse(json.dumps({"ack": ["a", "b"], "setErrs": errs}), limits).ack) == 2
        for body in (
            {"ack": ["a", "b", "c", "d"]},
            {"setErrs": {k: {"err": "x"} for k in "abcd"}},
            {"ack": ["a", "b"], "setErrs": {"c": {"err": "x"}, "d": {"err": "y"}}},
        ):
            with pytest.raises(FrameTooLarge):
                parse(json.dumps(body), limits)

    def test_long_strings_are_refused(self) -> None:
        """String length is bounded for jtis, err and description."""
        limits = FrameLimits(max_string_bytes=8)
        for body in (
            b'{"ack": ["123456789"]}',
            b'{"sets": {"123456789": "a.b.c"}}',
            b'{"setErrs": {"j": {"err": "123456789"}}}',
            b'{"setErrs": {"j": {"err": "x", "description": "123456789"}}}',
        ):
            with pytest.raises(FrameTooLarge):
                parse(body, limits)
        assert parse(b'{"ack": ["12345678"]}', limits).ack == ("12345678",)


# Strategies shared by the codec round-trip tests (imported by the poll and multi-push ones).
# jtis: any non-empty text without surrogates (hypothesis' default alphabet), unicode included.
jtis = st.text(min_size=1, max_size=40)
_B64URL = string.ascii_letters + string.digits + "-_"
tokens = st.builds(
    "{}.{}.{}".format,
    st.text(_B64URL, min_size=1, max_size=40),
    st.text(_B64URL, min_size=1, max_size=160),
    st.text(_B64URL, max_size=60),
)
set_errs = st.builds(
    SetErr,
    st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=30)
    | st.text(min_size=1, max_size=30),
    st.text(min_size=1, max_size=60),
)
ROUND_TRIP_LIMITS = FrameLimits(max_sets_per_frame=25, max_acks_per_frame=40)


@settings(max_examples=300, deadline=None)
@given(
    sets=st.dictionaries(jtis, tokens, max_size=ROUND_TRIP_LIMITS.max_sets_per_frame),
    ack=st.lists(jtis, max_size=20),
    errs=st.dictionaries(jtis, set_errs, max_size=20),
    mre=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
)
def test_pp27_round_trip(
    sets: dict[str, str], ack: list[str], errs: dict[str, SetErr], mre: int | None
) -> None:
    """PP-27: serialize then parse is the identity, for counts up to the limits."""
    frame = CommunicationObject(sets=sets, ack=ack, set_errs=errs, max_response_events=mre)
    assert parse(frame.serialize(), ROUND_TRIP_LIMITS) == frame
    assert parse(frame.serialize().decode(), ROUND_TRIP_LIMITS) == frame  # text frame


def test_round_trip_at_exact_limits() -> None:
    """Counts exactly at max_sets_per_frame and max_acks_per_frame survive a round trip."""
    limits = FrameLimits(max_sets_per_frame=1000, max_acks_per_frame=10_000)
    frame = CommunicationObject(
        sets={f"s{i}": TOKEN for i in range(1000)},
        ack=[f"a{i}" for i in range(9000)],
        set_errs={f"e{i}": SetErr("invalid_key", "revoked") for i in range(1000)},
    )
    assert parse(frame.serialize(), limits) == frame


def test_set_err_round_trip_normalizes_empty_description() -> None:
    """Decision 8: an empty description is sent as the code, so it reads back as the code."""
    frame = CommunicationObject(set_errs={"j": SetErr("invalid_key")})
    assert parse(frame.serialize()).set_errs == {"j": SetErr("invalid_key", "invalid_key")}
