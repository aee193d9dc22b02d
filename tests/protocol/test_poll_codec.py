"""RFC 8936 poll wire shapes (POLL-n, codec-observable items)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from peer.errors import FrameTooLarge, MalformedFrame, WireError
from peer.protocol import FrameLimits, SetErr
from peer.protocol.poll import PollRequest, PollResponse
from tests.protocol import spec_examples as ex
from tests.protocol.test_communication import ROUND_TRIP_LIMITS, jtis, set_errs, tokens

LIMITS = FrameLimits()


def req(body: bytes | str, limits: FrameLimits = LIMITS) -> PollRequest:
    return PollRequest.parse(body, limits=limits)


def resp(body: bytes | str, limits: FrameLimits = LIMITS) -> PollResponse:
    return PollResponse.parse(body, limits=limits)


@pytest.mark.parametrize("body", [b"", b"[]", b"null", b"not json", b'"{}"', b"{}{}"])
def test_poll2_bodies_are_json_objects(body: bytes) -> None:
    """POLL-2: requests and responses are JSON objects; anything else is 400."""
    for parse in (req, resp):
        with pytest.raises(MalformedFrame) as info:
            parse(body)
        assert (info.value.err, info.value.http_status) == ("invalid_request", 400)


def test_poll2_serialized_bodies_are_json_objects() -> None:
    """POLL-2: what we send is a UTF-8 JSON object."""
    for message in (PollRequest(), PollResponse(), PollRequest(ack=["é"])):
        assert isinstance(json.loads(message.serialize().decode("utf-8")), dict)


class TestPublishedRequests:
    def test_poll10_figure1_initial_poll(self) -> None:
        """POLL-10: Figure 1 asks for an immediate answer."""
        assert req(ex.by_name("rfc8936-fig1-initial-poll").body) == PollRequest(
            return_immediately=True
        )

    def test_poll10_figure2_default_poll(self) -> None:
        """POLL-10: Figure 2's {} is a long poll with no limit."""
        assert req(ex.by_name("rfc8936-fig2-default-poll").body) == PollRequest(
            max_events=None, return_immediately=False
        )

    def test_poll9_poll11_figure3_acknowledge_only(self) -> None:
        """POLL-9, POLL-11: Figure 3 acknowledges two SETs and asks for none."""
        request = req(ex.by_name("rfc8936-fig3-ack-only").body)
        assert request == PollRequest(
            max_events=0,
            return_immediately=True,
            ack=("4d3559ec67504aaba65d40b0363faad8", "3d0c3cf797584bd193bd0fb1bd4e7d30"),
        )

    def test_poll11_figure4_ack_and_poll(self) -> None:
        """POLL-11: Figure 4 acknowledges and long-polls."""
        request = req(ex.by_name("rfc8936-fig4-ack-and-poll").body)
        assert len(request.ack) == 2 and not request.return_immediately
        assert request.max_events is None

    def test_poll12_poll19_figure5_ack_with_error(self) -> None:
        """POLL-12, POLL-19: Figure 5 reports an error for an earlier SET in setErrs."""
        request = req(ex.by_name("rfc8936-fig5-ack-with-error").body)
        assert request.ack == ("3d0c3cf797584bd193bd0fb1bd4e7d30",)
        assert request.set_errs == {
            "4d3559ec67504aaba65d40b0363faad8": SetErr(
                "authentication_failed", "The SET could not be authenticated"
            )
        }


class TestRequestMembers:
    def test_poll8_max_events_is_kept(self) -> None:
        """POLL-8: maxEvents reaches the transmitter as an int (which must honour it)."""
        assert req(b'{"maxEvents": 10}').max_events == 10
        assert req(b'{"maxEvents": 10.0}').max_events == 10
        assert req(b'{"maxEvents": ' + b"9" * 30 + b"}").max_events == int("9" * 30)

    def test_poll9_max_events_zero_is_acknowledge_only(self) -> None:
        """POLL-9: maxEvents 0 is kept as 0 (not confused with "no limit")."""
        request = req(b'{"maxEvents": 0}')
        assert request.max_events == 0
        assert json.loads(request.serialize())["maxEvents"] == 0

    def test_poll10_return_immediately_default_false(self) -> None:
        """POLL-10: returnImmediately defaults to false (long poll)."""
        assert req(b"{}").return_immediately is False
        assert req(b'{"returnImmediately": false}').return_immediately is False
        assert req(b'{"returnImmediately": true}').return_immediately is True

    def test_poll11_ack_empty_or_omitted(self) -> None:
        """POLL-11: omit ack or send [] when nothing is acknowledged."""
        assert req(b'{"ack": []}') == req(b"{}")
        assert "ack" not in json.loads(PollRequest().serialize())

    def test_poll12_description_optional_on_receipt(self) -> None:
        """POLL-12 / decision 8: err required, description accepted missing."""
        assert req(b'{"setErrs": {"j": {"err": "invalid_key"}}}').set_errs == {
            "j": SetErr("invalid_key", "")
        }

    def test_poll18_ack_only_without_return_immediately_still_long_polls(self) -> None:
        """POLL-18: maxEvents 0 with returnImmediately false is still a long poll."""
        request = req(b'{"ack": ["a"], "maxEvents": 0, "returnImmediately": false}')
        assert request.max_events == 0 and request.return_immediately is False
        assert req(b'{"ack": ["a"], "maxEvents": 0}').return_immediately is False

    @pytest.mark.parametrize(
        "body",
        [
            b'{"maxEvents": -1}',
            b'{"maxEvents": "10"}',
            b'{"maxEvents": 1.5}',
            b'{"maxEvents": true}',
            b'{"maxEvents": null}',
            b'{"maxEvents": [1]}',
            b'{"returnImmediately": "true"}',
            b'{"returnImmediately": 1}',
            b'{"returnImmediately": 0}',
            b'{"returnImmediately": null}',
            b'{"ack": "j"}',
            b'{"ack": [1]}',
            b'{"ack": [""]}',
            b'{"ack": null}',
            b'{"setErrs": []}',
            b'{"setErrs": {"j": "x"}}',
            b'{"setErrs": {"j": {}}}',
            b'{"setErrs": {"": {"err": "x"}}}',
            b'{"ack": [], "ack": []}',
        ],
    )
    def test_poll21_invalid_members_are_400(self, body: bytes) -> None:
        """POLL-21: an invalid request is refused as a whole with 400 invalid_request."""
        with pytest.raises(MalformedFrame) as info:
            req(body)
        assert (info.value.err, info.value.http_status) == ("invalid_request", 400)

    def test_poll21_over_limits_is_413(self) -> None:
        """POLL-21 allows a more specific status: over a limit is 413."""
        limits = FrameLimits(max_acks_per_frame=2)
        with pytest.raises(FrameTooLarge) as info:
            req(b'{"ack": ["a", "b", "c"]}', limits)
        assert info.value.http_status == 413

    def test_unknown_members_are_ignored(self) -> None:
        """Unknown members (push-pull's maxResponseEvents included) are ignored."""
        assert req(b'{"maxResponseEvents": -1, "x": {}}') == PollRequest()


