"""Turns at the node's CPU-heavy work, shared fairly between partners.

Verifying a partner's SETs (a signature check each) and parsing its large frames are
the work a partner can make us do at will, within its rate limit. Without a turn
system, one partner's flood fills the event loop's ready queue and the worker threads,
and every other partner's frame waits behind all of it. Here the node has ``slots``
turns (one per core): a turn is taken before such work and given back after; when all
are taken, waiting partners are served round-robin, each partner's own work in order.
A partner alone may use every turn, so throughput is unchanged while nobody competes.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque

import anyio

__all__ = ["FairShare"]


class FairShare:
    """Round-robin turns at CPU-heavy work, one queue per partner.

    Args:
        slots: turns held at once; default, the number of CPUs (at least 2).
    """

    def __init__(self, slots: int | None = None) -> None:
        self.slots = max(2, os.cpu_count() or 2) if slots is None else max(1, slots)
        self._busy = 0
        # Partners with work waiting, in the order they get the next free turn.
        self._waiting: OrderedDict[str, deque[anyio.Event]] = OrderedDict()

    @property
    def busy(self) -> int:
        """Turns held now."""
        return self._busy

    @property
    def waiting(self) -> int:
        """Requests for a turn not granted yet."""
        return sum(len(queue) for queue in self._waiting.values())

    async def acquire(self, partner: str) -> None:
        """Wait for a turn for ``partner``'s work; give it back with :meth:`release`."""
        if self._busy < self.slots and not self._waiting:
            self._busy += 1
            return
        granted = anyio.Event()
        queue = self._waiting.setdefault(partner, deque())
        queue.append(granted)
        try:
            await granted.wait()
        except BaseException:
            if granted.is_set():
                self.release()  # granted as we were cancelled: pass the turn on
            else:
                queue.remove(granted)
                if not queue and self._waiting.get(partner) is queue:
                    del self._waiting[partner]
            raise

    def release(self) -> None:
        """Give a turn back: the next waiting partner, in round-robin order, gets it."""
        if not self._waiting:
            self._busy -= 1
            return
        partner, queue = next(iter(self._waiting.items()))
        granted = queue.popleft()
        del self._waiting[partner]
        if queue:
            self._waiting[partner] = queue  # to the back of the line
        granted.set()  # the turn passes on: _busy is unchanged
