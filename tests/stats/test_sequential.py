"""CheckpointSchedule: the schedule itself, and coverage under early stopping (simulated, vectorized)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from simcert.errors import InputError
from simcert.stats import (
    CheckpointSchedule,
    SampleStats,
    clopper_pearson_lower,
    clopper_pearson_upper,
    empirical_bernstein_upper,
)

REPS = 20_000
DELTA = 0.1


def covers(miss: np.ndarray, delta: float = DELTA) -> bool:
    return int(miss.sum()) <= stats.binom.ppf(1 - 1e-6, miss.size, delta)


def test_schedule_shape_and_spending() -> None:
    s = CheckpointSchedule(0.05, first=10, growth=1.5)
    cps = s.checkpoints(100)
    assert cps == [10, 15, 23, 34, 51, 76]
    assert s.index_of(23) == 3 and s.index_of(24) is None
    assert s.next_checkpoint(23) == 34 and s.next_checkpoint(0) == 10
    assert sum(s.delta_at(j) for j in range(1, 60)) == pytest.approx(0.05)
    p = CheckpointSchedule(0.05, spending="p-series")
    assert p.delta_at(1) == pytest.approx(6 * 0.05 / math.pi**2)
    assert sum(p.delta_at(j) for j in range(1, 200_000)) < 0.05
    # A slow growth never repeats a checkpoint.
    slow = CheckpointSchedule(0.1, first=1, growth=1.05).checkpoints(50)
    assert slow == sorted(set(slow)) and slow[:3] == [1, 2, 3]


@pytest.mark.parametrize(
    "kwargs", [{"delta": 0.0}, {"delta": 1.0}, {"delta": 0.1, "growth": 1.0}, {"delta": 0.1, "first": 0},
               {"delta": 0.1, "spending": "linear"}]
)
def test_schedule_rejects_bad_options(kwargs: dict) -> None:
    with pytest.raises(InputError):
        CheckpointSchedule(**kwargs)


def test_bounds_only_at_checkpoints() -> None:
    s = CheckpointSchedule(0.1, first=100)
    assert s.upper_bound(2, 200) == pytest.approx(clopper_pearson_upper(2, 200, 0.1 / 4))
    with pytest.raises(InputError, match="not a checkpoint"):
        s.upper_bound(2, 150)
    assert s.decide(0, 150, 0.5) == "continue"
    assert s.decide(0, 100, 0.05) == "certified"        # CP(0, 100, 0.05) = 0.0295
    assert s.decide(40, 100, 0.05) == "refuted"
    assert s.decide(3, 100, 0.05) == "continue"
    assert not s.should_stop(3, 100, 0.05) and s.should_stop(40, 100, 0.05)


def test_anytime_coverage_over_all_checkpoints(rng: np.random.Generator) -> None:
    # The union-bound guarantee: with prob >= 1 - delta *every* checkpoint bound holds, so any stopping rule
    # is covered. Simulate REPS Bernoulli streams through 12 checkpoints (50 ... 102400 samples).
    p = 0.05
    s = CheckpointSchedule(DELTA, first=50)
    k, prev = np.zeros(REPS, dtype=np.int64), 0
    miss_any = np.zeros(REPS, dtype=bool)
    miss_naive = np.zeros(REPS, dtype=bool)
    for n in s.checkpoints(50 * 2**11):
        k += rng.binomial(n - prev, p, REPS)
        prev = n
        miss_any |= s.upper_bound(k, n) < p
        miss_naive |= clopper_pearson_upper(k, n, DELTA) < p    # wrong: full delta at every look
    assert covers(miss_any)
    assert not covers(miss_naive)


def test_early_stopping_rule_false_certifications(rng: np.random.Generator) -> None:
    # True rate just above the target: every "certified" is an error, and must happen at most delta often.
    p, target = 0.021, 0.02
    s = CheckpointSchedule(DELTA, first=100)
    k, prev = np.zeros(REPS, dtype=np.int64), 0
    running = np.ones(REPS, dtype=bool)
    certified = np.zeros(REPS, dtype=bool)
    reported = np.ones(REPS)
    for n in s.checkpoints(100 * 2**9):
        k += rng.binomial(n - prev, p, REPS)
        prev = n
        u = s.upper_bound(k, n)
        reported = np.where(running, u, reported)             # the bound read when the stream stops
        stop = running & (u <= target)
        certified |= stop
        running &= ~stop
    assert certified.any()                                    # the error event does occur ...
    assert covers(certified)                                  # ... but at most delta often
    assert covers(reported < p)

    # With the rate well below the target most streams certify early (the schedule has power).
    s2 = CheckpointSchedule(DELTA, first=100)
    k2 = rng.binomial(1600, 0.005, REPS)
    assert np.mean(s2.upper_bound(k2, 1600) <= target) > 0.9


def test_refutations_are_rare_when_the_rate_is_below_target(rng: np.random.Generator) -> None:
    # True rate exactly at the target: every "refuted" is an error (lower bounds, p-series spending).
    p, target = 0.02, 0.02
    s = CheckpointSchedule(DELTA, first=50, spending="p-series")
    k, prev = np.zeros(REPS, dtype=np.int64), 0
    refuted = np.zeros(REPS, dtype=bool)
    refuted_naive = np.zeros(REPS, dtype=bool)
    for n in s.checkpoints(50 * 2**8):
        k += rng.binomial(n - prev, p, REPS)
        prev = n
        refuted |= s.lower_bound(k, n) > target
        refuted_naive |= clopper_pearson_lower(k, n, DELTA) > target
    assert covers(refuted)
    assert not covers(refuted_naive)
    # decide() says "refuted" exactly when the lower bound exceeds the target.
    for ki in (0, 20, 60, 120):
        assert (s.decide(ki, n, target) == "refuted") == (s.lower_bound(ki, n) > target)


def test_mean_bound_at_checkpoints(rng: np.random.Generator) -> None:
    reps = 2000
    s = CheckpointSchedule(DELTA, first=25)
    a, b = 0.5, 4.0
    mu = a / (a + b)
    total = np.zeros(reps)
    total_sq = np.zeros(reps)
    prev = 0
    miss = np.zeros(reps, dtype=bool)
    for n in s.checkpoints(1600):
        x = rng.beta(a, b, (reps, n - prev))
        total += x.sum(axis=1)
        total_sq += (x**2).sum(axis=1)
        prev = n
        mean = total / n
        var = (total_sq - n * mean**2) / (n - 1)
        u = s.mean_upper_bound(SampleStats(mean, np.maximum(var, 0.0), n), 1.0)
        miss |= u < mu
    assert int(miss.sum()) <= stats.binom.ppf(1 - 1e-6, reps, DELTA)
    # The schedule's bound is the plain one at delta_j, and only exists at checkpoints.
    sample = rng.random(50)
    assert s.mean_upper_bound(sample, 1.0) == pytest.approx(empirical_bernstein_upper(sample, DELTA / 4, 1.0))
    assert s.should_stop_mean(np.zeros(50), 1.0, 0.5)
    assert not s.should_stop_mean(np.zeros(51), 1.0, 0.5)
