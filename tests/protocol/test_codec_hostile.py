"""Hostile input to every wire parser: each case ends parsed or in a WireError, quickly.

Random bytes and text, type-confused JSON, truncated and mutated published bodies, and
~1 MiB pathological bodies go to every parser. Whatever a parser returns must be
well-shaped and must be answerable: acking or erroring every jti it accepted has to
serialize (so a hostile jti cannot crash the answer). Each parse of a ~1 MiB body must
finish within a second: a sanity bound, not a performance target.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from peer.errors import WireError
from peer.protocol import CommunicationObject, FrameLimits, SetErr
from peer.protocol.communication import COMPACT_JWS
from peer.protocol.jsonio import loads_strict
from peer.protocol.multipush import MultiPushRequest, MultiPushResponse
from peer.protocol.poll import PollRequest, PollResponse
from peer.protocol.push import parse_push_request
from tests.protocol import spec_examples as ex
from tests.timing import seconds

LIMITS = FrameLimits()  # the defaults: 1 MiB frames, 1,000 SETs, 10,000 acks, depth 32
MAX = LIMITS.max_frame_bytes

PARSERS: dict[str, Callable[[bytes | str], Any]] = {
    "communication": lambda b: CommunicationObject.parse(b, limits=LIMITS),
    "poll_request": lambda b: PollRequest.parse(b, limits=LIMITS),
    "poll_response": lambda b: PollResponse.parse(b, limits=LIMITS),
    "multipush_request": lambda b: MultiPushRequest.parse(b, limits=LIMITS),
    "multipush_response": lambda b: MultiPushResponse.parse(b, limits=LIMITS),
    "push": lambda b: parse_push_request(
        b.encode(errors="surrogatepass") if isinstance(b, str) else b,
        "application/secevent+jwt",
        limits=LIMITS,
    ),
    "json": lambda b: loads_strict(b, max_bytes=MAX, max_depth=LIMITS.max_depth),
}
NAMES = sorted(PARSERS)
BODIES = [e.body for e in ex.EXAMPLES if e.body]


def _strings_encode(value: Any) -> None:
    # Every string we accepted must be sendable back (no lone surrogates).
    if isinstance(value, str):
        value.encode()
    elif isinstance(value, dict):
        for key, item in value.items():
            _strings_encode(key)
            _strings_encode(item)
    elif isinstance(value, list):
        for item in value:
            _strings_encode(item)


def _answer(received: dict[str, Any], rejected: dict[str, SetErr]) -> None:
    """The recipient's answer to what it accepted must serialize and parse back."""
    answer = CommunicationObject(ack=tuple(received), set_errs=dict(rejected))
    echo = CommunicationObject.parse(answer.serialize(), limits=LIMITS)
    assert echo.ack == answer.ack
    # Decision 8: an empty description travels as the code itself.
    assert echo.set_errs == {
        jti: SetErr(e.err, e.description or e.err) for jti, e in answer.set_errs.items()
    }


def check(name: str, result: Any) -> None:
    """A parsed value is well-shaped and answerable."""
    sets: dict[str, Any] = dict(getattr(result, "sets", {}))
    for jti, token in sets.items():
        assert isinstance(jti, str) and jti
        assert isinstance(token, str) and COMPACT_JWS.fullmatch(token)
        assert len(token) <= LIMITS.max_set_bytes
    assert len(sets) <= LIMITS.max_sets_per_frame
    for jti in getattr(result, "ack", ()):
        assert isinstance(jti, str) and jti
    for err in getattr(result, "set_errs", {}).values():
        assert isinstance(err.err, str) and err.err and isinstance(err.description, str)
    for name in ("max_events", "max_response_events"):
        count = getattr(result, name, None)
        assert count is None or (type(count) is int and count >= 0)
    for name in ("return_immediately", "more_available"):
        assert type(getattr(result, name, False)) is bool
    if name == "push":
        assert isinstance(result, str) and COMPACT_JWS.fullmatch(result)
    _strings_encode(result)
    _answer(sets, dict(getattr(result, "rejected", {})))
    if isinstance(result, CommunicationObject | MultiPushResponse | PollRequest):
        _answer(dict.fromkeys(result.ack), dict(result.set_errs))


