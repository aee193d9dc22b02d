"""A partner whose WebSocket sessions keep ending for bad data waits before the next.

A malformed or oversized frame closes its session (1007/1009): nothing in it is
taken. But a partner may reconnect at once and send the next one, and each round
costs us an upgrade (handshake, authentication, a session opened and closed) and the
reading of a frame of up to ``max_frame_bytes``: a few milliseconds of the event
loop, which no turn of the fair share covers. So such closes are budgeted per
partner, like its SET rate: 100 at once, then 10 a second (a token bucket). Over the
budget, the partner's next upgrade waits until it is back within: held if that comes
within a second, else held a second and refused 429 with ``Retry-After``. A partner
that never sends a bad frame never waits; one that does is held to ~5 % of a core.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

from ..errors import Overloaded

__all__ = ["SessionBrake"]


class SessionBrake:
    """One partner's budget of WebSocket sessions closed for bad data.

    Args:
        burst: closes taken at once before any upgrade waits.
        rate: closes per second over time.
        hold: seconds an upgrade may be held; a longer wait is refused (429).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(
        self,
        *,
        burst: float = 100.0,
        rate: float = 10.0,
        hold: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.rate = rate
        self.hold = hold
        self.refusals = 0  # sessions closed for bad data, in all
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def refused(self) -> float:
        """A session of the partner was closed for bad data; the wait now due."""
        self.refusals += 1
        self._refill()
        self._tokens -= 1
        return self.wait

    @property
    def wait(self) -> float:
        """Seconds until the partner's next session may start; 0 when it may now."""
        self._refill()
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    async def admit(self) -> None:
        """Hold an upgrade while the partner is over its budget, :attr:`hold` seconds
        at most.

        Raises:
            Overloaded: the wait outlasts the hold (429, ``Retry-After`` its rest).
        """
        wait = self.wait
        if wait <= 0:
            return
        await anyio.sleep(min(wait, self.hold))
        wait = self.wait
        if wait > 0.001:  # not a timer's rounding
            raise Overloaded(
                f"too many sessions closed for bad data ({self.refusals}): try again later",
                retry_after=wait,
            )
