"""Strict, bounded JSON (peer/protocol/jsonio.py): every refusal is typed and cheap.

Covers pushpull.md pitfall 13 (duplicate member names), RFC 8259 §6 (no NaN or
Infinity), §8.1 (UTF-8, no BOM), §8.2 (lone surrogates) and the size and depth bounds
every partner body passes through before it reaches a codec.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from peer.errors import FrameTooLarge, MalformedFrame, WireError
from peer.protocol.jsonio import dumps, loads_strict


def load(data: bytes | str, max_bytes: int = 1 << 20, max_depth: int = 32) -> object:
    return loads_strict(data, max_bytes=max_bytes, max_depth=max_depth)


def test_accepts_plain_json_with_rfc8259_whitespace() -> None:
    """RFC 8259 §2: space, tab, LF and CR around values are insignificant."""
    assert load(b' \t\r\n{"a": [1, 2.5, "x", null, true, false]} \n') == {
        "a": [1, 2.5, "x", None, True, False]
    }
    assert load("[]") == []
    assert load(b'"\\u00e9\\ud83d\\ude00"') == "é😀"  # an escaped pair is one character


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "empty"),
        (b"{", "unterminated"),
        (b"{}}", "extra data"),
        (b"{} {}", "two values"),
        (b"[1,]", "trailing comma"),
        (b'{"sets": {},}', "trailing comma (multi-set-push-02 Figure 2)"),
        (b"'x'", "single quotes"),
        (b"{a: 1}", "bare member name"),
        (b"\x00", "NUL"),
        (b"\x0c{}", "form feed is not JSON whitespace"),
        ("\u00a0{}".encode(), "no-break space is not JSON whitespace"),
        (b"NaN", "NaN (RFC 8259 §6)"),
        (b"[Infinity]", "Infinity (RFC 8259 §6)"),
        (b"[-Infinity]", "-Infinity (RFC 8259 §6)"),
        (b"[1e999]", "overflows a double"),
        (b"[-1e400]", "overflows a double"),
        (b"[" + b"9" * 5000 + b"]", "integer too long to convert"),
        (b"\xef\xbb\xbf{}", "UTF-8 byte order mark (RFC 8259 §8.1)"),
        (b"\xff\xfe{\x00}\x00", "UTF-16"),
        (b'["\xc0\xaf"]', "overlong UTF-8"),
        (b'["\xed\xa0\x80"]', "UTF-8-encoded surrogate"),
        (b'["\xe2\x82"]', "truncated UTF-8 sequence"),
        (b'["\\ud800"]', "escaped lone high surrogate (RFC 8259 §8.2)"),
        (b'{"\\udc00x": 1}', "escaped lone low surrogate in a member name"),
        (b'["\\ude00\\ud83d"]', "surrogates in the wrong order"),
        (b'{"a": 1, "a": 1}', "duplicate member, same value"),
        (b'{"a": 1, "\\u0061": 2}', "duplicate member spelled with an escape"),
    ],
)
def test_refusals_are_malformed_frame(body: bytes, why: str) -> None:
    """Every refusal is MalformedFrame (400 invalid_request / 1007), never another error."""
    with pytest.raises(MalformedFrame) as info:
        load(body)
    assert (info.value.err, info.value.http_status, info.value.close_code) == (
        "invalid_request",
        400,
        1007,
    ), why


def test_escaped_backslash_before_u_is_not_a_surrogate() -> None:
    """A literal backslash followed by "ud800" is text, not an escape: accepted."""
    assert load(b'["\\\\ud800"]') == ["\\ud800"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1, "a": 2}',
        b'{"x": {"b": 1, "b": 2}}',
        b'[{"c": 1}, {"c": 1, "c": 1}]',
        b'{"x": [[{"d": [], "d": {}}]]}',
        b'{"sets": {"j": "a.b.c", "j": "d.e.f"}}',
        b'{"setErrs": {"j": {"err": "a", "err": "b"}}}',
    ],
)
def test_duplicate_members_refused_at_every_level(body: bytes) -> None:
    """PP pitfall 13: duplicate names anywhere, not only at the top, are refused."""
    with pytest.raises(MalformedFrame, match="duplicate"):
        load(body)


def test_same_name_in_sibling_objects_is_fine() -> None:
    """Duplicates are per object: the same name in two objects is not a duplicate."""
    assert load(b'[{"a": 1}, {"a": 2}]') == [{"a": 1}, {"a": 2}]


def test_big_but_convertible_numbers() -> None:
    """Long integers up to Python's conversion limit and large finite floats are values."""
    assert load(b"[" + b"9" * 300 + b"]") == [int("9" * 300)]
    value = load(b"[1e308, -1e308, 5e-324, 1e-999]")
    assert isinstance(value, list) and all(math.isfinite(v) for v in value)


