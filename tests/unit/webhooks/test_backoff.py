from __future__ import annotations

import random
from datetime import timedelta

import pytest

from devicemint.webhooks.dispatcher import Backoff


def test_the_wait_doubles_from_the_base_up_to_the_cap() -> None:
    backoff = Backoff(base=timedelta(seconds=2), cap=timedelta(seconds=30), jitter=0)
    assert [backoff(n).total_seconds() for n in range(1, 8)] == [2, 4, 8, 16, 30, 30, 30]


def test_the_defaults_spread_eight_attempts_over_about_an_hour() -> None:
    backoff = Backoff(jitter=0)
    assert sum(backoff(n).total_seconds() for n in range(1, 8)) == 30 * (2**7 - 1)


def test_a_huge_attempt_count_stays_at_the_cap() -> None:
    assert Backoff(jitter=0)(10_000) == timedelta(hours=1)


def test_jitter_only_shortens_and_is_reproducible_with_a_seed() -> None:
    waits = [Backoff(jitter=0.5, rng=random.Random(7))(3) for _ in range(2)]
    assert waits[0] == waits[1]
    spread = Backoff(base=timedelta(seconds=10), jitter=0.5, rng=random.Random(1))
    samples = {spread(1).total_seconds() for _ in range(50)}
    assert all(5 <= s <= 10 for s in samples) and len(samples) > 1


@pytest.mark.parametrize("bad", [{"base": timedelta(0)}, {"factor": 0.5}, {"jitter": 1.0}, {"jitter": -0.1}])
def test_nonsense_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="backoff needs"):
        Backoff(**bad)  # type: ignore[arg-type]
