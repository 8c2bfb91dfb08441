"""Hand-computed values, edge cases and input checks for simcert.stats.bounds (coverage is in test_coverage)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from simcert.errors import InputError
from simcert.stats import (
    SampleStats,
    bernstein_upper,
    clopper_pearson_lower,
    clopper_pearson_upper,
    empirical_bernstein_upper,
    hoeffding_upper,
    quantile_rank,
    quantile_upper,
    samples_needed_clopper_pearson,
    samples_needed_hoeffding,
    stratified_bernstein_upper,
    stratified_rate_upper,
)

# ------------------------------------------------------------------------------------------ Clopper-Pearson


@pytest.mark.parametrize("n", [1, 7, 100, 10_000])
@pytest.mark.parametrize("delta", [0.2, 0.01, 1e-6])
def test_cp_edge_cases_are_exact(n: int, delta: float) -> None:
    assert clopper_pearson_upper(0, n, delta) == pytest.approx(1.0 - delta ** (1.0 / n), rel=1e-12)
    assert clopper_pearson_upper(n, n, delta) == 1.0
    assert clopper_pearson_lower(0, n, delta) == 0.0
    assert clopper_pearson_lower(n, n, delta) == pytest.approx(delta ** (1.0 / n), rel=1e-12)


def test_cp_zero_samples_is_vacuous() -> None:
    assert clopper_pearson_upper(0, 0, 0.05) == 1.0
    assert clopper_pearson_lower(0, 0, 0.05) == 0.0


@pytest.mark.parametrize(("k", "n"), [(1, 10), (3, 50), (17, 40), (999, 1000)])
def test_cp_solves_the_binomial_tail_equation(k: int, n: int) -> None:
    # The upper end U satisfies P[Bin(n, U) <= k] = delta; the lower end L satisfies P[Bin(n, L) >= k] = delta.
    delta = 0.05
    u = clopper_pearson_upper(k, n, delta)
    lo = clopper_pearson_lower(k, n, delta)
    assert stats.binom.cdf(k, n, u) == pytest.approx(delta, rel=1e-8)
    assert stats.binom.sf(k - 1, n, lo) == pytest.approx(delta, rel=1e-8)
    assert lo < k / n < u


def test_cp_vectorized_and_monotone() -> None:
    k = np.arange(0, 11)
    u = clopper_pearson_upper(k, 10, 0.1)
    lo = clopper_pearson_lower(k, 10, 0.1)
    assert isinstance(u, np.ndarray) and u.shape == (11,)
    assert np.all(np.diff(u) > 0) and np.all(np.diff(lo) > 0)
    assert np.all(lo < u)
    # More confidence (smaller delta) means a wider interval.
    assert np.all(clopper_pearson_upper(k, 10, 0.01) >= u)
    assert isinstance(clopper_pearson_upper(3, 10, 0.1), float)


@pytest.mark.parametrize(
    ("k", "n", "delta"), [(5, 4, 0.1), (-1, 4, 0.1), (1.5, 4, 0.1), (1, 4, 0.0), (1, 4, 1.0), (1, 4, float("nan"))]
)
def test_cp_rejects_bad_input(k: float, n: int, delta: float) -> None:
    with pytest.raises(InputError):
        clopper_pearson_upper(k, n, delta)
    with pytest.raises(InputError):
        clopper_pearson_lower(k, n, delta)


# ------------------------------------------------------------------------------------------- mean bounds


def test_hoeffding_hand_values() -> None:
    assert hoeffding_upper(0.1, 200, 0.05) == pytest.approx(0.1 + math.sqrt(math.log(20) / 400))
    # Range [a, b] scales the margin by b - a, and the bound is clipped at b.
    assert hoeffding_upper(1.0, 50, 0.1, a=-1.0, b=3.0) == pytest.approx(1.0 + 4 * math.sqrt(math.log(10) / 100))
    assert hoeffding_upper(0.99, 5, 0.01) == 1.0
    out = hoeffding_upper(np.array([0.0, 0.5]), np.array([10, 1000]), 0.1)
    assert out.shape == (2,) and out[0] - 0.0 > out[1] - 0.5
    with pytest.raises(InputError):
        hoeffding_upper(0.1, 0, 0.1)
    with pytest.raises(InputError):
        hoeffding_upper(0.1, 10, 0.1, a=1.0, b=0.0)


def test_bernstein_hand_value() -> None:
    mean, n, delta, s2, b = 0.2, 500, 0.01, 0.04, 2.0
    log_term = math.log(100)
    expected = mean + math.sqrt(2 * s2 * log_term / n) + b * log_term / (3 * n)
    assert bernstein_upper(mean, n, delta, s2, b) == pytest.approx(expected, rel=1e-14)
    with pytest.raises(InputError):
        bernstein_upper(mean, n, delta, -1.0, b)


def test_empirical_bernstein_hand_value_and_both_input_forms(rng: np.random.Generator) -> None:
    x = rng.random(50) * 0.3
    mean, var, n = x.mean(), x.var(ddof=1), 50
    log_term = math.log(2 / 0.05)
    expected = mean + math.sqrt(2 * var * log_term / n) + 7 * 0.3 * log_term / (3 * (n - 1))
    assert empirical_bernstein_upper(x, 0.05, 0.3) == pytest.approx(expected, rel=1e-12)
    assert empirical_bernstein_upper(SampleStats(mean, var, n), 0.05, 0.3) == pytest.approx(expected, rel=1e-12)
    assert empirical_bernstein_upper((mean, var, n), 0.05, 0.3) == pytest.approx(expected, rel=1e-12)
    # Batched: leading axes are independent experiments.
    batch = rng.random((4, 30))
    out = empirical_bernstein_upper(batch, 0.05, 1.0)
    assert out.shape == (4,)
    assert out[2] == pytest.approx(empirical_bernstein_upper(batch[2], 0.05, 1.0))
    with pytest.raises(InputError):
        empirical_bernstein_upper([0.5], 0.05, 1.0)


def test_empirical_bernstein_beats_hoeffding_when_variance_is_small(rng: np.random.Generator) -> None:
    # Deviations in [0, 1] that are almost always tiny: Hoeffding pays for the full range, Bernstein doesn't.
    n, delta = 10_000, 1e-3
    x = np.where(rng.random(n) < 0.001, rng.random(n), 1e-4 * rng.random(n))
    mean = x.mean()
    eb_margin = empirical_bernstein_upper(x, delta, 1.0) - mean
    hoeffding_margin = hoeffding_upper(mean, n, delta) - mean
    assert hoeffding_margin / eb_margin > 5.0
    # ... and with a large variance the ordering flips (EB's ln(2/delta) and 7/3 factors cost).
    y = (rng.random(n) < 0.5).astype(float)
    assert empirical_bernstein_upper(y, delta, 1.0) > hoeffding_upper(y.mean(), n, delta)


# ---------------------------------------------------------------------------------------------- quantiles


@pytest.mark.parametrize("n", [1, 10, 45, 46, 100, 1000])
@pytest.mark.parametrize(("p", "delta"), [(0.05, 0.1), (0.01, 0.01), (0.3, 0.2)])
def test_quantile_rank_is_the_largest_valid_rank(n: int, p: float, delta: float) -> None:
    k = quantile_rank(n, p, delta)
    if k > 0:
        assert stats.binom.cdf(k - 1, n, p) <= delta
    if k < n:
        assert stats.binom.cdf(k, n, p) > delta   # k + 1 would not be valid
    assert (k == 0) == ((1 - p) ** n > delta)


def test_quantile_upper_picks_the_order_statistic(rng: np.random.Generator) -> None:
    x = rng.permutation(np.arange(1000.0))
    k = quantile_rank(1000, 0.01, 0.05)
    assert quantile_upper(x, 0.01, 0.05) == 1000.0 - k
    batch = np.stack([x, x + 5.0])
    assert quantile_upper(batch, 0.01, 0.05).tolist() == [1000.0 - k, 1005.0 - k]
    # Too few samples: the given range bound (or +inf).
    assert quantile_upper(x[:10], 0.01, 0.05) == math.inf
    assert quantile_upper(x[:10], 0.01, 0.05, upper_limit=2.0) == 2.0
    with pytest.raises(InputError):
        quantile_upper(x, 1.5, 0.05)


# ------------------------------------------------------------------------------------------------ planning


@pytest.mark.parametrize(("rate", "delta"), [(0.01, 0.001), (0.1, 0.05), (1e-4, 1e-6), (0.5, 0.5)])
def test_samples_needed_cp_is_minimal(rate: float, delta: float) -> None:
    n = samples_needed_clopper_pearson(rate, delta)
    assert n == math.ceil(math.log(delta) / math.log(1 - rate))
    assert clopper_pearson_upper(0, n, delta) <= rate < clopper_pearson_upper(0, n - 1, delta) or n == 1
    n3 = samples_needed_clopper_pearson(rate, delta, failures=3)
    assert clopper_pearson_upper(3, n3, delta) <= rate < clopper_pearson_upper(3, n3 - 1, delta)


def test_samples_needed_hoeffding_is_minimal() -> None:
    n = samples_needed_hoeffding(0.01, 0.05)
    assert hoeffding_upper(0.0, n, 0.05) <= 0.01 < hoeffding_upper(0.0, n - 1, 0.05)
    assert samples_needed_hoeffding(0.02, 0.05, a=0.0, b=2.0) == n
    with pytest.raises(InputError):
        samples_needed_hoeffding(0.0, 0.05)


# ----------------------------------------------------------------------------------------- stratification


def test_stratified_rate_single_stratum_is_plain_cp() -> None:
    assert stratified_rate_upper([3], [100], [1.0], 0.05) == pytest.approx(clopper_pearson_upper(3, 100, 0.05))


def test_stratified_rate_splits_delta_over_active_strata_only() -> None:
    k, n, w = [1, 0, 0, 2], [100, 50, 0, 40], [0.4, 0.3, 0.2, 0.1]
    proven = [False, False, True, False]
    d = 0.1 / 3
    expected = 0.4 * clopper_pearson_upper(1, 100, d) + 0.3 * clopper_pearson_upper(0, 50, d) + 0.1 * (
        clopper_pearson_upper(2, 40, d)
    )
    assert stratified_rate_upper(k, n, w, 0.1, proven=proven) == pytest.approx(expected, rel=1e-12)
    # Weight 0 is inactive too; an active stratum with no samples costs its whole weight.
    assert stratified_rate_upper([0, 9], [0, 9], [1.0, 0.0], 0.1) == 1.0
    assert stratified_rate_upper([0, 0], [10, 10], [0.0, 0.0], 0.1) == 0.0
    h = stratified_rate_upper([2, 1], [20, 30], [0.5, 0.5], 0.1, method="hoeffding")
    assert h == pytest.approx(0.5 * hoeffding_upper(0.1, 20, 0.05) + 0.5 * hoeffding_upper(1 / 30, 30, 0.05))


def test_stratified_rate_is_batched_and_checks_shapes() -> None:
    k = np.array([[0, 1], [2, 3], [0, 0]])
    out = stratified_rate_upper(k, [50, 50], [0.5, 0.5], 0.1)
    assert out.shape == (3,)
    assert out[1] == pytest.approx(stratified_rate_upper([2, 3], [50, 50], [0.5, 0.5], 0.1))
    with pytest.raises(InputError):
        stratified_rate_upper([0, 1, 2], [50, 50, 50], [0.5, 0.5], 0.1)
    with pytest.raises(InputError):
        stratified_rate_upper([0, 1], [50, 50], [0.5, 0.5], 0.1, method="wald")  # type: ignore[arg-type]


def test_stratified_bernstein_reduces_to_bernstein_for_one_stratum() -> None:
    assert stratified_bernstein_upper([0.3], [0.02], [1.0], [300], [1.0], 0.05) == pytest.approx(
        bernstein_upper(0.3, 300, 0.05, 0.02, 1.0), rel=1e-14
    )


def test_stratified_bernstein_hand_value() -> None:
    # Two live strata, one proven (range 0, known value 0) and one of weight 0 with a placeholder mean.
    means, var, ranges = [0.1, 0.4, 0.0, 123.0], [0.01, float("nan"), 0.0, 1.0], [1.0, 2.0, 0.0, 5.0]
    n, w = [100, 50, 0, 0], [0.3, 0.5, 0.2, 0.0]
    t = math.log(1 / 0.05)
    v = 0.3**2 * 0.01 / 100 + 0.5**2 * (2.0**2 / 4) / 50        # NaN variance -> Popoviciu B^2/4
    c = max(0.3 * 1.0 / 100, 0.5 * 2.0 / 50)
    expected = 0.3 * 0.1 + 0.5 * 0.4 + math.sqrt(2 * v * t) + c * t / 3
    assert stratified_bernstein_upper(means, var, ranges, n, w, 0.05) == pytest.approx(expected, rel=1e-12)
    # A given variance bound above B^2/4 is capped by Popoviciu.
    assert stratified_bernstein_upper([0.5], [10.0], [1.0], [10], [1.0], 0.05) == pytest.approx(
        bernstein_upper(0.5, 10, 0.05, 0.25, 1.0)
    )


def test_stratified_bernstein_needs_samples_in_live_strata() -> None:
    with pytest.raises(InputError, match="no samples"):
        stratified_bernstein_upper([0.1, 0.2], None, [1.0, 1.0], [10, 0], [0.5, 0.5], 0.05)