def test_depth_limit_counts_only_structure() -> None:
    """Nesting is bounded before parsing; brackets inside strings do not count."""
    arrays: object = []
    objects: object = 1
    for _ in range(32):
        objects = {"a": objects}
    for _ in range(31):
        arrays = [arrays]
    assert load("[" * 32 + "]" * 32, max_depth=32) == arrays
    assert load('{"a":' * 32 + "1" + "}" * 32, max_depth=32) == objects
    assert load('[{"a":' * 16 + "0" + "}]" * 16, max_depth=32) is not None
    too_deep = ("[" * 33 + "]" * 33, '{"a":' * 33 + "1" + "}" * 33, '[{"a":' * 17 + "0" + "}]" * 17)
    for deep in too_deep:
        with pytest.raises(MalformedFrame, match="nesting"):
            load(deep, max_depth=32)
    with pytest.raises(MalformedFrame, match="nesting"):
        load('{"a":' * 10_000 + "1" + "}" * 10_000)
    with pytest.raises(MalformedFrame, match="nesting"):
        load("[" * 10_000 + "]" * 10_000)


def test_brackets_inside_strings_do_not_nest() -> None:
    """A 10,000-level "nesting" inside a string is just text (escaped quotes included)."""
    text = "[{" * 10_000
    assert load('{"s": "' + text + '"}', max_depth=1) == {"s": text}
    assert load('["\\"[[[[", "]]\\\\"]', max_depth=1) == ['"[[[[', "]]\\"]


def test_unbalanced_deep_input_is_still_typed() -> None:
    """Unbalanced brackets that defeat the depth scan end in MalformedFrame too."""
    for body in ("[" * 10_000, "[" * 10_000 + "}" * 10_000, "}" + "[]" * 5000, "]" * 5):
        with pytest.raises(MalformedFrame):
            load(body)


def test_size_limit_before_decoding() -> None:
    """The byte limit is exact and checked before anything else (413 / 1009)."""
    assert load(b"[" + b" " * 48 + b"]", max_bytes=50) == []
    with pytest.raises(FrameTooLarge) as info:
        load(b"[" + b" " * 49 + b"]", max_bytes=50)
    assert (info.value.err, info.value.http_status, info.value.close_code) == (
        "invalid_request",
        413,
        1009,
    )
    # Checked before UTF-8 decoding: an oversized invalid body is "too large", not "bad".
    with pytest.raises(FrameTooLarge):
        load(b"\xff" * 51, max_bytes=50)


def test_text_frames_are_measured_in_utf8_bytes() -> None:
    """A str (WebSocket text frame) is limited by its UTF-8 length, not its length in chars."""
    assert load('"' + "é" * 24 + '"', max_bytes=50) == "é" * 24  # 50 bytes
    with pytest.raises(FrameTooLarge):
        load('"' + "é" * 25 + '"', max_bytes=50)  # 27 chars, 52 bytes


def test_lone_surrogate_in_text_frame() -> None:
    """A str with a lone surrogate cannot be UTF-8: MalformedFrame, not UnicodeEncodeError."""
    for text in ('["\ud800"]', '{"\udfff": 1}', "\ud83d"):
        with pytest.raises(MalformedFrame):
            load(text)


