"""Shared fixtures: the anyio backend (asyncio, like the node); the time unit.

``MS`` and ``seconds`` come from :mod:`tests.timing`, the one place that reads
``SETPEER_TEST_TIMEOUT_FACTOR``: every wait in the suite goes through them, and so
does pytest-timeout's limit per test (``timeout`` in pyproject.toml, scaled here).
"""

from __future__ import annotations

import pytest

from tests.timing import FACTOR, MS, seconds

__all__ = ["FACTOR", "MS", "seconds"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Scale pytest-timeout's per-test limit by the factor, as every other wait."""
    if FACTOR == 1 or config.getoption("timeout", None) is not None:
        return
    limit = float(config.getini("timeout") or 0)
    if limit > 0:
        for item in items:
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(seconds(limit)))
