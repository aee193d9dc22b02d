"""Whether a partner's next SETs may come in: its rate, its inbox backlog, and the
answers it leaves unread.

A partner that never reads our answers would otherwise make us keep one per SET it
sends, refused or not, in memory and in the store. So once ``max_owed`` answers are
owed (those of SETs still being verified included), its SETs wait on a WebSocket
(TCP holds it back) or get 429 over HTTP, until answers are delivered.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from ..signal import Signal
from .partner_limits import PartnerGuard

__all__ = ["Admission"]


class Admission:
    """One partner's gate for inbound SETs.

    Args:
        guard: the partner's rate and backlog limits.
        owed: how many answers the Ledger owes the partner now.
        max_owed: answers owed at most before its SETs wait (or get 429).
    """

    def __init__(self, guard: PartnerGuard, owed: Callable[[], int], max_owed: int) -> None:
        self.guard = guard
        self.max_owed = max_owed
        self.answering = 0  # SETs being verified and stored: their answers come next
        self.paid = Signal()  # answers we owed were delivered
        self._owed = owed

    @property
    def owes_too_much(self) -> bool:
        """``max_owed`` answers are owed, counting those of SETs admitted already."""
        return self._owed() + self.answering + self.guard.prepaid >= self.max_owed

    async def admit(self, count: int) -> None:
        """A reader is about to hand in a frame of ``count`` SETs: wait while the
        partner is over its rate or leaves too many answers unread; refuse over the
        backlog.

        Raises:
            Overloaded: the partner's inbox backlog is full.
        """
        guard = self.guard
        wait = guard.rate_wait()
        while wait > 0:
            await anyio.sleep(wait)
            wait = guard.rate_wait()
        if guard.inbox_full:
            guard.check_inbound()
        while self.owes_too_much:
            await self.paid.wait()
        guard.prepay(count)

    def check(self) -> None:
        """Refuse SETs (Overloaded) while the partner is over its rate or backlog, or
        leaves ``max_owed`` answers unread."""
        self.guard.check_inbound(owes_too_much=self.owes_too_much)