def test_dumps_is_compact_utf8() -> None:
    """dumps writes compact UTF-8 JSON (non-ASCII unescaped) that loads_strict reads back."""
    value = {"ack": ["é", "😀"], "n": 1}
    data = dumps(value)
    assert data == '{"ack":["é","😀"],"n":1}'.encode()
    assert load(data) == value


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_dumps_then_loads_is_identity(value: object) -> None:
    """Round trip: whatever dumps writes, loads_strict reads back equal (and as str too)."""
    data = dumps(value)
    assert load(data, max_depth=64) == value
    assert load(data.decode(), max_depth=64) == value
    assert json.loads(data) == value


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=256) | st.text(max_size=256))
def test_anything_is_a_value_or_a_wire_error(data: bytes | str) -> None:
    """Random input ends in a value or a WireError subclass, never another exception."""
    try:
        load(data, max_bytes=200, max_depth=4)
    except WireError:
        pass


def depth(value: object) -> int:
    """Reference nesting depth: arrays and objects count, strings never do."""
    if isinstance(value, list):
        return 1 + max((depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(item) for item in value.values()), default=0)
    return 0


nested = st.recursive(
    st.integers(-(2**63), 2**63 - 1) | st.text(alphabet='[]{}"\\ab', max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(alphabet='[]{}"\\', max_size=3), children, max_size=3)
    ),
    max_leaves=24,
)


@settings(max_examples=300, deadline=None)
@given(value=nested, max_depth=st.integers(min_value=1, max_value=8))
def test_depth_limit_is_exact(value: object, max_depth: int) -> None:
    """The depth check agrees exactly with the real nesting, brackets in strings ignored."""
    data = dumps(value)
    if depth(value) <= max_depth:
        assert load(data, max_depth=max_depth) == value
    else:
        with pytest.raises(MalformedFrame, match="nesting"):
            load(data, max_depth=max_depth)


# -- the fast path: compact input parsed by orjson, checked by writing it back ------------


@pytest.mark.parametrize(
    "body",
    [
        b'{"a":1,"a":2}',
        b'{"sets":{"j":"a.b.c","j":"a.b.c"}}',
        b'[{"x":{"b":1,"b":1}}]',
        b'{"a":{},"a":{}}',
    ],
)
def test_compact_duplicates_refused(body: bytes) -> None:
    """PP pitfall 13 on the fast path: in the compact form orjson writes, a duplicate
    member is refused all the same (the value written back lacks it)."""
    with pytest.raises(MalformedFrame, match="duplicate"):
        load(body)


def test_compact_forms_orjson_would_change_are_read_exactly() -> None:
    """Input that is compact but not what orjson writes is parsed by the checking
    parser: a long integer stays an int (orjson would make it a float), ``-0`` and
    ``1E2`` keep the stdlib's reading, escapes are decoded."""
    assert load(b"[123456789012345678901234567890]") == [123456789012345678901234567890]
    assert load(b"[18446744073709551616]") == [2**64]
    assert load(b"[-0,1E2]") == [0, 100.0]
    assert load(b'["\\u00e9\\/"]') == ["é/"]
    with pytest.raises(MalformedFrame, match="lone surrogate"):
        load(b'["\\udc00"]')
    with pytest.raises(MalformedFrame, match="NaN|not JSON"):
        load(b"[NaN]")


@settings(max_examples=200, deadline=None)
@given(value=json_values, indent=st.sampled_from([None, 1]))
def test_fast_and_checking_paths_agree(value: object, indent: int | None) -> None:
    """Compact (fast path) and spaced or ASCII-escaped (checking parser) forms of one
    value read back alike, and as the stdlib reads them."""
    spaced = json.dumps(value, indent=indent).encode()
    assert load(dumps(value), max_depth=64) == load(spaced, max_depth=64) == json.loads(spaced)


@settings(max_examples=200, deadline=None)
@given(
    members=st.dictionaries(st.text(max_size=6), json_values, min_size=1, max_size=4),
    data=st.data(),
)
def test_any_compact_duplicate_is_refused(members: dict[str, object], data: st.DataObject) -> None:
    """A member repeated anywhere in an object, in compact form, is refused."""
    name = data.draw(st.sampled_from(sorted(members)))
    body = dumps(members)
    extra = dumps({name: data.draw(json_values)})[1:-1]
    doubled = body[:-1] + b"," + extra + b"}"
    with pytest.raises(MalformedFrame, match="duplicate"):
        load(doubled, max_depth=64)
