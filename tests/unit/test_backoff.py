"""Capped exponential backoff with jitter."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from trackwire.core.backoff import Backoff


def test_the_ceiling_doubles_with_each_attempt() -> None:
    backoff = Backoff(base=0.5, cap=1000.0)
    assert [backoff.ceiling(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]


def test_the_ceiling_never_exceeds_the_cap_even_for_huge_attempt_counts() -> None:
    backoff = Backoff(base=1.0, cap=300.0)
    assert backoff.ceiling(9) == 256.0
    assert backoff.ceiling(10) == 300.0
    assert backoff.ceiling(10_000) == 300.0


def test_attempt_zero_or_below_waits_like_the_first() -> None:
    backoff = Backoff(base=2.0, cap=60.0)
    assert backoff.ceiling(0) == backoff.ceiling(-3) == backoff.ceiling(1) == 2.0


def test_without_jitter_the_delay_is_the_ceiling() -> None:
    backoff = Backoff(base=1.0, cap=30.0, jitter=False)
    assert [backoff.delay(n) for n in (1, 2, 3, 6, 50)] == [1.0, 2.0, 4.0, 30.0, 30.0]


@settings(max_examples=300, deadline=None)
@given(
    base=st.floats(0.001, 100.0),
    cap=st.floats(0.001, 10_000.0),
    attempt=st.integers(-2, 500),
    seed=st.integers(0, 2**32),
)
def test_a_jittered_delay_stays_between_a_tenth_of_the_ceiling_and_the_ceiling(
    base: float, cap: float, attempt: int, seed: int
) -> None:
    backoff = Backoff(base=base, cap=cap)
    delay = backoff.delay(attempt, random.Random(seed))
    ceiling = backoff.ceiling(attempt)
    assert ceiling <= cap
    assert 0.1 * ceiling <= delay <= ceiling
    assert delay > 0


def test_jitter_spreads_delays_and_the_typical_delay_grows_exponentially() -> None:
    backoff = Backoff(base=1.0, cap=10_000.0)
    rng = random.Random(7)
    means = []
    for attempt in range(1, 9):
        draws = [backoff.delay(attempt, rng) for _ in range(400)]
        assert max(draws) - min(draws) > 0.5 * backoff.ceiling(attempt), "jitter spreads the delays"
        means.append(sum(draws) / len(draws))
    for earlier, later in itertools.pairwise(means):
        assert 1.6 < later / earlier < 2.5


def test_the_same_seed_gives_the_same_delays() -> None:
    backoff = Backoff()
    first = [backoff.delay(n, random.Random(3)) for n in range(1, 6)]
    second = [backoff.delay(n, random.Random(3)) for n in range(1, 6)]
    assert first == second
