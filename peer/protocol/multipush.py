"""Multi-SET push (draft-deshpande-secevent-http-multi-set-push-02).

A batch of SETs in one POST; the recipient answers 202 with ``ack`` and ``setErrs``
for SETs of this or earlier requests (MP-18). 200 (multi-push-00) is accepted from
partners; we answer 202 (decision 4).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Self

from ..errors import MalformedFrame
from .communication import SetErr, parse_ack, parse_object, parse_set_errs, parse_sets
from .jsonio import dumps
from .limits import FrameLimits
from .media import JSON, SECEVENTS_JSON, media_type

__all__ = [
    "REQUEST_MEDIA_TYPES",
    "MultiPushRequest",
    "MultiPushResponse",
    "is_multipush_media_type",
]

# -02 sends application/json; the Oct 2026 editor's copy application/secevents+json.
REQUEST_MEDIA_TYPES = frozenset({JSON, SECEVENTS_JSON})


def is_multipush_media_type(content_type: str | None) -> bool:
    """True for a Content-Type a multi-push request may carry (decision 5)."""
    return media_type(content_type) in REQUEST_MEDIA_TYPES


@dataclasses.dataclass(frozen=True, slots=True)
class MultiPushRequest:
    """A batch of SETs (MP-11); ``sets`` may be empty to collect owed acks (MP-3).

    Attributes:
        sets: jti -> SET, well-shaped entries.
        rejected: entries refused while parsing, answered in ``setErrs`` (decision 10).
    """

    sets: Mapping[str, str] = dataclasses.field(default_factory=dict)
    rejected: Mapping[str, SetErr] = dataclasses.field(default_factory=dict)

    @classmethod
    def parse(cls, data: bytes | str, *, limits: FrameLimits) -> Self:
        """Parse a request body; ``sets`` is REQUIRED (MP-11).

        Raises:
            FrameTooLarge: over the byte limit or ``max_sets_per_frame`` (MP-22: 413).
            MalformedFrame: anything else (MP-17: 400 ``invalid_request``).
        """
        obj = parse_object(data, limits)
        if "sets" not in obj:
            raise MalformedFrame("multi-push request must have a sets member")
        sets, rejected = parse_sets(obj["sets"], limits)
        return cls(sets, rejected)

    def serialize(self) -> bytes:
        """UTF-8 JSON body; ``sets`` is always present."""
        return dumps({"sets": dict(self.sets)})


@dataclasses.dataclass(frozen=True, slots=True)
class MultiPushResponse:
    """The recipient's 202 body (MP-14): ``ack`` always, ``setErrs`` when any."""

    ack: Sequence[str] = ()
    set_errs: Mapping[str, SetErr] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.ack, tuple):
            object.__setattr__(self, "ack", tuple(self.ack))

    @classmethod
    def parse(cls, data: bytes | str, *, limits: FrameLimits) -> Self:
        """Parse a success body; a missing ``ack`` reads as ``[]`` (multi-push-00)."""
        obj = parse_object(data, limits)
        ack = parse_ack(obj["ack"], limits) if "ack" in obj else ()
        set_errs = parse_set_errs(obj["setErrs"], limits) if "setErrs" in obj else {}
        return cls(ack, set_errs)

    def to_json(self) -> dict[str, Any]:
        """The wire form (MP-14: ``ack`` REQUIRED even when empty)."""
        obj: dict[str, Any] = {"ack": list(self.ack)}
        if self.set_errs:
            obj["setErrs"] = {jti: e.to_json() for jti, e in self.set_errs.items()}
        return obj

    def serialize(self) -> bytes:
        """UTF-8 JSON body."""
        return dumps(self.to_json())

    @property
    def has_descriptions(self) -> bool:
        """MP-15: a response with any description needs ``Content-Language``."""
        return bool(self.set_errs)
