"""The backoff schedule (PP-24, MP-8: retry after a reasonable time, with backoff).

The same policy spaces SET retries (PP-21, MP-21) and reconnects.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
from hypothesis import given, strategies as st

from peer.protocol.retry import RetryPolicy

policies = st.builds(
    lambda initial, factor, multiplier, jitter: RetryPolicy(
        initial=initial, maximum=initial * factor, multiplier=multiplier, jitter=jitter
    ),
    initial=st.floats(min_value=1e-3, max_value=100),
    factor=st.floats(min_value=1, max_value=1e4),
    multiplier=st.floats(min_value=1, max_value=1e12),
    jitter=st.floats(min_value=0, max_value=1),
)


class TestCeiling:
    """PP-24: the un-jittered schedule grows exponentially up to the cap."""

    @pytest.mark.parametrize(
        ("initial", "maximum", "multiplier", "attempts", "expected"),
        [
            (1.0, 30.0, 2.0, range(1, 8), [1, 2, 4, 8, 16, 30, 30]),
            (0.5, 10.0, 3.0, range(1, 5), [0.5, 1.5, 4.5, 10]),
            (2.0, 2.0, 2.0, range(1, 4), [2, 2, 2]),  # initial == maximum: constant
            (1.0, 60.0, 1.0, range(1, 4), [1, 1, 1]),  # multiplier 1: constant
            (1.0, 8.0, 2.0, [0, -3, 1], [1, 1, 1]),  # below 1 counts as the first retry
            (1.0, 5.0, 1e10, [2, 100, 10**9], [5, 5, 5]),  # no float overflow
        ],
    )
    def test_table(
        self,
        initial: float,
        maximum: float,
        multiplier: float,
        attempts: range | list[int],
        expected: list[float],
    ) -> None:
        policy = RetryPolicy(initial=initial, maximum=maximum, multiplier=multiplier, jitter=0)
        rng = random.Random(0)
        assert [policy.ceiling(n) for n in attempts] == pytest.approx(expected)
        assert [policy.delay(n, rng) for n in attempts] == pytest.approx(expected)


class TestJitter:
    """PP-24, MP-8: jittered delays stay within bounds and spread out."""

    @given(policy=policies, attempt=st.integers(min_value=-5, max_value=10**6), seed=st.integers())
    def test_bounded(self, policy: RetryPolicy, attempt: int, seed: int) -> None:
        """Every delay lies in [ceiling * (1 - jitter), ceiling] and within [0, maximum]."""
        delay = policy.delay(attempt, random.Random(seed))
        ceiling = policy.ceiling(attempt)
        assert 0 <= ceiling * (1 - policy.jitter) * (1 - 1e-12) <= delay <= ceiling
        assert delay <= policy.maximum and math.isfinite(delay)

    @given(policy=policies, attempt=st.integers(min_value=1, max_value=200), seed=st.integers())
    def test_monotone_for_one_draw(self, policy: RetryPolicy, attempt: int, seed: int) -> None:
        """With the same random draw, a later retry never waits less (so neither on average)."""
        first = policy.delay(attempt, random.Random(seed))
        assert first <= policy.delay(attempt + 1, random.Random(seed))

    def test_mean_grows_with_attempts(self) -> None:
        """The expected delay is ceiling * (1 - jitter / 2), increasing until the cap."""
        policy = RetryPolicy(initial=1.0, maximum=100.0, jitter=0.5)
        rng = random.Random(3)
        means = [sum(policy.delay(n, rng) for _ in range(2000)) / 2000 for n in range(1, 9)]
        for n, mean in enumerate(means, start=1):
            assert mean == pytest.approx(policy.ceiling(n) * 0.75, rel=0.03)
        assert means == sorted(means)

    def test_jitter_spreads_retries(self) -> None:
        policy = RetryPolicy(initial=1.0, maximum=10.0)
        rng = random.Random(7)
        assert len({policy.delay(3, rng) for _ in range(20)}) == 20

    def test_full_jitter_never_negative(self) -> None:
        policy = RetryPolicy(initial=1.0, maximum=4.0, jitter=1.0)
        rng = random.Random(11)
        delays = [policy.delay(5, rng) for _ in range(500)]
        assert min(delays) >= 0 and max(delays) <= 4.0 and min(delays) < 0.1

    def test_seeded_schedule_is_reproducible(self) -> None:
        """An injected seeded rng makes the schedule deterministic (tests, replays)."""
        policy = RetryPolicy(initial=0.5, maximum=60.0)
        first = list(itertools.islice(policy.delays(random.Random(42)), 12))
        assert first == list(itertools.islice(policy.delays(random.Random(42)), 12))
        rng = random.Random(42)
        assert first == [policy.delay(n, rng) for n in range(1, 13)]
        assert first != list(itertools.islice(policy.delays(random.Random(43)), 12))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial": 0, "maximum": 1},
        {"initial": -1, "maximum": 1},
        {"initial": 2, "maximum": 1},
        {"initial": 1, "maximum": 2, "multiplier": 0.5},
        {"initial": 1, "maximum": 2, "jitter": 2},
        {"initial": 1, "maximum": 2, "jitter": -0.1},
        {"initial": math.nan, "maximum": 1},
        {"initial": 1, "maximum": math.inf},
        {"initial": 1, "maximum": 2, "multiplier": math.nan},
        {"initial": 1, "maximum": 2, "multiplier": math.inf},
    ],
)
def test_invalid_policies(kwargs: dict[str, float]) -> None:
    """A policy that could produce a negative, infinite or NaN delay is refused."""
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)
