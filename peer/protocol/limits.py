"""Size and shape limits applied to every inbound body or frame, before full parsing."""

from __future__ import annotations

import dataclasses

__all__ = ["FrameLimits"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class FrameLimits:
    """FrameLimits for parsing what a partner sends us.

    Every limit has a reason: a node must answer any input in bounded time and memory.

    Attributes:
        max_frame_bytes: a WebSocket message or HTTP body. 1 MiB holds ~1,300 typical
            SETs, far more than one batch needs, and bounds a parse at ~10 ms.
        max_set_bytes: one compact SET. 64 KiB is 80x a typical 750-byte SET.
        max_sets_per_frame: SETs in one object; also the multi-push batch limit (MP-22).
        max_acks_per_frame: jtis in ``ack`` plus entries in ``setErrs``.
        max_depth: JSON nesting. A Communication Object needs 3; 32 leaves room
            for unknown members without letting a 10,000-level body reach the parser.
        max_string_bytes: any other string (jti, err, description) after decoding.
    """

    max_frame_bytes: int = 1024 * 1024
    max_set_bytes: int = 64 * 1024
    max_sets_per_frame: int = 1000
    max_acks_per_frame: int = 10_000
    max_depth: int = 32
    max_string_bytes: int = 4096

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{field.name} must be a positive integer, got {value!r}")
