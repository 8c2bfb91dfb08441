"""Fixed-allocation stratified bounds (`stats.weighted`): coverage by simulation, with a power check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simcert.errors import InputError
from simcert.stats import clopper_pearson_upper
from simcert.stats.weighted import (
    allocate,
    chernoff_poisson_lower,
    chernoff_poisson_upper,
    weighted_bernoulli_lower,
    weighted_bernoulli_upper,
    weighted_quantile_upper,
)

REPS = 4000
DELTA = 0.1


def _max_misses(delta: float = DELTA) -> float:
    return stats.binom.ppf(1 - 1e-6, REPS, delta)


def _experiment(rng, w, n, p):
    """REPS independent stratified samples: weighted sums S and the scale c."""
    hits = rng.binomial(n[None, :], p[None, :], size=(REPS, w.size))
    s = (hits * (w / n)).sum(axis=1)
    return s, float((w / n).max())


@pytest.mark.parametrize("case", ["rare", "mixed", "neyman-like"])
def test_weighted_bernoulli_bounds_cover(case):
    rng = np.random.default_rng(0)
    if case == "rare":
        w, n, p = np.array([0.3, 0.7]), np.array([300, 700]), np.array([0.001, 0.004])
    elif case == "mixed":
        w, n, p = np.array([0.1, 0.2, 0.7]), np.array([50, 400, 100]), np.array([0.3, 0.02, 0.05])
    else:
        w, n, p = np.full(20, 0.05), np.arange(1, 21) * 10, np.linspace(0.0, 0.2, 20)
    mu = float(w @ p)
    s, c = _experiment(rng, w, n, p)
    up = np.array([weighted_bernoulli_upper(v, c, DELTA) for v in s])
    lo = np.array([weighted_bernoulli_lower(v, c, DELTA) for v in s])
    assert int((up < mu).sum()) <= _max_misses()
    assert int((lo > mu).sum()) <= _max_misses()
    # power: the plug-in estimate misses about half the time, so the check can fail
    assert int((s < mu).sum()) > _max_misses()


def test_deliberately_shrunk_bound_fails_coverage():
    rng = np.random.default_rng(1)
    w, n, p = np.array([0.5, 0.5]), np.array([200, 200]), np.array([0.05, 0.1])
    mu = float(w @ p)
    s, c = _experiment(rng, w, n, p)
    wrong = np.array([weighted_bernoulli_upper(v, c, 0.9) for v in s])    # claims delta 0.1, uses 0.9
    assert int((wrong < mu).sum()) > _max_misses()


def test_chernoff_close_to_clopper_pearson_for_counts():
    for k in (0, 1, 10, 100):
        cp = float(clopper_pearson_upper(k, 10**7, 1e-6)) * 1e7
        ch = chernoff_poisson_upper(k, 1e-6)
        assert cp <= ch * 1.0000001 <= 1.15 * cp
    assert chernoff_poisson_upper(0, 1e-6) == pytest.approx(np.log(1e6))
    assert chernoff_poisson_lower(0, 0.1) == 0.0
    assert 0 < chernoff_poisson_lower(5, 0.1) < 5 < chernoff_poisson_upper(5, 0.1)


def test_proportional_weighted_bound_matches_pooled_poisson():
    # with n_k proportional to w_k the weighted sum is (W / N) * count
    w, n, k = np.array([0.2, 0.3]), np.array([2000, 3000]), np.array([1, 2])
    s, c = float((w / n) @ k), float((w / n).max())
    assert weighted_bernoulli_upper(s, c, 1e-3) == pytest.approx(0.5 / 5000 * chernoff_poisson_upper(3, 1e-3))


def test_weighted_quantile_covers():
    rng = np.random.default_rng(2)
    w = np.array([0.6, 0.4])
    n = np.array([150, 350])
    p = 0.05
    # stratum 0: Exp(1), stratum 1: Exp(1) + 1; true (1 - p)-quantile of the mixture by bisection
    surv = lambda t: w[0] * np.exp(-max(t, 0)) + w[1] * np.exp(-max(t - 1, 0)) * (t >= 1) + w[1] * (t < 1)  # noqa: E731
    lo_t, hi_t = 0.0, 20.0
    for _ in range(100):
        mid = (lo_t + hi_t) / 2
        lo_t, hi_t = (mid, hi_t) if surv(mid) > p else (lo_t, mid)
    q_true = hi_t
    scale = np.repeat(w / n, n)
    c = float((w / n).max())
    misses = naive_misses = 0
    reps = 1000
    for _ in range(reps):
        x = np.concatenate([rng.exponential(size=n[0]), rng.exponential(size=n[1]) + 1])
        misses += weighted_quantile_upper(x, scale, c, p, DELTA) < q_true
        # plug-in: the smallest sample value whose estimated mass above is <= p (a "bound" with no margin)
        order = np.argsort(-x)
        naive = x[order][np.searchsorted(np.cumsum(scale[order]), p, side="right")]
        naive_misses += naive < q_true
    limit = stats.binom.ppf(1 - 1e-6, reps, DELTA)
    assert misses <= limit
    assert naive_misses > limit                        # the check has power


def test_allocate():
    a = allocate(1000, [0.5, 0.25, 0.25])
    assert a.tolist() == [500, 250, 250]
    b = allocate(7, [1.0, 0.0, 3.0], minimum=1)
    assert b.sum() == 7 and b.min() >= 1 and b[2] > b[0]
    with pytest.raises(InputError):
        allocate(2, [1.0, 1.0, 1.0], minimum=1)
    with pytest.raises(InputError):
        allocate(5, [-1.0])


def test_bad_arguments():
    with pytest.raises(InputError):
        weighted_bernoulli_upper(-1.0, 0.1, 0.1)
    with pytest.raises(InputError):
        weighted_bernoulli_upper(1.0, 0.0, 0.1)
    with pytest.raises(InputError):
        chernoff_poisson_upper(1.0, 1.5)
