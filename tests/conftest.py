"""Shared fixtures: the anyio backend (asyncio, like the node) and the time unit."""

from __future__ import annotations

import os

import pytest

# Every wait in the suite is a multiple of MS, so a slow CI can scale them all.
MS = 0.001 * float(os.environ.get("SETPEER_TEST_TIMEOUT_FACTOR", "1"))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
