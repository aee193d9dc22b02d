"""Strict reading of the local interface's requests: JSON bodies and query strings.

Everything an application sends is checked before the node sees it: a body is read
up to its bound and no further, must be one JSON object with known members of the
right types; query parameters must be known, single, and in range. A refusal is a
:class:`Refused` carrying the answer: status, error code and description.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from starlette.requests import Request

from ..errors import FrameTooLarge, MalformedFrame
from ..protocol.jsonio import loads_strict
from ..server.app import read_body

__all__ = [
    "MAX_DEPTH",
    "MAX_SEQ",
    "Refused",
    "json_object",
    "optional",
    "query",
    "query_int",
    "query_number",
    "required",
]

MAX_DEPTH = 32  # nesting of a request body; a SET's claims need far less
MAX_SEQ = 2**63 - 1  # inbox sequence numbers are signed 64-bit in every store


class Refused(Exception):
    """A request the interface answers with an error.

    Attributes:
        status: HTTP status.
        error: the ``error`` code of the body.
        description: the ``description`` of the body, safe to show.
        headers: extra response headers (``Retry-After`` on 429).
        more: extra members of the body (the numbers of a 413 or 429).
    """

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        headers: Mapping[str, str] | None = None,
        more: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = dict(headers or {})
        self.more = dict(more or {})


def bad(description: str) -> Refused:
    """A 400 ``invalid_request``."""
    return Refused(400, "invalid_request", description)


async def json_object(request: Request, *, limit: int, keys: Collection[str]) -> dict[str, Any]:
    """The request's JSON object body, at most ``limit`` bytes, members within ``keys``.

    Raises:
        Refused: 413 over ``limit`` (the read stops there); 400 not JSON, not an
            object, an unknown member, or a Content-Type other than JSON.
    """
    media = request.headers.get("content-type", "application/json").partition(";")[0]
    if media.strip().lower() != "application/json":
        raise bad("Content-Type must be application/json")
    try:
        body = await read_body(request, limit)
        value = loads_strict(body, max_bytes=limit, max_depth=MAX_DEPTH)
    except FrameTooLarge:
        raise Refused(413, "too_large", f"the body is over {limit} bytes") from None
    except MalformedFrame as exc:
        raise bad(exc.description) from None
    if not isinstance(value, dict):
        raise bad("the body must be a JSON object")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise bad(f"unknown member {_name(unknown[0])}; known: {', '.join(sorted(keys))}")
    return value


def required(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``body[key]``, which must be there and of ``kind`` (never a bool for a number).

    Raises:
        Refused: 400 missing or of another type.
    """
    if key not in body:
        raise bad(f"member {key!r} is required")
    return _typed(body[key], key, kind)


def optional(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``body[key]`` of ``kind``, or None when absent or null.

    Raises:
        Refused: 400 of another type.
    """
    value = body.get(key)
    return None if value is None else _typed(value, key, kind)


def _typed(value: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise bad(f"member {key!r} must be {_kind_name(kinds)}")
    if not isinstance(value, kinds):
        raise bad(f"member {key!r} must be {_kind_name(kinds)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise bad(f"member {key!r} must be finite")
    return value


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {str: "a string", dict: "an object", list: "an array", int: "a number"}
    return " or ".join(dict.fromkeys(names.get(k, "a number") for k in kinds))


def query(request: Request, known: Collection[str]) -> dict[str, str]:
    """The query parameters, each known and given once.

    Raises:
        Refused: 400 an unknown or repeated parameter.
    """
    found: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in known:
            raise bad(f"unknown query parameter {_name(key)}; known: {', '.join(sorted(known))}")
        if key in found:
            raise bad(f"query parameter {key!r} given twice")
        found[key] = value
    return found


def query_int(params: Mapping[str, str], key: str, default: int, low: int, high: int) -> int:
    """An integer parameter in ``low..high``, ``default`` when absent.

    Raises:
        Refused: 400 not a plain decimal integer, or out of range.
    """
    text = params.get(key)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise bad(f"{key} must be an integer from {low} to {high}")
    value = int(text)
    if not low <= value <= high:
        raise bad(f"{key} must be an integer from {low} to {high}")
    return value


def query_number(
    params: Mapping[str, str], key: str, default: float, low: float, high: float
) -> float:
    """A decimal number parameter in ``low..high``, ``default`` when absent.

    Raises:
        Refused: 400 not a plain decimal number, or out of range.
    """
    text = params.get(key)
    if text is None:
        return default
    whole, dot, fraction = text.partition(".")
    plain = whole.isascii() and whole.isdigit() and (not dot or fraction.isdigit())
    if not plain or len(text) > 32 or not fraction.isascii():
        raise bad(f"{key} must be a number from {low:g} to {high:g}")
    value = float(text)
    if not low <= value <= high:
        raise bad(f"{key} must be a number from {low:g} to {high:g}")
    return value


def _name(text: str) -> str:
    """A caller's name for a member, fit to quote back: bounded, printable."""
    return repr(text[:64].encode("unicode_escape").decode("ascii"))
