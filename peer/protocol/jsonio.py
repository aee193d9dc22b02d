"""Strict, bounded JSON for everything a partner sends us.

Checks run cheapest first, so hostile input is refused before it costs much:
byte length, UTF-8, nesting depth (a scan with the strings removed), then the
parse itself, which rejects duplicate member names (PP pitfall 13), ``NaN`` and
``Infinity`` (not JSON, RFC 8259 §6) and integers too long to convert.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from ..errors import FrameTooLarge, MalformedFrame

__all__ = ["dumps", "loads_strict"]

# A JSON string with its escapes, as an unrolled loop (linear, no backtracking).
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_INNERMOST = re.compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class _DuplicateMember(ValueError):
    pass


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateMember(key)
            seen.add(key)
    return obj


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(object_pairs_hook=_object, parse_constant=_constant)


def _depth_exceeds(data: bytes, max_depth: int) -> bool:
    """True if the nesting of ``data`` is deeper than ``max_depth``.

    Strings are removed first (brackets inside them do not nest); then each pass
    removes every innermost ``[]``/``{}`` pair, i.e. one level. Unbalanced input
    stops shrinking and is left for the parser to reject.
    """
    skeleton = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    for _ in range(max_depth):
        if not skeleton:
            return False
        shorter = _INNERMOST.sub(b"", skeleton)
        if len(shorter) == len(skeleton):
            return False  # unbalanced: the parser will say where
        skeleton = shorter
    return bool(skeleton)


def loads_strict(data: bytes | str, *, max_bytes: int, max_depth: int) -> Any:
    """Parse untrusted JSON within limits.

    Args:
        data: the body or message, as received.
        max_bytes: refuse anything longer, before decoding.
        max_depth: refuse deeper nesting, before parsing.

    Returns:
        The parsed value (dicts, lists, str, int, float, bool, None).

    Raises:
        FrameTooLarge: longer than ``max_bytes``.
        MalformedFrame: not UTF-8, too deep, not JSON, or duplicate member names.
    """
    if isinstance(data, str):
        # A str came from a text frame; its UTF-8 length is what the limit means.
        if len(data) > max_bytes:
            raise FrameTooLarge(f"body exceeds {max_bytes} bytes")
        try:
            raw = data.encode()
        except UnicodeEncodeError:
            raise MalformedFrame("body is not valid UTF-8 (lone surrogate)") from None
    else:
        raw = bytes(data)
    if len(raw) > max_bytes:
        raise FrameTooLarge(f"body exceeds {max_bytes} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedFrame(f"body is not valid UTF-8 at byte {exc.start}") from None
    if _depth_exceeds(raw, max_depth):
        raise MalformedFrame(f"JSON nesting deeper than {max_depth} levels")
    try:
        value, end = _DECODER.raw_decode(text, _skip_ws(text, 0))
    except _DuplicateMember as exc:
        raise MalformedFrame(f"duplicate JSON member name {_clip(str(exc))!r}") from None
    except json.JSONDecodeError as exc:
        raise MalformedFrame(f"invalid JSON: {exc.msg} at offset {exc.pos}") from None
    except (ValueError, RecursionError) as exc:
        raise MalformedFrame(f"invalid JSON: {_clip(str(exc))}") from None
    if _skip_ws(text, end) != len(text):
        raise MalformedFrame(f"invalid JSON: extra data at offset {end}")
    return value


def _skip_ws(text: str, pos: int) -> int:
    # RFC 8259 §2: insignificant whitespace is space, tab, LF and CR only.
    length = len(text)
    while pos < length and text[pos] in " \t\n\r":
        pos += 1
    return pos


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def dumps(value: Any) -> bytes:
    """Serialize compactly to UTF-8 JSON."""
    return orjson.dumps(value)
