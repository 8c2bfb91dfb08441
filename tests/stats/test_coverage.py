"""Coverage of every bound: the truth lies above the upper bound at most a delta fraction of the time.

Each check runs many independent repetitions at once (vectorized) and accepts a miss count up to the
1 - 1e-6 quantile of Binomial(REPS, delta), so a valid bound passes (essentially never flaky) while a bound
whose real miss rate is a few points above delta fails. Every test also runs a deliberately wrong bound
through the same check and asserts that it FAILS, so the check has power. delta = 0.1 keeps that power high.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simcert.stats import (
    bernstein_upper,
    clopper_pearson_lower,
    clopper_pearson_upper,
    empirical_bernstein_upper,
    hoeffding_upper,
    quantile_upper,
    stratified_bernstein_upper,
    stratified_rate_upper,
)

REPS = 20_000
DELTA = 0.1


def covers(miss: np.ndarray, delta: float = DELTA) -> bool:
    """True when the number of misses is compatible with a miss probability <= delta."""
    assert miss.dtype == bool and miss.size == REPS
    return int(miss.sum()) <= stats.binom.ppf(1 - 1e-6, REPS, delta)


# ---------------------------------------------------------------------------------- Clopper-Pearson (exact)


@pytest.mark.parametrize("n", [1, 3, 10, 40, 150])
@pytest.mark.parametrize("delta", [0.1, 0.01])
def test_cp_exact_miss_probability_is_at_most_delta(n: int, delta: float) -> None:
    # Exact, no simulation: miss(p) = sum_k P[Bin(n, p) = k] 1[bound(k) misses p], on a fine grid of p.
    p = np.linspace(1e-4, 1 - 1e-4, 1200)[:, None]
    k = np.arange(n + 1)[None, :]
    pmf = stats.binom.pmf(k, n, p)
    miss_up = (pmf * (clopper_pearson_upper(k, n, delta) < p)).sum(axis=1)
    miss_lo = (pmf * (clopper_pearson_lower(k, n, delta) > p)).sum(axis=1)
    assert miss_up.max() <= delta + 1e-12
    assert miss_lo.max() <= delta + 1e-12
    # The bound is exact, not vacuous: the miss probability comes close to delta somewhere.
    assert miss_up.max() > 0.5 * delta
    # A CP bound at 3 delta is caught by the same check.
    miss_wrong = (pmf * (clopper_pearson_upper(k, n, 3 * delta) < p)).sum(axis=1)
    assert miss_wrong.max() > delta + 1e-3


def test_cp_simulated_coverage(rng: np.random.Generator) -> None:
    p, n = 0.03, 200
    k = rng.binomial(n, p, REPS)
    assert covers(clopper_pearson_upper(k, n, DELTA) < p)
    assert covers(clopper_pearson_lower(k, n, DELTA) > p)
    # Wrong: the normal-approximation (Wald) bound undercovers small rates.
    p_hat = k / n
    wald = p_hat + stats.norm.ppf(1 - DELTA) * np.sqrt(p_hat * (1 - p_hat) / n)
    assert not covers(wald < p)
    assert not covers(clopper_pearson_upper(k, n, 3 * DELTA) < p)


# ------------------------------------------------------------------------------------------------ means


def test_hoeffding_coverage_beta(rng: np.random.Generator) -> None:
    n = 100
    x = rng.beta(2.0, 5.0, (REPS, n))
    mu, m = 2.0 / 7.0, x.mean(axis=1)
    assert covers(hoeffding_upper(m, n, DELTA) < mu)
    # Wrong: the square root dropped.
    assert not covers(m + np.log(1 / DELTA) / (2 * n) < mu)


def test_bernstein_coverage_skewed_beta(rng: np.random.Generator) -> None:
    a, b, n = 0.3, 3.0, 400
    mu, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    m = rng.beta(a, b, (REPS, n)).mean(axis=1)
    assert covers(bernstein_upper(m, n, DELTA, var, 1.0) < mu)
    # Wrong: the variance of the mean (var / n) passed where the variance of one draw belongs.
    assert not covers(bernstein_upper(m, n, DELTA, var / n, 1.0) < mu)
    # Wrong: a variance bound 10x too small.
    assert not covers(bernstein_upper(m, n, DELTA, var / 10, 1.0) < mu)


@pytest.mark.parametrize(
    ("name", "n"), [("bernoulli-0.01", 100), ("beta-0.3-3", 50), ("scaled-beta", 200)]
)
def test_empirical_bernstein_coverage(rng: np.random.Generator, name: str, n: int) -> None:
    if name == "bernoulli-0.01":
        x, mu, rb = (rng.random((REPS, n)) < 0.01).astype(float), 0.01, 1.0
    elif name == "beta-0.3-3":
        x, mu, rb = rng.beta(0.3, 3.0, (REPS, n)), 0.3 / 3.3, 1.0
    else:  # values in [-2, 2] from Beta(5, 5): mean 0
        x, mu, rb = -2.0 + 4.0 * rng.beta(5.0, 5.0, (REPS, n)), 0.0, 4.0
    assert covers(empirical_bernstein_upper(x, DELTA, rb) < mu)
    if name == "bernoulli-0.01":
        # Wrong: no range term. With no failure seen (P = 0.99^100 = 0.37) the bound collapses to 0.
        m, v = x.mean(axis=1), x.var(axis=1, ddof=1)
        assert not covers(m + np.sqrt(2 * v * np.log(2 / DELTA) / n) < mu)


# --------------------------------------------------------------------------------------------- quantiles


@pytest.mark.parametrize("dist", ["exponential", "mixed-atom"])
def test_quantile_upper_coverage(rng: np.random.Generator, dist: str) -> None:
    p, n = 0.05, 200
    if dist == "exponential":
        x, q = rng.exponential(1.0, (REPS, n)), stats.expon.ppf(1 - p)
    else:
        # Mostly exactly 0 (like a twin that usually agrees), else U(0, 1): P[X <= x] = 0.94 + 0.06 x, so the
        # 95% quantile is 1/6.
        x, q = np.where(rng.random((REPS, n)) < 0.94, 0.0, rng.random((REPS, n))), 1.0 / 6.0
    u = quantile_upper(x, p, DELTA)
    assert covers(u < q)
    # The exceedance form of the same guarantee: P[X > U] <= p, checked with the true tail function.
    tail = stats.expon.sf(u) if dist == "exponential" else 0.06 * (1.0 - np.clip(u, 0.0, 1.0))
    assert covers(tail > p)
    # Wrong: the plug-in empirical quantile misses about half the time.
    assert not covers(np.quantile(x, 1 - p, axis=1) < q)


# ------------------------------------------------------------------------------------------ stratification


@pytest.mark.parametrize("method", ["clopper-pearson", "hoeffding", "empirical-bernstein"])
def test_stratified_rate_coverage(rng: np.random.Generator, method: str) -> None:
    w, p, n = np.array([0.5, 0.3, 0.2]), np.array([0.02, 0.1, 0.0]), np.array([100, 50, 80])
    k = rng.binomial(n, p, (REPS, 3))
    truth = w @ p
    assert covers(stratified_rate_upper(k, n, w, DELTA, method=method) < truth)
    if method == "clopper-pearson":
        assert not covers((k / n) @ w < truth)   # wrong: plug-in


def _stratified_setup(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    # Strata with values lo_k + B_k * Beta(a_k, b_k); the 4th stratum has weight 0 (never sampled).
    w = np.array([0.5, 0.3, 0.2, 0.0])
    lo, width = np.array([0.0, 1.0, -1.0, 0.0]), np.array([1.0, 2.0, 0.5, 1.0])
    a, b = np.array([0.3, 2.0, 1.0, 1.0]), np.array([3.0, 2.0, 5.0, 1.0])
    n = np.array([40, 60, 30, 0])
    mu_k = lo + width * a / (a + b)
    var_k = width**2 * a * b / ((a + b) ** 2 * (a + b + 1))
    means = np.zeros((REPS, 4))
    for j in range(3):
        means[:, j] = (lo[j] + width[j] * rng.beta(a[j], b[j], (REPS, n[j]))).mean(axis=1)
    return w, width, n, mu_k, var_k, means


def test_stratified_bernstein_coverage(rng: np.random.Generator) -> None:
    w, width, n, mu_k, var_k, means = _stratified_setup(rng)
    truth = w @ mu_k
    assert covers(stratified_bernstein_upper(means, var_k, width, n, w, DELTA) < truth)
    assert covers(stratified_bernstein_upper(means, None, width, n, w, DELTA) < truth)
    # Wrong: the variance term divided by n_k twice (sum w^2 s^2 / n^2).
    t, live = np.log(1 / DELTA), w > 0
    v_bad = np.sum(w[live] ** 2 * var_k[live] / n[live] ** 2)
    c = np.max(w[live] * width[live] / n[live])
    assert not covers(means @ w + np.sqrt(2 * v_bad * t) + c * t / 3 < truth)
