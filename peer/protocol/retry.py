"""Backoff schedule: jittered exponential, as a pure function of the attempt number."""

from __future__ import annotations

import dataclasses
import random

__all__ = ["RetryPolicy"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """``initial * multiplier**(attempt-1)``, capped at ``maximum``, with jitter.

    "Equal jitter": the delay is drawn from ``[d * (1 - jitter), d]``, so retries of
    many SETs (or many nodes reconnecting) spread out, yet never wait longer than
    the schedule says nor collapse to zero.

    Attributes:
        initial: delay before the first retry, seconds.
        maximum: cap on any delay, seconds.
        multiplier: growth per attempt.
        jitter: fraction of the delay that is random, 0..1.
    """

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if not (0 < self.initial <= self.maximum):
            raise ValueError("need 0 < initial <= maximum")
        if self.multiplier < 1 or not (0 <= self.jitter <= 1):
            raise ValueError("need multiplier >= 1 and 0 <= jitter <= 1")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
        exponent = min(max(attempt, 1) - 1, 64)  # 2**64 * initial is past any cap
        ceiling = min(self.maximum, self.initial * self.multiplier**exponent)
        return ceiling * (1 - self.jitter * rng.random())
