"""A level-free wake-up: many tasks wait, one ``set()`` wakes them all, then it re-arms."""

from __future__ import annotations

import anyio

__all__ = ["Signal"]


class Signal:
    """Wake every waiter at once; later waiters wait for the next ``set()``.

    To avoid a lost wake-up, take :meth:`snapshot` *before* checking for work and
    wait on it afterwards: a ``set()`` in between has already fired that event.
    """

    __slots__ = ("_event",)

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        """Wake all current waiters."""
        event, self._event = self._event, anyio.Event()
        event.set()

    def snapshot(self) -> anyio.Event:
        """The event the next ``set()`` fires."""
        return self._event

    async def wait(self) -> None:
        """Wait for the next ``set()``."""
        await self._event.wait()
