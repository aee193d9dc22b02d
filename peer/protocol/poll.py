"""RFC 8936 poll: the poll request (recipient -> transmitter) and its response."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Self

from ..errors import FrameTooLarge, MalformedFrame, ProtocolError
from .communication import (
    SetErr,
    parse_ack,
    parse_max_events,
    parse_object,
    parse_set_errs,
    parse_sets,
)
from .jsonio import dumps
from .limits import FrameLimits

__all__ = ["PollRequest", "PollResponse"]


@dataclasses.dataclass(frozen=True, slots=True)
class PollRequest:
    """A poll (RFC 8936 §2.2): acks and errors for earlier SETs, and a request for more.

    Attributes:
        max_events: most SETs to return; None = no limit; 0 = acknowledge only (POLL-9).
        return_immediately: False (the default) asks for a long poll (POLL-10).
        ack: jtis received and accepted (POLL-11).
        set_errs: jti -> error for SETs received but invalid (POLL-12).
        ack_member: the member ``ack`` goes out in: RFC 8936's ``ack``, or ``acks``
            for a transmitter on the older drafts (docs/dialects.md).
    """

    max_events: int | None = None
    return_immediately: bool = False
    ack: Sequence[str] = ()
    set_errs: Mapping[str, SetErr] = dataclasses.field(default_factory=dict)
    ack_member: str = "ack"

    def __post_init__(self) -> None:
        if not isinstance(self.ack, tuple):
            object.__setattr__(self, "ack", tuple(self.ack))

    @classmethod
    def parse(cls, data: bytes | str, *, limits: FrameLimits) -> Self:
        """Parse a poll request body (POLL-2); invalid members are a 400 (POLL-21).

        ``acks``, where pollers on the older drafts put their acknowledgements, is
        read as well as ``ack`` (both may come; a jti in both counts once). Other
        unknown members are ignored.
        """
        obj = parse_object(data, limits)
        max_events = None
        if "maxEvents" in obj:
            max_events = parse_max_events(obj["maxEvents"], "maxEvents")
        return_immediately = obj.get("returnImmediately", False)
        if not isinstance(return_immediately, bool):
            raise MalformedFrame("returnImmediately must be a boolean")
        ack = parse_ack(obj["ack"], limits) if "ack" in obj else ()
        if "acks" in obj:
            ack = _with_acks(ack, obj["acks"], limits)
        set_errs = parse_set_errs(obj["setErrs"], limits) if "setErrs" in obj else {}
        return cls(max_events, return_immediately, ack, set_errs)

    def to_json(self) -> dict[str, Any]:
        """The wire form; defaults are omitted except ``returnImmediately``."""
        obj: dict[str, Any] = {"returnImmediately": self.return_immediately}
        if self.max_events is not None:
            obj["maxEvents"] = self.max_events
        if self.ack:
            obj[self.ack_member] = list(self.ack)
        if self.set_errs:
            obj["setErrs"] = {jti: e.to_json() for jti, e in self.set_errs.items()}
        return obj

    def serialize(self) -> bytes:
        """UTF-8 JSON body."""
        return dumps(self.to_json())


def _with_acks(ack: tuple[str, ...], value: object, limits: FrameLimits) -> tuple[str, ...]:
    """``ack`` and the jtis of an ``acks`` member, each once, within the ack limit."""
    try:
        more = parse_ack(value, limits)
    except ProtocolError as exc:
        raise type(exc)(f"acks (read as ack): {exc.description}") from None
    merged = tuple(dict.fromkeys((*ack, *more))) if ack else more
    if len(merged) > limits.max_acks_per_frame:
        raise FrameTooLarge(f"more than {limits.max_acks_per_frame} acks in one object")
    return merged


@dataclasses.dataclass(frozen=True, slots=True)
class PollResponse:
    """The transmitter's answer (RFC 8936 §2.3).

    Attributes:
        sets: jti -> SET, first deliveries and redeliveries alike; ``{}`` when none
            (POLL-13: the member is always present on the wire).
        more_available: more unacknowledged SETs wait (POLL-14; absent means False).
        rejected: ``sets`` entries refused while parsing; the recipient answers them
            in ``setErrs`` of its next poll (POLL-19).
    """

    sets: Mapping[str, str] = dataclasses.field(default_factory=dict)
    more_available: bool = False
    rejected: Mapping[str, SetErr] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes | str, *, limits: FrameLimits) -> Self:
        """Parse a poll response; ``sets`` is required (POLL-13)."""
        obj = parse_object(data, limits)
        if "sets" not in obj:
            raise MalformedFrame("poll response must have a sets member")
        sets, rejected = parse_sets(obj["sets"], limits)
        more = obj.get("moreAvailable", False)
        if not isinstance(more, bool):
            raise MalformedFrame("moreAvailable must be a boolean")
        return cls(sets, more, rejected)

    def to_json(self) -> dict[str, Any]:
        """The wire form; ``moreAvailable`` only when true (POLL-14)."""
        obj: dict[str, Any] = {"sets": dict(self.sets)}
        if self.more_available:
            obj["moreAvailable"] = True
        return obj

    def serialize(self) -> bytes:
        """UTF-8 JSON body."""
        return dumps(self.to_json())
