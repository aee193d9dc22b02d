"""The outbound jtis the Ledger finished lately, so that none is sent again (PP-25, MP-9).

A SET acked, refused or failed may still sit in the store for a moment, or come back
from a slow reload: remembering recent jtis refuses it at ``enqueue``. The memory is
bounded, oldest forgotten first; the store's unique key is the durable guard.
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["FINISHED_MEMORY", "Finished"]

# 100k jtis of ~40 bytes is a few MiB.
FINISHED_MEMORY = 100_000


class Finished:
    """The last ``size`` finished jtis (0: none)."""

    __slots__ = ("_jtis", "_size")

    def __init__(self, size: int) -> None:
        self._jtis: OrderedDict[str, None] = OrderedDict()
        self._size = size

    def __contains__(self, jti: str) -> bool:
        return jti in self._jtis

    def add(self, jti: str) -> None:
        if self._size:
            self._jtis[jti] = None
            if len(self._jtis) > self._size:
                self._jtis.popitem(last=False)
