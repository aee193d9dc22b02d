"""The Ledger's queues: tracked SETs in a heap by a key, with lazy deletion.

A SET moves between queues often (due, in flight, waiting again) and ends early
(an ack long before its deadline). Rather than search a heap to remove it, each
entry records the SET's version when pushed; an entry whose SET has moved on since
is stale and skipped when it reaches the top. O(log n) per push and pop.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from .setstate import TrackedSet

__all__ = ["Queue"]

_Entry = tuple[float, int, str]  # (key, version, jti); stale when the version moved on


class Queue:
    """Tracked SETs ordered by a key (a time, or enqueue order), smallest first.

    Args:
        items: the Ledger's tracked SETs by jti: an entry is live while its jti is
            tracked at the version the entry recorded.
    """

    __slots__ = ("_entries", "_items")

    def __init__(self, items: Mapping[str, TrackedSet]) -> None:
        self._entries: list[_Entry] = []
        self._items = items

    def push(self, key: float, item: TrackedSet) -> None:
        entries = self._entries
        heapq.heappush(entries, (key, item.version, item.jti))
        # Stale entries pile up (a SET acked long before its deadline leaves one):
        # rebuild once they outnumber the live ones, which keeps pushes O(log n)
        # amortised and memory bounded by the number of tracked SETs.
        if len(entries) > 2 * len(self._items) + 64:
            entries[:] = [entry for entry in entries if self._live(entry)]
            heapq.heapify(entries)

    def first_key(self) -> float | None:
        """The smallest key of a live entry; None when there is none."""
        item = self.first()
        return None if item is None else self._entries[0][0]

    def first(self) -> TrackedSet | None:
        """The SET with the smallest key, left in place; None when there is none.

        Stale entries on top are dropped on the way.
        """
        entries, items = self._entries, self._items
        while entries:
            _, version, jti = entries[0]
            item = items.get(jti)
            if item is not None and item.version == version:
                return item
            heapq.heappop(entries)
        return None

    def pop(self, until: float | None = None) -> TrackedSet | None:
        """The SET with the smallest key if that key is <= ``until`` (None: any), removed."""
        item = self.first()
        if item is None or (until is not None and self._entries[0][0] > until):
            return None
        heapq.heappop(self._entries)
        return item

    def drop_first(self) -> None:
        """Remove the entry :meth:`first` returned."""
        heapq.heappop(self._entries)

    def __len__(self) -> int:
        """Entries held, stale ones included."""
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def _live(self, entry: _Entry) -> bool:
        item = self._items.get(entry[2])
        return item is not None and item.version == entry[1]
