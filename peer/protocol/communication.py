"""The push-pull Communication Object (push-pull §5) and its shared pieces.

The same object travels in HTTP requests, HTTP responses and WebSocket messages:
``sets`` (jti -> compact SET), ``ack`` (jtis accepted) and ``setErrs`` (jti ->
``{"err", "description"}``), plus ``maxResponseEvents`` in HTTP requests (PP-9).
This module is the only place the wire spelling ``setErrs`` appears.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from typing import Any, Self

from ..errors import FrameTooLarge, MalformedFrame
from .jsonio import dumps, loads_strict
from .limits import FrameLimits

__all__ = [
    "COMPACT_JWS",
    "CommunicationObject",
    "SetErr",
    "parse_ack",
    "parse_set_errs",
    "parse_sets",
]

# Three base64url segments; the signature may be empty only for alg none, which the
# verifier refuses anyway. Checked on every SET before it reaches the verifier.
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


@dataclasses.dataclass(frozen=True, slots=True)
class SetErr:
    """A negative acknowledgement: an RFC 8935 §2.4 code and a description (PP-6)."""

    err: str
    description: str = ""

    def to_json(self) -> dict[str, str]:
        # PP-6 makes description REQUIRED; we always send one (decision 8).
        return {"err": self.err, "description": self.description or self.err}


def _check_string(value: object, what: str, limits: FrameLimits) -> str:
    if not isinstance(value, str):
        raise MalformedFrame(f"{what} must be a string")
    if len(value) > limits.max_string_bytes:
        raise FrameTooLarge(f"{what} exceeds {limits.max_string_bytes} bytes")
    return value


def _check_jti(value: object, what: str, limits: FrameLimits) -> str:
    jti = _check_string(value, what, limits)
    if not jti:
        raise MalformedFrame(f"{what} must not be empty")
    return jti


def parse_sets(value: object, limits: FrameLimits) -> tuple[dict[str, str], dict[str, SetErr]]:
    """Check a ``sets`` member (jti -> compact SET).

    Returns:
        ``(sets, rejected)``: well-shaped entries, and entries refused one by one
        (value not a string, over ``max_set_bytes``, not compact JWS syntax). A bad
        entry is a per-SET ``setErrs`` answer, not a bad frame (decision 10), so
        one broken SET never costs the others their delivery.

    Raises:
        MalformedFrame: ``sets`` is not an object, or a key is not a usable jti.
        FrameTooLarge: more than ``max_sets_per_frame`` entries (MP-22).
    """
    if not isinstance(value, dict):
        raise MalformedFrame("sets must be an object mapping jti to SET")
    if len(value) > limits.max_sets_per_frame:
        raise FrameTooLarge(
            f"{len(value)} SETs in one object, the limit is {limits.max_sets_per_frame}"
        )
    sets: dict[str, str] = {}
    rejected: dict[str, SetErr] = {}
    for key, token in value.items():
        jti = _check_jti(key, "sets key", limits)
        if not isinstance(token, str):
            rejected[jti] = SetErr("invalid_request", "SET must be a string in compact form")
        elif len(token) > limits.max_set_bytes:
            rejected[jti] = SetErr("invalid_request", f"SET exceeds {limits.max_set_bytes} bytes")
        elif COMPACT_JWS.fullmatch(token) is None:
            rejected[jti] = SetErr("invalid_request", "SET is not a JWS in compact form")
        else:
            sets[jti] = token
    return sets, rejected


def parse_ack(value: object, limits: FrameLimits) -> tuple[str, ...]:
    """Check an ``ack`` member: an array of jti strings (PP-5, POLL-11)."""
    if not isinstance(value, list):
        raise MalformedFrame("ack must be an array of jti strings")
    if len(value) > limits.max_acks_per_frame:
        raise FrameTooLarge(f"more than {limits.max_acks_per_frame} acks in one object")
    return tuple(_check_jti(item, "ack entry", limits) for item in value)


def parse_set_errs(value: object, limits: FrameLimits) -> dict[str, SetErr]:
    """Check a ``setErrs`` member: jti -> ``{"err", "description"}`` (PP-6).

    ``description`` is REQUIRED by push-pull but OPTIONAL in multi-push: accept its
    absence (decision 8). Unknown ``err`` codes are kept verbatim (PP pitfall 11).
    """
    if not isinstance(value, dict):
        raise MalformedFrame("setErrs must be an object mapping jti to an error")
    if len(value) > limits.max_acks_per_frame:
        raise FrameTooLarge(f"more than {limits.max_acks_per_frame} setErrs in one object")
    errs: dict[str, SetErr] = {}
    for key, entry in value.items():
        jti = _check_jti(key, "setErrs key", limits)
        if not isinstance(entry, dict):
            raise MalformedFrame("setErrs entry must be an object with err")
        err = _check_string(entry.get("err"), "setErrs err", limits)
        if not err:
            raise MalformedFrame("setErrs err must not be empty")
        description = entry.get("description", "")
        errs[jti] = SetErr(err, _check_string(description, "setErrs description", limits))
    return errs


def parse_max_events(value: object, name: str) -> int:
    """A non-negative integer count (PP pitfall 8, POLL ``maxEvents``)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MalformedFrame(f"{name} must be a non-negative integer")
    if isinstance(value, float) and not value.is_integer():
        raise MalformedFrame(f"{name} must be a non-negative integer")
    if value < 0:
        raise MalformedFrame(f"{name} must be a non-negative integer")
    return int(value)


