"""One partner's inbound limits: concurrent sessions, SET rate, inbox backlog.

Over a limit the partner gets :class:`~peer.errors.Overloaded` (429 with
``Retry-After``, or close 1013): nothing in the refused request is stored or
acknowledged, so nothing is lost. The server takes and gives back session slots
(one per WebSocket, or per HTTP request while it is served); the Link charges the
rate and counts the backlog (SETs stored but not yet ``done()``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from ..config import Limits
from ..errors import Overloaded
from ..store.base import Store

__all__ = ["PartnerGuard", "count_backlogs"]


class PartnerGuard:
    """One partner's sessions, inbound rate and inbox backlog.

    Args:
        limits: the partner's limits (``max_sessions``, ``max_inbound_sets_per_second``,
            ``max_pending``).
        clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, limits: Limits, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_sessions = limits.max_sessions
        self.rate = float(limits.max_inbound_sets_per_second)
        self.max_pending = limits.max_pending
        self.sessions = 0
        self.backlog = 0  # stored inbound SETs the application has not marked done
        self._clock = clock
        self._tokens = self.rate  # a second's worth of burst
        self._stamp = clock()
        self._prepaid = 0  # SETs charged by a reader before the Link saw them

    # -- sessions ------------------------------------------------------------------

    def open_session(self) -> None:
        """Take a session slot (a WebSocket, or an HTTP request while it is served).

        Raises:
            Overloaded: the partner holds ``max_sessions`` already.
        """
        if self.sessions >= self.max_sessions:
            raise Overloaded(f"more than {self.max_sessions} concurrent sessions")
        self.sessions += 1

    def close_session(self) -> None:
        """Give a slot back."""
        self.sessions = max(0, self.sessions - 1)

    # -- inbound SETs --------------------------------------------------------------

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def received(self, count: int) -> None:
        """``count`` SETs arrived (valid or not: each costs a verification)."""
        prepaid = min(self._prepaid, count)
        self._prepaid -= prepaid
        self._refill()
        self._tokens -= count - prepaid

    def prepay(self, count: int) -> None:
        """Charge ``count`` SETs now that :meth:`received` will be told of later.

        A WebSocket reader hands frames to tasks that reach the Link only after it has
        read the next frames; charging as it reads keeps its pause accurate.
        """
        self._refill()
        self._tokens -= count
        self._prepaid += count

    @property
    def prepaid(self) -> int:
        """SETs charged by a reader that the Link has not taken in yet."""
        return self._prepaid

    def rate_wait(self) -> float:
        """Seconds until the partner may send again; 0 when it may now."""
        self._refill()
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def stored(self, count: int) -> None:
        """``count`` new SETs went into the inbox."""
        self.backlog += count

    def handled(self, count: int = 1) -> None:
        """The application marked ``count`` SETs done."""
        self.backlog = max(0, self.backlog - count)

    @property
    def inbox_full(self) -> bool:
        """The partner's SETs fill ``max_pending`` inbox rows not yet handled."""
        return self.backlog >= self.max_pending

    def check_inbound(self, *, owes_too_much: bool = False) -> None:
        """Refuse more SETs while the partner is over its rate or its backlog, or
        (``owes_too_much``) does not read the answers we owe it.

        Raises:
            Overloaded: with the ``retry_after`` the partner should honour.
        """
        if self.inbox_full:
            # The application drains at its own pace; a few seconds is a fair guess.
            raise Overloaded(
                f"inbox holds {self.backlog} unhandled SETs (max_pending): try again later",
                retry_after=5.0,
            )
        if owes_too_much:
            raise Overloaded("the answers owed to you are not read: read them first")
        wait = self.rate_wait()
        if wait > 0:
            raise Overloaded(
                f"more than {self.rate:.0f} SETs per second: try again later", retry_after=wait
            )


async def count_backlogs(store: Store, guards: Mapping[str, PartnerGuard]) -> None:
    """Seed each partner's inbox backlog from the store (SETs not yet done): its
    ``unhandled`` count, kept beside the rows (no scan)."""
    for partner, counts in (await store.stats()).items():
        guard = guards.get(partner)
        if guard is not None:
            guard.stored(counts.unhandled)
