"""The backoff schedule (PP-24, MP-8: retry after a reasonable time, with backoff)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, strategies as st

from peer.protocol.retry import RetryPolicy


def test_grows_exponentially_until_the_cap() -> None:
    policy = RetryPolicy(initial=1.0, maximum=30.0, jitter=0.0)
    rng = random.Random(1)
    assert [policy.delay(n, rng) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


@given(attempt=st.integers(min_value=-5, max_value=10_000), seed=st.integers())
def test_bounded_and_jittered(attempt: int, seed: int) -> None:
    """Delays stay within [ceiling * (1 - jitter), ceiling], never negative, never past max."""
    policy = RetryPolicy(initial=0.5, maximum=60.0, jitter=0.2)
    delay = policy.delay(attempt, random.Random(seed))
    ceiling = min(60.0, 0.5 * 2.0 ** (max(attempt, 1) - 1)) if attempt < 200 else 60.0
    assert ceiling * 0.8 <= delay <= ceiling


def test_jitter_spreads_retries() -> None:
    policy = RetryPolicy(initial=1.0, maximum=10.0)
    rng = random.Random(7)
    assert len({policy.delay(3, rng) for _ in range(20)}) > 10


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0, "maximum": 1},
        {"initial": 2, "maximum": 1},
        {"initial": 1, "maximum": 2, "multiplier": 0.5},
        {"initial": 1, "maximum": 2, "jitter": 2},
    ],
)
def test_invalid_policies(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