def parse_object(data: bytes | str, limits: FrameLimits) -> dict[str, Any]:
    """Parse a body that must be a JSON object, within ``limits``."""
    value = loads_strict(data, max_bytes=limits.max_frame_bytes, max_depth=limits.max_depth)
    if not isinstance(value, dict):
        raise MalformedFrame("body must be a JSON object")
    return value


@dataclasses.dataclass(frozen=True, slots=True)
class CommunicationObject:
    """One push-pull message, in either direction (push-pull §5).

    Attributes:
        sets: jti -> compact SET, well-shaped entries only.
        ack: jtis of SETs the sender accepted.
        set_errs: jti -> error for SETs the sender could not process.
        max_response_events: ``maxResponseEvents`` of an HTTP request (PP-9), or None.
        rejected: ``sets`` entries refused while parsing (not a string, too large,
            not compact JWS): the receiver answers each in ``setErrs``.
    """

    sets: Mapping[str, str] = dataclasses.field(default_factory=dict)
    ack: Sequence[str] = ()
    set_errs: Mapping[str, SetErr] = dataclasses.field(default_factory=dict)
    max_response_events: int | None = None
    rejected: Mapping[str, SetErr] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.ack, tuple):
            object.__setattr__(self, "ack", tuple(self.ack))

    @classmethod
    def parse(cls, data: bytes | str, *, limits: FrameLimits) -> Self:
        """Parse a request body, response body or WebSocket message.

        Unknown members are ignored (PP pitfall 14); that includes ``acks``, the
        spelling of push-pull -03's conformance text, which no message format uses
        (decision 2).

        Raises:
            FrameTooLarge: over a size or count limit.
            MalformedFrame: anything else wrong with the object as a whole.
        """
        obj = parse_object(data, limits)
        sets: dict[str, str] = {}
        rejected: dict[str, SetErr] = {}
        ack: tuple[str, ...] = ()
        set_errs: dict[str, SetErr] = {}
        max_response_events = None
        if "sets" in obj:
            sets, rejected = parse_sets(obj["sets"], limits)
        if "ack" in obj:
            ack = parse_ack(obj["ack"], limits)
        if "setErrs" in obj:
            set_errs = parse_set_errs(obj["setErrs"], limits)
        if len(ack) + len(set_errs) > limits.max_acks_per_frame:
            raise FrameTooLarge(f"more than {limits.max_acks_per_frame} acks in one object")
        if "maxResponseEvents" in obj:
            max_response_events = parse_max_events(obj["maxResponseEvents"], "maxResponseEvents")
        return cls(
            sets=sets,
            ack=ack,
            set_errs=set_errs,
            max_response_events=max_response_events,
            rejected=rejected,
        )

    def to_json(self) -> dict[str, Any]:
        """The wire form; empty members are omitted (PP-4, PP-5)."""
        obj: dict[str, Any] = {}
        if self.sets:
            obj["sets"] = dict(self.sets)
        if self.ack:
            obj["ack"] = list(self.ack)
        if self.set_errs:
            obj["setErrs"] = {jti: e.to_json() for jti, e in self.set_errs.items()}
        if self.max_response_events is not None:
            obj["maxResponseEvents"] = self.max_response_events
        return obj

    def serialize(self) -> bytes:
        """UTF-8 JSON, ready for a text frame or an ``application/json`` body."""
        return dumps(self.to_json())

    def __bool__(self) -> bool:
        return bool(self.sets or self.ack or self.set_errs)
