"""The Ledger's clock: wake at its next deadline (retries due, answers overdue)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import anyio

from ..protocol.effects import Effect
from ..protocol.ledger import Ledger
from ..signal import Signal

__all__ = ["keep_time"]


async def keep_time(
    ledger: Ledger,
    moved: Signal,
    apply: Callable[[list[Effect]], None],
    wake: Callable[[], None],
) -> None:
    """Tick ``ledger`` at each deadline until cancelled.

    Args:
        ledger: the partner's Ledger.
        moved: set when the next deadline may have moved (sleep again).
        apply: takes the Ledger's effects (SETs that failed for good).
        wake: called after a tick (SETs may be due, room may have freed).
    """
    while True:
        woken = moved.snapshot()
        deadline = ledger.next_deadline()
        delay = math.inf if deadline is None else max(0.0, deadline - time.time())
        with anyio.move_on_after(delay):
            await woken.wait()
        now = time.time()
        if deadline is not None and now >= deadline:
            ledger.tick(now=now)
            apply(ledger.effects())
            wake()