def survive(name: str, body: bytes | str, bound: float = 1.0) -> Any:
    """Parse: a value (checked) or a WireError; anything else fails; bounded time."""
    started = time.perf_counter()
    try:
        result = PARSERS[name](body)
    except WireError as error:
        assert 400 <= error.http_status < 500 and error.err == "invalid_request"
        result = error
    elapsed = time.perf_counter() - started
    assert elapsed < seconds(bound), f"{name} took {elapsed:.3f} s on {len(body)} bytes"
    if not isinstance(result, WireError):
        check(name, result)
    return result


member_names = st.sampled_from(
    [
        "sets",
        "ack",
        "acks",
        "setErrs",
        "maxResponseEvents",
        "maxEvents",
        "returnImmediately",
        "moreAvailable",
        "err",
        "description",
        "j1",
        "",
    ]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["a.b.c", "x.y.", "", ".", "a.b", ex.SET_3D0C]),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(member_names | st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
# Type confusion where the codecs expect something precise.
PLACES: list[Callable[[Any], Any]] = [
    lambda v: v,
    lambda v: {"sets": v},
    lambda v: {"sets": {"j": v}},
    lambda v: {"ack": v},
    lambda v: {"ack": [v]},
    lambda v: {"setErrs": v},
    lambda v: {"setErrs": {"j": v}},
    lambda v: {"setErrs": {"j": {"err": v}}},
    lambda v: {"setErrs": {"j": {"err": "x", "description": v}}},
    lambda v: {"maxResponseEvents": v},
    lambda v: {"maxEvents": v, "sets": {}},
    lambda v: {"returnImmediately": v, "ack": []},
    lambda v: {"sets": {}, "moreAvailable": v},
]
confused = st.builds(
    lambda place, v: PLACES[place](v), st.integers(0, len(PLACES) - 1), json_values
)
hostile = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("name", NAMES)
@hostile
@given(body=st.binary(max_size=2048))
def test_random_bytes(name: str, body: bytes) -> None:
    """Random bytes never raise anything but a WireError."""
    survive(name, body)


@pytest.mark.parametrize("name", NAMES)
@hostile
@given(
    text=st.text(
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
        | st.sampled_from('{}[]":,\\ .abjsetckEr0123456789-')
        | st.characters(),
        max_size=300,
    )
)
def test_random_text_frames(name: str, text: str) -> None:
    """Random str input (a WebSocket text frame), lone surrogates included."""
    survive(name, text)


@pytest.mark.parametrize("name", NAMES)
@hostile
@given(value=confused)
def test_type_confused_json(name: str, value: Any) -> None:
    """Well-formed JSON with numbers, strings, lists or nulls where objects belong."""
    survive(name, json.dumps(value).encode())


@pytest.mark.parametrize("name", NAMES)
@hostile
@given(which=st.integers(0, len(BODIES) - 1), cut=st.integers(min_value=0))
def test_truncated_published_bodies(name: str, which: int, cut: int) -> None:
    """Every prefix of a published body ends parsed or in a WireError."""
    body = BODIES[which]
    survive(name, body[: cut % (len(body) + 1)])


@pytest.mark.parametrize("name", NAMES)
@hostile
@given(
    which=st.integers(0, len(BODIES) - 1),
    edits=st.lists(st.tuples(st.integers(min_value=0), st.binary(max_size=3)), max_size=4),
)
def test_mutated_published_bodies(name: str, which: int, edits: list[tuple[int, bytes]]) -> None:
    """Published bodies with a few bytes replaced: parsed or a WireError."""
    body = bytearray(BODIES[which])
    for at, patch in edits:
        start = at % (len(body) + 1)
        body[start : start + len(patch)] = patch
    survive(name, bytes(body))


def padded(core: bytes, size: int) -> bytes:
    """``core`` followed by spaces up to exactly ``size`` bytes."""
    return core + b" " * (size - len(core))


def members(count: int, template: bytes) -> bytes:
    """``count`` comma-separated copies of ``template`` with %d replaced by 0..count-1."""
    return b",".join(template % i for i in range(count))


TOKEN = b"eyJhbGciOiJub25lIn0.eyJqdGkiOiJqIn0.c2ln"
DEPTH_SCAN_WORST = b"[" * 33 + b"]" * 33  # each pass of the depth scan removes one pair
HUGE: dict[str, bytes | str] = {
    "deep-arrays": b"[" * 10_000 + b"]" * 10_000,
    "deep-objects": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
    "deep-mixed": b'[{"a":' * 5_000 + b"0" + b"}]" * 5_000,
    "deep-unclosed": b'{"sets": ' + b"[" * 10_000,
    "deep-unbalanced": (b"[" * 5_000 + b"}" * 5_000) * 100,
    "deep-in-unknown-member": b'{"sets": {}, "x": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "depth-scan-worst": b'{"sets": {}, "x": [' + DEPTH_SCAN_WORST * 15_000 + b"0]}",
    "brackets-in-string": b'{"sets": {}, "x": "' + b"[{" * 500_000 + b'"}',
    "just-over-max": padded(b'{"sets": {}}', MAX + 1),
    "whitespace-to-max": b" " * (MAX - 12) + b'{"sets": {}}',
    "many-sets": b'{"sets": {'
    + members(LIMITS.max_sets_per_frame + 1, b'"j%d": "' + TOKEN + b'"')
    + b"}}",
    "many-acks": b'{"ack": [' + members(LIMITS.max_acks_per_frame + 1, b'"a%d"') + b"]}",
    "many-set-errs": b'{"setErrs": {'
    + members(LIMITS.max_acks_per_frame + 1, b'"e%d": {"err": "x"}')
    + b"}}",
    "long-jti": b'{"ack": ["' + b"x" * 900_000 + b'"]}',
    "long-set": b'{"sets": {"j": "a.' + b"b" * 900_000 + b'.c"}}',
    "huge-int": b'{"maxEvents": ' + b"9" * 900_000 + b"}",
    "huge-float": b'{"sets": {}, "maxEvents": 1e999, "maxResponseEvents": -1e999}',
    "nan": b'{"sets": {}, "maxEvents": NaN}',
    "infinity": b'{"sets": {}, "ack": [Infinity]}',
    "lone-surrogate-escapes": b'{"sets": {}, "ack": ["' + b"\\ud800" * 150_000 + b'"]}',
    "lone-surrogate-text": '{"sets": {}, "ack": ["' + "\ud800" * 100_000 + '"]}',
    "surrogate-pairs": b'{"sets": {}, "x": "' + b"\\ud83d\\ude00" * 80_000 + b'"}',
    "invalid-utf8-tail": b'{"sets": {}, "x": "' + b"a" * (MAX - 40) + b'\xff"}',
    "bom": b"\xef\xbb\xbf" + padded(b'{"sets": {}}', MAX - 3),
    "duplicates-late": b'{"sets": {}, ' + members(80_000, b'"k%d": 0') + b', "k0": 1}',
    "escapes": b'{"sets": {}, "x": "' + b"\\u0000" * 170_000 + b'"}',
    "backslashes": b'{"sets": {}, "x": "' + b"\\\\" * 500_000 + b'"}',
    "escaped-quotes-unterminated": b'["' + b'\\"' * 500_000,
}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case", sorted(HUGE))
def test_huge_hostile_bodies(name: str, case: str) -> None:
    """10,000-level nesting, ~1 MiB pathological bodies: typed outcome within 1 s."""
    survive(name, HUGE[case])


JSON_PARSERS = [n for n in NAMES if n != "push"]


@pytest.mark.parametrize("name", NAMES)
def test_just_over_max_frame_bytes_is_413(name: str) -> None:
    """One byte over max_frame_bytes is FrameTooLarge (413 / 1009) for every parser."""
    error = survive(name, HUGE["just-over-max"])
    assert isinstance(error, WireError) and (error.http_status, error.close_code) == (413, 1009)


@pytest.mark.parametrize("name", JSON_PARSERS)
def test_exactly_max_frame_bytes_parses(name: str) -> None:
    """A body of exactly max_frame_bytes is not too large."""
    assert not isinstance(survive(name, HUGE["whitespace-to-max"]), WireError)
    assert not isinstance(survive(name, HUGE["just-over-max"][:MAX]), WireError)


@pytest.mark.parametrize("name", JSON_PARSERS)
@pytest.mark.parametrize("case", ["brackets-in-string", "surrogate-pairs", "escapes"])
def test_nesting_and_escapes_inside_strings_are_text(name: str, case: str) -> None:
    """Brackets, escaped pairs and escapes inside a string are not structure: accepted."""
    assert not isinstance(survive(name, HUGE[case]), WireError)


@pytest.mark.parametrize("name", JSON_PARSERS)
@pytest.mark.parametrize(
    "case",
    [
        "deep-arrays",
        "deep-objects",
        "deep-mixed",
        "deep-unclosed",
        "deep-unbalanced",
        "deep-in-unknown-member",
        "depth-scan-worst",
        "huge-int",
        "huge-float",
        "nan",
        "infinity",
        "lone-surrogate-escapes",
        "lone-surrogate-text",
        "invalid-utf8-tail",
        "bom",
        "duplicates-late",
        "escaped-quotes-unterminated",
    ],
)
def test_invalid_json_is_malformed_frame(name: str, case: str) -> None:
    """Not acceptable JSON for anyone: 400 / 1007, whichever codec reads it."""
    error = survive(name, HUGE[case])
    assert isinstance(error, WireError) and (error.http_status, error.close_code) == (400, 1007)


@pytest.mark.parametrize("name", JSON_PARSERS)
@pytest.mark.parametrize(
    "body",
    [
        b'{"sets": {}, "sets": {}}',
        b'{"sets": {"j": "a.b.c", "j": "a.b.c"}}',
        b'{"sets": {}, "ack": ["a"], "setErrs": {"j": {"err": "x"}, "j": {"err": "y"}}}',
        b'{"sets": {}, "setErrs": {"j": {"err": "x", "err": "x"}}}',
        b'{"sets": {}, "setErrs": {"j": {"err": "x", "description": "", "description": ""}}}',
        b'{"sets": {}, "x": [{"y": {"z": 1, "z": 2}}]}',
        b'{"sets": {}, "maxEvents": 1, "maxEvents": 1}',
        b'{"sets": {}, "moreAvailable": true, "moreAvailable": true}',
        b'{"sets": {}, "s\\u0065ts": {}}',
    ],
)
def test_duplicate_keys_at_every_level(name: str, body: bytes) -> None:
    """PP pitfall 13: a duplicate member name anywhere refuses the body (400)."""
    error = survive(name, body)
    assert isinstance(error, WireError) and "duplicate" in error.description


# Which parsers read which counted member (the others ignore it as unknown).
COUNTED = {
    "many-sets": {"communication", "poll_response", "multipush_request"},
    "many-acks": {"communication", "poll_request", "multipush_response"},
    "many-set-errs": {"communication", "poll_request", "multipush_response"},
    "long-jti": {"communication", "poll_request", "multipush_response"},
}


@pytest.mark.parametrize("name", JSON_PARSERS)
@pytest.mark.parametrize("case", sorted(COUNTED))
def test_too_many_or_too_long_is_413(name: str, case: str) -> None:
    """Over max_sets_per_frame, max_acks_per_frame or max_string_bytes: 413 / 1009."""
    result = survive(name, HUGE[case])
    if name in COUNTED[case]:
        assert isinstance(result, WireError) and result.http_status == 413
    elif name != "json":
        assert not isinstance(result, WireError) or "sets member" in result.description


@pytest.mark.parametrize("name", ["communication", "poll_response", "multipush_request"])
def test_oversized_set_is_a_per_set_error(name: str) -> None:
    """Decision 10: one SET over max_set_bytes is rejected alone, the frame parses."""
    result = survive(name, HUGE["long-set"])
    assert not isinstance(result, WireError)
    assert set(result.rejected) == {"j"} and not result.sets


def test_push_body_limits() -> None:
    """RFC 8935: a body over max_set_bytes is 413 before any parsing; exactly fits is fine."""
    size = LIMITS.max_set_bytes
    fits = b"a." + b"b" * (size - 4) + b".c"
    assert survive("push", fits) == fits.decode()
    error = survive("push", fits + b"c")
    assert isinstance(error, WireError) and error.http_status == 413