class TestResponse:
    def test_poll13_figure6_two_sets(self) -> None:
        """POLL-13: Figure 6 delivers two SETs keyed by jti."""
        response = resp(ex.by_name("rfc8936-fig6-poll-response").body)
        assert response == PollResponse(
            sets={
                "4d3559ec67504aaba65d40b0363faad8": ex.SET_4D35,
                "3d0c3cf797584bd193bd0fb1bd4e7d30": ex.SET_3D0C,
            }
        )

    def test_poll13_figure7_no_sets(self) -> None:
        """POLL-13: Figure 7's empty sets object."""
        assert resp(ex.by_name("rfc8936-fig7-no-sets").body) == PollResponse()

    def test_poll13_sets_always_present(self) -> None:
        """POLL-13: sets is required on receipt and always sent, {} when none."""
        for body in (b"{}", b'{"moreAvailable": true}', b'{"sets": null}', b'{"sets": []}'):
            with pytest.raises(MalformedFrame):
                resp(body)
        assert json.loads(PollResponse().serialize()) == {"sets": {}}

    def test_poll14_more_available(self) -> None:
        """POLL-14: moreAvailable may be omitted (false); sent only when true."""
        assert resp(b'{"sets": {}}').more_available is False
        assert resp(b'{"sets": {}, "moreAvailable": false}').more_available is False
        assert resp(b'{"sets": {}, "moreAvailable": true}').more_available is True
        assert json.loads(PollResponse(sets={"j": "a.b.c"}, more_available=True).serialize()) == {
            "sets": {"j": "a.b.c"},
            "moreAvailable": True,
        }
        assert "moreAvailable" not in json.loads(PollResponse().serialize())
        for bad in (b'"yes"', b"1", b"null", b"{}"):
            with pytest.raises(MalformedFrame):
                resp(b'{"sets": {}, "moreAvailable": ' + bad + b"}")

    def test_poll19_bad_set_values_are_answered_per_set(self) -> None:
        """POLL-19 / decision 10: a bad SET value is answered in the next poll's setErrs."""
        response = resp(b'{"sets": {"a": "x.y.z", "b": 7, "c": "nope"}}')
        assert response.sets == {"a": "x.y.z"} and set(response.rejected) == {"b", "c"}

    def test_poll8_response_size_is_bounded(self) -> None:
        """A response over max_sets_per_frame is refused whole (413-class)."""
        limits = FrameLimits(max_sets_per_frame=4)
        assert len(resp(json.dumps({"sets": {f"j{i}": "a.b.c" for i in range(4)}}), limits).sets)
        with pytest.raises(FrameTooLarge):
            resp(json.dumps({"sets": {f"j{i}": "a.b.c" for i in range(5)}}), limits)


@settings(max_examples=300, deadline=None)
@given(
    max_events=st.none() | st.integers(min_value=0, max_value=2**63 - 1),
    immediately=st.booleans(),
    ack=st.lists(jtis, max_size=ROUND_TRIP_LIMITS.max_acks_per_frame),
    errs=st.dictionaries(jtis, set_errs, max_size=ROUND_TRIP_LIMITS.max_acks_per_frame),
)
def test_poll_request_round_trip(
    max_events: int | None, immediately: bool, ack: list[str], errs: dict[str, SetErr]
) -> None:
    """Serialize then parse is the identity for every poll request."""
    request = PollRequest(max_events, immediately, ack, errs)
    assert req(request.serialize(), ROUND_TRIP_LIMITS) == request


@settings(max_examples=300, deadline=None)
@given(
    sets=st.dictionaries(jtis, tokens, max_size=ROUND_TRIP_LIMITS.max_sets_per_frame),
    more=st.booleans(),
)
def test_poll_response_round_trip(sets: dict[str, str], more: bool) -> None:
    """Serialize then parse is the identity for every poll response."""
    response = PollResponse(sets, more)
    assert resp(response.serialize(), ROUND_TRIP_LIMITS) == response
    assert resp(response.serialize().decode(), ROUND_TRIP_LIMITS) == response


def test_errors_are_wire_errors() -> None:
    """Every poll refusal is a WireError that knows its answer."""
    with pytest.raises(WireError) as info:
        req(b'{"maxEvents": -1}')
    assert info.value.body()["err"] == "invalid_request"
