"""Backoff schedule: jittered exponential, as a pure function of the attempt number.

One policy serves two purposes: the wait before a SET is sent again after its
answer did not come (PP-24, MP-8, MP-21), and the wait before a Link dials its
partner again after a failed session (``reconnect_initial`` up to ``reconnect_max``).
Randomness comes from an injected ``random.Random``, so a seeded generator gives a
reproducible schedule.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator

__all__ = ["RetryPolicy"]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """``initial * multiplier**(attempt-1)``, capped at ``maximum``, with jitter.

    Jitter is "equal jitter" generalised by a fraction: the delay is drawn uniformly
    from ``[c * (1 - jitter), c]`` where ``c`` is the capped exponential ceiling.
    ``jitter=0.5`` is AWS's "equal jitter", ``jitter=1`` its "full jitter". A fraction
    rather than full jitter by default because retries then spread out (many SETs
    timing out together, many nodes redialling after an outage) yet never collapse
    to an immediate retry nor exceed the schedule. The expected delay,
    ``c * (1 - jitter/2)``, grows with the attempt number until the cap; for one
    random draw the delay is monotone in the attempt number too.

    Attributes:
        initial: ceiling of the first retry's delay, seconds (> 0).
        maximum: cap on any delay, seconds (>= initial).
        multiplier: growth of the ceiling per attempt (>= 1).
        jitter: fraction of the delay that is random, 0..1.
    """

    initial: float
    maximum: float
    multiplier: float = 2.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        values = (self.initial, self.maximum, self.multiplier, self.jitter)
        if not all(math.isfinite(value) for value in values):
            raise ValueError("retry policy values must be finite numbers")
        if not (0 < self.initial <= self.maximum):
            raise ValueError("need 0 < initial <= maximum")
        if self.multiplier < 1:
            raise ValueError("need multiplier >= 1")
        if not (0 <= self.jitter <= 1):
            raise ValueError("need 0 <= jitter <= 1")

    def ceiling(self, attempt: int) -> float:
        """The delay before retry number ``attempt`` without jitter (its upper bound).

        Args:
            attempt: 1 for the first retry; values below 1 count as 1.

        Returns:
            ``min(maximum, initial * multiplier**(attempt - 1))``.
        """
        exponent = max(attempt, 1) - 1
        if self.multiplier == 1 or exponent == 0:
            return self.initial
        # Compare in log space: multiplier**exponent overflows a float long before
        # an attempt counter gets large (1e10**64 raises OverflowError).
        if exponent * math.log(self.multiplier) >= math.log(self.maximum / self.initial):
            return self.maximum
        return min(self.maximum, self.initial * self.multiplier**exponent)

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry).

        Args:
            attempt: how many tries have failed so far; values below 1 count as 1.
            rng: the source of jitter (seed it for reproducible schedules).

        Returns:
            A delay in ``[ceiling * (1 - jitter), ceiling]``: never negative, never
            above ``maximum``.
        """
        return self.ceiling(attempt) * (1 - self.jitter * rng.random())

    def delays(self, rng: random.Random) -> Iterator[float]:
        """The schedule as an endless generator: delay 1, delay 2, ...

        Args:
            rng: the source of jitter.

        Yields:
            ``delay(1, rng)``, ``delay(2, rng)``, and so on.
        """
        attempt = 1
        while True:
            yield self.delay(attempt, rng)
            attempt += 1
