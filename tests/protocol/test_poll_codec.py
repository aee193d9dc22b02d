"""RFC 8936 poll wire shapes (spec/poll.md, codec items)."""

from __future__ import annotations

import json

import pytest

from peer.errors import FrameTooLarge, MalformedFrame
from peer.protocol import FrameLimits, SetErr
from peer.protocol.poll import PollRequest, PollResponse
from tests.protocol import examples

LIMITS = FrameLimits()


def req(body: bytes | str) -> PollRequest:
    return PollRequest.parse(body, limits=LIMITS)


def test_poll2_bodies_are_json_objects() -> None:
    """POLL-2: requests and responses are JSON objects."""
    for bad in (b"", b"[]", b"null", b"not json"):
        with pytest.raises(MalformedFrame):
            req(bad)
        with pytest.raises(MalformedFrame):
            PollResponse.parse(bad, limits=LIMITS)


def test_poll_published_requests_parse() -> None:
    """POLL-9, POLL-10, POLL-11, POLL-12, POLL-18, POLL-19: RFC 8936 §2.4 Figures 2-5."""
    assert req(examples.POLL_ONLY) == PollRequest(return_immediately=True)
    ack_only = req(examples.ACK_ONLY)
    assert ack_only.max_events == 0 and ack_only.return_immediately and len(ack_only.ack) == 2
    both = req(examples.ACK_AND_POLL)
    assert both.max_events == 10 and not both.return_immediately and len(both.ack) == 2
    errs = req(examples.POLL_WITH_ERRORS)
    assert errs.set_errs["4d3559ec67504aaba65d40b0363faad8"].err == "authentication_failed"


def test_poll10_defaults() -> None:
    """POLL-10: returnImmediately defaults to false (long poll); maxEvents to no limit."""
    assert req(b"{}") == PollRequest(max_events=None, return_immediately=False)


def test_poll21_invalid_members_are_400() -> None:
    """POLL-21: invalid requests are refused as a whole (400)."""
    for body in (
        b'{"maxEvents": -1}',
        b'{"maxEvents": "10"}',
        b'{"maxEvents": 1.5}',
        b'{"returnImmediately": "true"}',
        b'{"returnImmediately": 1}',
        b'{"ack": "j"}',
        b'{"ack": [1]}',
        b'{"setErrs": []}',
        b'{"setErrs": {"j": "x"}}',
    ):
        with pytest.raises(MalformedFrame) as info:
            req(body)
        assert info.value.http_status == 400


def test_poll13_sets_required_in_response() -> None:
    """POLL-13: sets is always present (empty object when nothing is pending)."""
    assert PollResponse.parse(examples.POLL_RESPONSE_EMPTY, limits=LIMITS) == PollResponse()
    with pytest.raises(MalformedFrame):
        PollResponse.parse(b"{}", limits=LIMITS)
    assert json.loads(PollResponse().serialize()) == {"sets": {}}


def test_poll14_more_available() -> None:
    """POLL-14: moreAvailable may be omitted (false); must be a boolean."""
    response = PollResponse.parse(examples.POLL_RESPONSE, limits=LIMITS)
    assert response.more_available and len(response.sets) == 2
    assert json.loads(PollResponse(sets={"j": "a.b.c"}, more_available=True).serialize()) == {
        "sets": {"j": "a.b.c"},
        "moreAvailable": True,
    }
    with pytest.raises(MalformedFrame):
        PollResponse.parse(b'{"sets": {}, "moreAvailable": "yes"}', limits=LIMITS)


def test_poll8_response_size_is_bounded() -> None:
    """POLL-8 seen from the recipient: an over-limit response is refused (413-class)."""
    body = json.dumps({"sets": {f"j{i}": "a.b.c" for i in range(5)}})
    with pytest.raises(FrameTooLarge):
        PollResponse.parse(body, limits=FrameLimits(max_sets_per_frame=4))


def test_round_trip() -> None:
    """Serialize then parse is the identity."""
    request = PollRequest(
        max_events=3,
        return_immediately=True,
        ack=("a", "b"),
        set_errs={"c": SetErr("invalid_key", "revoked")},
    )
    assert req(request.serialize()) == request
