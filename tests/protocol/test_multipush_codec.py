"""Multi-SET push wire shapes, -02 with the other revisions' deltas (spec/multipush.md)."""

from __future__ import annotations

import json

import pytest

from peer.errors import FrameTooLarge, MalformedFrame
from peer.protocol import FrameLimits, SetErr
from peer.protocol.multipush import MultiPushRequest, MultiPushResponse, is_multipush_media_type
from tests.protocol import examples

LIMITS = FrameLimits()


def test_mp11_published_request_parses() -> None:
    """MP-11, MP-2: sets maps jti to SET; Figure 1's shape."""
    assert len(MultiPushRequest.parse(examples.MULTIPUSH_REQUEST, limits=LIMITS).sets) == 2


def test_mp11_sets_required() -> None:
    """MP-11: sets is REQUIRED."""
    with pytest.raises(MalformedFrame):
        MultiPushRequest.parse(b"{}", limits=LIMITS)


def test_mp3_empty_batch() -> None:
    """MP-3: an empty batch collects owed acks; Figure 2 as published is invalid JSON."""
    assert MultiPushRequest.parse(examples.MULTIPUSH_EMPTY_INTENDED, limits=LIMITS).sets == {}
    with pytest.raises(MalformedFrame):
        MultiPushRequest.parse(examples.MULTIPUSH_EMPTY_AS_PUBLISHED, limits=LIMITS)
    assert MultiPushRequest().serialize() == b'{"sets":{}}'


def test_mp22_over_limit_batch_is_413() -> None:
    """MP-22: a batch over the per-request limit is refused whole with 413."""
    body = json.dumps({"sets": {f"j{i}": "a.b.c" for i in range(11)}})
    with pytest.raises(FrameTooLarge) as info:
        MultiPushRequest.parse(body, limits=FrameLimits(max_sets_per_frame=10))
    assert info.value.http_status == 413


def test_mp14_response_shapes() -> None:
    """MP-14, MP-18: ack required (sent even empty), setErrs optional, earlier jtis allowed."""
    response = MultiPushResponse.parse(examples.MULTIPUSH_RESPONSE, limits=LIMITS)
    assert response.ack == ("f52901c4-5e89-4a0f-a1c2-c1d3e28fa8b1e", "a1b2c3d4")
    assert response.set_errs["3d0c3cf797464d3f964a9777d7bf3bc3"].err == "invalid_key"
    assert json.loads(MultiPushResponse().serialize()) == {"ack": []}


def test_mp14_missing_ack_reads_as_empty() -> None:
    """multi-push-00 delta: ack was optional; a missing ack reads as []."""
    assert MultiPushResponse.parse(b"{}", limits=LIMITS).ack == ()


def test_mp14_description_optional() -> None:
    """MP-14 / decision 8: description OPTIONAL on receipt."""
    response = MultiPushResponse.parse(
        b'{"ack": [], "setErrs": {"j": {"err": "x"}}}', limits=LIMITS
    )
    assert response.set_errs == {"j": SetErr("x", "")}
    assert response.has_descriptions


def test_mp17_malformed_response_bodies() -> None:
    """MP-17, MP-19: malformed bodies are refused with a typed error."""
    for body in (b"[]", b'{"ack": "j"}', b'{"ack": [], "setErrs": {"j": {}}}', b"{,}"):
        with pytest.raises(MalformedFrame):
            MultiPushResponse.parse(body, limits=LIMITS)


def test_media_types() -> None:
    """MP-10 and the editor's copy: application/json and application/secevents+json."""
    assert is_multipush_media_type("application/json")
    assert is_multipush_media_type("Application/JSON; charset=utf-8")
    assert is_multipush_media_type("application/secevents+json")
    assert not is_multipush_media_type("application/secevent+jwt")
    assert not is_multipush_media_type(None)


def test_mp25_order_carries_no_meaning() -> None:
    """MP-25: SETs in a batch are independent; a bad one does not spoil the others."""
    body = json.dumps({"sets": {"a": "x.y.z", "b": 7, "c": "p.q.r"}})
    request = MultiPushRequest.parse(body, limits=LIMITS)
    assert set(request.sets) == {"a", "c"} and set(request.rejected) == {"b"}
