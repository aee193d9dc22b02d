"""One timing factor for every wait in the tests: ``SETPEER_TEST_TIMEOUT_FACTOR``.

Every deadline, timeout and polling pause of the suite is written in ``MS`` units or
through :func:`seconds`, so a slow or shared machine scales them all at once
(``SETPEER_TEST_TIMEOUT_FACTOR=3 scripts/test``). Protocol timings a node is configured
with (``ack_timeout``, ``idle_timeout``, lease TTLs, ...) are not scaled: tests assert
on them; a wait measured in those timings is written as a multiple of them.
"""

from __future__ import annotations

import os

__all__ = ["FACTOR", "MS", "seconds"]

FACTOR = float(os.environ.get("SETPEER_TEST_TIMEOUT_FACTOR", "1"))
"""How much longer than on a quiet machine every wait of the suite may take."""

MS = 0.001 * FACTOR
"""One millisecond of waiting, scaled."""


def seconds(n: float) -> float:
    """``n`` seconds of waiting, scaled by :data:`FACTOR`."""
    return n * FACTOR
