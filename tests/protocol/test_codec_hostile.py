"""Hostile input to every parser: each case ends parsed or in a typed WireError, quickly."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from peer.errors import WireError
from peer.protocol import CommunicationObject, FrameLimits
from peer.protocol.jsonio import loads_strict
from peer.protocol.multipush import MultiPushRequest, MultiPushResponse
from peer.protocol.poll import PollRequest, PollResponse
from peer.protocol.push import parse_push_request
from tests.protocol import examples

LIMITS = FrameLimits(max_frame_bytes=256 * 1024)

PARSERS: dict[str, Callable[[bytes], Any]] = {
    "communication": lambda b: CommunicationObject.parse(b, limits=LIMITS),
    "poll_request": lambda b: PollRequest.parse(b, limits=LIMITS),
    "poll_response": lambda b: PollResponse.parse(b, limits=LIMITS),
    "multipush_request": lambda b: MultiPushRequest.parse(b, limits=LIMITS),
    "multipush_response": lambda b: MultiPushResponse.parse(b, limits=LIMITS),
    "push": lambda b: parse_push_request(b, "application/secevent+jwt", limits=LIMITS),
    "json": lambda b: loads_strict(b, max_bytes=LIMITS.max_frame_bytes, max_depth=32),
}
VALID = [
    examples.PUSHPULL_OBJECT,
    examples.POLL_RESPONSE,
    examples.ACK_AND_POLL,
    examples.MULTIPUSH_RESPONSE,
    examples.POLL_WITH_ERRORS,
]


def survive(parser: Callable[[bytes], Any], body: bytes) -> None:
    started = time.perf_counter()
    try:
        parser(body)
    except WireError:
        pass
    assert time.perf_counter() - started < 1.0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(
                [
                    "sets",
                    "ack",
                    "setErrs",
                    "maxResponseEvents",
                    "maxEvents",
                    "returnImmediately",
                    "moreAvailable",
                    "err",
                    "description",
                    "j1",
                    "x",
                ]
            ),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)
common = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("name", sorted(PARSERS))
@common
@given(body=st.binary(max_size=2048))
def test_random_bytes(name: str, body: bytes) -> None:
    """Random bytes never raise anything but a WireError."""
    survive(PARSERS[name], body)


@pytest.mark.parametrize("name", sorted(PARSERS))
@common
@given(value=json_values)
def test_type_confused_json(name: str, value: object) -> None:
    """Well-formed JSON of the wrong types ends parsed or in a WireError."""
    survive(PARSERS[name], json.dumps(value).encode())


@pytest.mark.parametrize("name", sorted(PARSERS))
@common
@given(which=st.integers(min_value=0, max_value=len(VALID) - 1), cut=st.integers(min_value=0))
def test_truncated_valid_bodies(name: str, which: int, cut: int) -> None:
    """Every prefix of a valid body ends parsed or in a WireError."""
    body = VALID[which]
    survive(PARSERS[name], body[: cut % (len(body) + 1)])


@pytest.mark.parametrize("name", sorted(PARSERS))
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b"{" + b'"a":{' * 10_000 + b"}" * 10_001,
        b'{"sets": ' + b"[" * 10_000,
        b'{"ack": ["' + b"x" * 300_000 + b'"]}',
        b'{"sets": {"' + b'j": "a.b.c", "' * 20_000 + b'z": "a.b.c"}}',
        b'{"maxEvents": ' + b"9" * 100_000 + b"}",
        b'{"ack": [' + b'"a",' * 60_000 + b'"a"]}',
        b'"' + b"\\u0000" * 40_000 + b'"',
    ],
    ids=[
        "deep-arrays",
        "deep-objects",
        "deep-unclosed",
        "oversized",
        "many-sets",
        "huge-int",
        "many-acks",
        "escapes",
    ],
)
def test_named_hostile_bodies(name: str, body: bytes) -> None:
    """10,000-level nesting, oversized and pathological bodies: typed error, bounded time."""
    survive(PARSERS[name], body)
