"""Strict, bounded JSON: every refusal is typed and cheap."""

from __future__ import annotations

import pytest

from peer.errors import FrameTooLarge, MalformedFrame
from peer.protocol.jsonio import loads_strict


def load(data: bytes | str, max_bytes: int = 1 << 20, max_depth: int = 32) -> object:
    return loads_strict(data, max_bytes=max_bytes, max_depth=max_depth)


def test_accepts_plain_json() -> None:
    assert load(b' {"a": [1, 2.5, "x", null, true]} \n') == {"a": [1, 2.5, "x", None, True]}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b"{}}",
        b"[1,]",
        b"NaN",
        b"[Infinity]",
        b"[-Infinity]",
        b"\xef\xbb\xbf{}",
        b"\xff\xfe{}",
        b'{"a":1,"a":1}',
        b"[" + b"9" * 5000 + b"]",
        b"'x'",
        b"{} {}",
        b'"\\ud800"x',
        b"\x00",
    ],
)
def test_refusals_are_malformed_frame(body: bytes) -> None:
    """Invalid UTF-8, BOM, NaN, duplicates, huge integers, trailing data: all typed."""
    with pytest.raises(MalformedFrame):
        load(body)


def test_depth_limit_counts_only_structure() -> None:
    """Nesting is bounded before parsing; brackets inside strings do not count."""
    assert load("[" * 32 + "]" * 32, max_depth=32)
    with pytest.raises(MalformedFrame, match="nesting"):
        load("[" * 33 + "]" * 33, max_depth=32)
    with pytest.raises(MalformedFrame, match="nesting"):
        load('{"a":' * 10_000 + "1" + "}" * 10_000)
    assert load('{"s": "' + "[{" * 10_000 + '"}') == {"s": "[{" * 10_000}
    assert load('["\\"[[[["]', max_depth=1) == ['"[[[[']


def test_size_limit_before_decoding() -> None:
    with pytest.raises(FrameTooLarge):
        load(b"[" + b" " * 100 + b"]", max_bytes=50)
    with pytest.raises(FrameTooLarge):
        load("[" + " " * 100 + "]", max_bytes=50)


def test_lone_surrogate_in_text_frame() -> None:
    with pytest.raises(MalformedFrame):
        load('["\ud800"]')
