"""Concentration bounds: one-sided confidence bounds on rates, means and quantiles (METHODS.md section 5).

Every function returns a one-sided **upper** confidence bound at confidence `1 - delta` unless its name says
`lower`: if the data are i.i.d. draws as stated, the event "the true value exceeds the bound" has probability
at most `delta` over the draw of the data. Inputs broadcast like numpy arrays (a leading batch of independent
experiments is one call); a scalar input gives a Python float.

Conventions used throughout:

- `k` failures (violations) among `n` Bernoulli trials; `delta` in (0, 1).
- `range_bound` B is the width `b - a` of an interval `[a, b]` holding every value (so `E X - X_i <= B`).
- `ln` is the natural logarithm.

Bad arguments (delta outside (0, 1), negative counts, k > n, NaN) raise `InputError` naming the value.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats as _sps

from ..errors import InputError

__all__ = [
    "SampleStats",
    "clopper_pearson_upper",
    "clopper_pearson_lower",
    "hoeffding_upper",
    "bernstein_upper",
    "empirical_bernstein_upper",
    "quantile_rank",
    "quantile_upper",
    "samples_needed_clopper_pearson",
    "samples_needed_hoeffding",
    "stratified_rate_upper",
    "stratified_bernstein_upper",
]

RateMethod = Literal["clopper-pearson", "hoeffding", "empirical-bernstein"]


class SampleStats(NamedTuple):
    """Summary of a sample: its mean, unbiased variance (ddof=1) and size."""

    mean: Any
    variance: Any
    n: Any


# --------------------------------------------------------------------------------------------- validation


def _out(x: np.ndarray) -> Any:
    """A 0-d result as a Python float, anything else as an ndarray."""
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


def _delta(delta: ArrayLike) -> np.ndarray:
    d = np.asarray(delta, dtype=np.float64)
    if not np.all((d > 0) & (d < 1)):
        raise InputError(f"delta must lie in (0, 1), got {delta!r}")
    return d


def _counts(name: str, v: ArrayLike) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(a)) or np.any(a < 0) or np.any(a != np.floor(a)):
        raise InputError(f"{name} must be non-negative integers, got {v!r}")
    return a


def _finite(name: str, v: ArrayLike) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{name} must be finite, got {v!r}")
    return a


def _nonneg(name: str, v: ArrayLike) -> np.ndarray:
    a = _finite(name, v)
    if np.any(a < 0):
        raise InputError(f"{name} must be >= 0, got {v!r}")
    return a


def _positive_n(n: ArrayLike, minimum: int = 1) -> np.ndarray:
    a = _counts("n", n)
    if np.any(a < minimum):
        raise InputError(f"n must be >= {minimum}, got {n!r}")
    return a


# ------------------------------------------------------------------------------------------ binomial rates


def clopper_pearson_upper(k: ArrayLike, n: ArrayLike, delta: ArrayLike) -> Any:
    """Exact one-sided upper bound on a Bernoulli rate p from k successes in n trials.

    Formula: `U = Beta.ppf(1 - delta; k + 1, n - k)` for k < n, `U = 1` for k = n, and the closed form
    `U = 1 - delta^(1/n)` for k = 0 (about `ln(1/delta)/n`). With n = 0 the bound is 1. Guarantee:
    `P[p > U] <= delta` for every p (Clopper & Pearson 1934).

    >>> round(clopper_pearson_upper(0, 100, 0.05), 6)    # 1 - 0.05**(1/100)
    0.029513
    >>> clopper_pearson_upper(5, 5, 0.05)
    1.0
    """
    k_a, n_a, d = np.broadcast_arrays(_counts("k", k), _counts("n", n), _delta(delta))
    if np.any(k_a > n_a):
        raise InputError(f"k must not exceed n (k={k!r}, n={n!r})")
    out = np.ones(k_a.shape)
    zero = (k_a == 0) & (n_a > 0)
    mid = (k_a > 0) & (k_a < n_a)
    with np.errstate(divide="ignore"):
        out[zero] = -np.expm1(np.log(d[zero]) / n_a[zero])
    out[mid] = _sps.beta.ppf(1.0 - d[mid], k_a[mid] + 1.0, n_a[mid] - k_a[mid])
    return _out(out)


def clopper_pearson_lower(k: ArrayLike, n: ArrayLike, delta: ArrayLike) -> Any:
    """Exact one-sided lower bound on a Bernoulli rate p from k successes in n trials.

    Formula: `L = Beta.ppf(delta; k, n - k + 1)` for 0 < k < n, `L = 0` for k = 0 (and n = 0), and the
    closed form `L = delta^(1/n)` for k = n. Guarantee: `P[p < L] <= delta`.

    >>> clopper_pearson_lower(0, 10, 0.05)
    0.0
    >>> round(clopper_pearson_lower(10, 10, 0.05), 6)    # 0.05**(1/10)
    0.741134
    """
    k_a, n_a, d = np.broadcast_arrays(_counts("k", k), _counts("n", n), _delta(delta))
    if np.any(k_a > n_a):
        raise InputError(f"k must not exceed n (k={k!r}, n={n!r})")
    out = np.zeros(k_a.shape)
    full = (k_a == n_a) & (n_a > 0)
    mid = (k_a > 0) & (k_a < n_a)
    out[full] = np.exp(np.log(d[full]) / n_a[full])
    out[mid] = _sps.beta.ppf(d[mid], k_a[mid], n_a[mid] - k_a[mid] + 1.0)
    return _out(out)


# ------------------------------------------------------------------------------------------------- means


def hoeffding_upper(mean: ArrayLike, n: ArrayLike, delta: ArrayLike, a: float = 0.0, b: float = 1.0) -> Any:
    """Hoeffding upper bound on the mean of i.i.d. values in [a, b] from the sample mean of n draws.

    Formula: `U = min(b, mean + (b - a) * sqrt(ln(1/delta) / (2 n)))` (Hoeffding 1963; clipping at b is
    free since the true mean is at most b).

    >>> round(hoeffding_upper(0.1, 200, 0.05), 6)        # 0.1 + sqrt(ln(20)/400)
    0.186541
    """
    if not (math.isfinite(a) and math.isfinite(b) and b >= a):
        raise InputError(f"need finite a <= b, got a={a!r}, b={b!r}")
    m, n_a, d = np.broadcast_arrays(_finite("mean", mean), _positive_n(n), _delta(delta))
    u = m + (b - a) * np.sqrt(np.log(1.0 / d) / (2.0 * n_a))
    return _out(np.minimum(u, b))


def bernstein_upper(
    mean: ArrayLike, n: ArrayLike, delta: ArrayLike, variance_bound: ArrayLike, range_bound: ArrayLike
) -> Any:
    """Bernstein upper bound on a mean, given a bound on the true variance of one draw.

    Formula: `U = mean + sqrt(2 s^2 ln(1/delta) / n) + B ln(1/delta) / (3 n)` where `s^2 >= Var X` is a
    *known* (not estimated) variance bound and `B >= E X - X_i` almost surely (e.g. the width b - a of the
    range). This is the sub-gamma form of Bernstein's inequality for variables bounded on one side
    (Boucheron, Lugosi & Massart 2013, Thm 2.10 / Cor 2.11: `P[S >= sqrt(2 v t) + B t / 3] <= e^-t`).

    >>> round(bernstein_upper(0.01, 1000, 0.05, 0.01, 1.0), 6)    # 0.01 + sqrt(0.02 ln(20)/1000) + ln(20)/3000
    0.018739
    """
    m, n_a, d, s2, rb = np.broadcast_arrays(
        _finite("mean", mean), _positive_n(n), _delta(delta),
        _nonneg("variance_bound", variance_bound), _nonneg("range_bound", range_bound),
    )
    log_term = np.log(1.0 / d)
    return _out(m + np.sqrt(2.0 * s2 * log_term / n_a) + rb * log_term / (3.0 * n_a))


def empirical_bernstein_upper(
    samples: ArrayLike | SampleStats | tuple, delta: ArrayLike, range_bound: ArrayLike
) -> Any:
    """Empirical Bernstein upper bound on a mean (Maurer & Pontil 2009, Thm 4), variance from the sample.

    Formula: `U = mean + sqrt(2 V ln(2/delta) / n) + 7 B ln(2/delta) / (3 (n - 1))` with V the unbiased
    sample variance (ddof = 1), B the width of an interval holding all values, n >= 2. When the values are
    almost always equal (V << B^2) this is far below Hoeffding's `B sqrt(ln(1/delta)/(2n))`.

    `samples` is either the sample itself (an ndarray or list, draws along the last axis, leading axes are
    independent experiments) or a `SampleStats(mean, variance, n)` / plain `tuple` of those three.

    >>> round(empirical_bernstein_upper([0.0, 0.0, 0.1, 0.0], 0.1, 1.0), 4)   # n = 4: the 7B/(3(n-1)) term dominates
    2.4162
    >>> round(empirical_bernstein_upper(SampleStats(0.0, 0.0, 10_000), 0.1, 1.0), 6)   # 7 ln(20) / 29997
    0.000699
    """
    if isinstance(samples, tuple):
        if len(samples) != 3:
            raise InputError("sample statistics must be a (mean, variance, n) triple")
        mean, var, n = samples
        mean_a, var_a = _finite("mean", mean), _nonneg("variance", var)
        n_a = _positive_n(n, minimum=2)
    else:
        x = _finite("samples", samples)
        if x.ndim == 0 or x.shape[-1] < 2:
            raise InputError("the empirical Bernstein bound needs at least 2 samples")
        mean_a, var_a, n_a = x.mean(axis=-1), x.var(axis=-1, ddof=1), np.float64(x.shape[-1])
    m, v, n_b, d, rb = np.broadcast_arrays(mean_a, var_a, n_a, _delta(delta), _nonneg("range_bound", range_bound))
    log_term = np.log(2.0 / d)
    return _out(m + np.sqrt(2.0 * v * log_term / n_b) + 7.0 * rb * log_term / (3.0 * (n_b - 1.0)))


# ---------------------------------------------------------------------------------------------- quantiles


def quantile_rank(n: int, p: float, delta: float) -> int:
    """The largest k such that the k-th largest of n i.i.d. samples upper-bounds the (1-p)-quantile.

    Rule: with Q the (1-p)-quantile, `P[X < Q] <= 1 - p`, so the number of samples below Q is stochastically
    at most Binomial(n, 1-p), and the k-th largest sample is below Q only if at least n-k+1 samples are:
    `P[X_(k-th largest) < Q] <= P[Bin(n, 1-p) >= n-k+1] = P[Bin(n, p) < k]`. We return the largest k with
    `P[Bin(n, p) <= k - 1] <= delta` (the smallest valid order statistic), or 0 when even the maximum is not
    enough (`(1-p)^n > delta`). Distribution free, ties included.

    >>> quantile_rank(100, 0.05, 0.1)       # the 2nd largest of 100 bounds the 95th percentile at 90%
    2
    >>> quantile_rank(10, 0.05, 0.1)        # 0.95**10 > 0.1: no order statistic suffices
    0
    """
    n_i = int(_positive_n(n, minimum=0))
    if not (0.0 < float(p) < 1.0):
        raise InputError(f"p (the exceedance probability) must lie in (0, 1), got {p!r}")
    d = float(_delta(delta))
    if n_i == 0:
        return 0
    cdf = _sps.binom.cdf(np.arange(n_i), n_i, p)           # cdf[m] = P[Bin(n, p) <= m], m = k - 1
    # A hair of slack against rounding in the cdf keeps the choice conservative.
    return int(np.searchsorted(cdf, d * (1.0 - 1e-12), side="right"))


def quantile_upper(samples: ArrayLike, p: float, delta: float, upper_limit: float = math.inf) -> Any:
    """Distribution-free upper bound on the (1-p)-quantile of X from i.i.d. samples (last axis).

    Returns the k-th largest sample with `k = quantile_rank(n, p, delta)` (see there for the derivation);
    with confidence 1 - delta, `P[X > U] <= p`. When n is too small (`(1-p)^n > delta`) it returns
    `upper_limit` (a known bound on X, +inf by default).

    >>> quantile_upper(np.arange(100.0), 0.05, 0.1)
    98.0
    >>> quantile_upper(np.arange(10.0), 0.05, 0.1, upper_limit=1e3)
    1000.0
    """
    x = _finite("samples", samples)
    if x.ndim == 0:
        raise InputError("quantile_upper needs an array of samples")
    if math.isnan(upper_limit):
        raise InputError("upper_limit must not be NaN")
    n = x.shape[-1]
    k = quantile_rank(n, p, delta)
    if k == 0:
        return _out(np.full(x.shape[:-1], float(upper_limit)))
    return _out(np.partition(x, n - k, axis=-1)[..., n - k])


# ------------------------------------------------------------------------------------- sample-size planning


def samples_needed_clopper_pearson(rate: float, delta: float, failures: int = 0) -> int:
    """The smallest n such that seeing at most `failures` failures certifies `p <= rate` at 1 - delta.

    With zero failures this is the closed form `n = ceil(ln(delta) / ln(1 - rate))` (from
    `1 - delta^(1/n) <= rate`); with more it is found by bisection on the Clopper-Pearson bound.

    >>> samples_needed_clopper_pearson(0.01, 0.001)      # the "rule of three" at 99.9 %
    688
    """
    if not (0.0 < float(rate) < 1.0):
        raise InputError(f"rate must lie in (0, 1), got {rate!r}")
    d = float(_delta(delta))
    f = int(_counts("failures", failures))
    n = max(1, math.ceil(math.log(d) / math.log1p(-rate)))
    while n > 1 and clopper_pearson_upper(0, n - 1, d) <= rate:   # guard against rounding in the logs
        n -= 1
    while clopper_pearson_upper(0, n, d) > rate:
        n += 1
    if f == 0:
        return n
    lo, hi = n, 2 * n + f
    while clopper_pearson_upper(f, hi, d) > rate:
        lo, hi = hi, 2 * hi
    while lo < hi:                                              # the bound decreases in n for fixed k
        mid = (lo + hi) // 2
        if clopper_pearson_upper(f, mid, d) <= rate:
            hi = mid
        else:
            lo = mid + 1
    return lo


def samples_needed_hoeffding(margin: float, delta: float, a: float = 0.0, b: float = 1.0) -> int:
    """The smallest n with Hoeffding margin `(b - a) sqrt(ln(1/delta) / (2n)) <= margin`.

    Formula: `n = ceil((b - a)^2 ln(1/delta) / (2 margin^2))`.

    >>> samples_needed_hoeffding(0.01, 0.05)
    14979
    """
    if not (float(margin) > 0 and math.isfinite(margin)):
        raise InputError(f"margin must be positive, got {margin!r}")
    if not (math.isfinite(a) and math.isfinite(b) and b >= a):
        raise InputError(f"need finite a <= b, got a={a!r}, b={b!r}")
    d = float(_delta(delta))
    n = max(1, math.ceil((b - a) ** 2 * math.log(1.0 / d) / (2.0 * margin**2)))
    while (b - a) * math.sqrt(math.log(1.0 / d) / (2.0 * n)) > margin:
        n += 1
    return n


# ----------------------------------------------------------------------------------------- stratification


def _weights(weights: ArrayLike) -> np.ndarray:
    w = _nonneg("weights", weights)
    if w.ndim != 1:
        raise InputError(f"weights must be a 1-D array (one per stratum), got shape {w.shape}")
    return w


def stratified_rate_upper(
    k_per_stratum: ArrayLike,
    n_per_stratum: ArrayLike,
    weights: ArrayLike,
    delta: float,
    method: RateMethod = "clopper-pearson",
    proven: ArrayLike | None = None,
) -> Any:
    """Upper bound on a mixture rate `p = sum_k w_k p_k` from independent per-stratum Bernoulli samples.

    Rule: the m *active* strata (weight > 0 and not `proven`) each get `delta / m` and a one-sided bound
    `UCB_k` by `method` (Clopper-Pearson, Hoeffding on [0, 1], or empirical Bernstein; an active stratum with
    too few samples gets `UCB_k = 1`). By the union bound all m bounds hold together with probability
    >= 1 - delta, and then `p <= sum_k w_k UCB_k`. Inactive strata contribute 0 (a proven stratum has no
    violation mass). Strata lie along the last axis; leading axes are independent experiments.

    >>> round(stratified_rate_upper([0, 0], [100, 100], [0.5, 0.5], 0.1), 6)     # each CP at delta/2 = 0.05
    0.029513
    >>> round(stratified_rate_upper([0, 0], [100, 0], [0.5, 0.5], 0.1, proven=[False, True]), 6)   # all delta
    0.011381
    """
    w = _weights(weights)
    k_a, n_a = np.broadcast_arrays(_counts("k_per_stratum", k_per_stratum), _counts("n_per_stratum", n_per_stratum))
    if k_a.ndim == 0 or k_a.shape[-1] != w.shape[0]:
        raise InputError(f"need one count per stratum: {w.shape[0]} weights, counts of shape {k_a.shape}")
    if np.any(k_a > n_a):
        raise InputError("k_per_stratum must not exceed n_per_stratum")
    d = float(_delta(delta))
    active = w > 0
    if proven is not None:
        pm = np.asarray(proven, dtype=bool)
        if pm.shape != w.shape:
            raise InputError(f"proven must have one flag per stratum, got shape {pm.shape}")
        active &= ~pm
    m = int(active.sum())
    if m == 0:
        return _out(np.zeros(k_a.shape[:-1]))
    d_k = d / m
    k_act, n_act = k_a[..., active], n_a[..., active]
    ucb = np.ones(k_act.shape)
    if method == "clopper-pearson":
        ucb = np.asarray(clopper_pearson_upper(k_act, n_act, d_k), dtype=np.float64)
    elif method == "hoeffding":
        ok = n_act > 0
        ucb[ok] = np.asarray(hoeffding_upper(k_act[ok] / n_act[ok], n_act[ok], d_k), dtype=np.float64)
    elif method == "empirical-bernstein":
        ok = n_act > 1
        kk, nn = k_act[ok], n_act[ok]
        mean = kk / nn
        var = mean * (1.0 - mean) * nn / (nn - 1.0)           # unbiased variance of 0/1 values
        eb = np.asarray(empirical_bernstein_upper(SampleStats(mean, var, nn), d_k, 1.0), dtype=np.float64)
        ucb[ok] = np.minimum(eb, 1.0)
    else:
        raise InputError(f"unknown stratified method {method!r} (clopper-pearson, hoeffding, empirical-bernstein)")
    return _out(ucb @ w[active])


def stratified_bernstein_upper(
    means: ArrayLike,
    variances_or_bounds: ArrayLike | None,
    ranges: ArrayLike,
    n: ArrayLike,
    weights: ArrayLike,
    delta: float,
) -> Any:
    """One Bernstein bound on the stratified mean `mu = sum_k w_k mu_k` (independent strata).

    Setting: stratum k has values in an interval of width `B_k = ranges[k]` with variance at most
    `s_k^2 = variances_or_bounds[k]` (a *known* bound; NaN or None means "unknown" and uses Popoviciu's
    `B_k^2 / 4`, which also caps any given bound), and `n_k` i.i.d. draws (n fixed in advance) with mean
    `means[k]`. The estimator `mu_hat = sum_k w_k mean_k` is a sum of N = sum n_k independent terms
    `Z_ki = (w_k / n_k) X_ki`.

    Derivation: apply Bernstein's inequality in sub-gamma form (Boucheron, Lugosi & Massart 2013, Cor 2.11)
    to the centred terms `Y_ki = (w_k / n_k)(mu_k - X_ki)`, which are independent, have mean 0 and satisfy
      - `Y_ki <= c := max_k w_k B_k / n_k`              (the range term),
      - `v := sum_ki E Y_ki^2 = sum_k n_k (w_k/n_k)^2 s_k^2 = sum_k w_k^2 s_k^2 / n_k`   (the variance term).
    Then `P[sum Y >= sqrt(2 v t) + c t / 3] <= e^-t`; with `t = ln(1/delta)`, since `sum Y = mu - mu_hat`:

        U = mu_hat + sqrt(2 v ln(1/delta)) + c ln(1/delta) / 3.

    With one stratum (w = 1) this is exactly `bernstein_upper`. Strata with weight 0 or range 0 (e.g.
    proven: the deviation is a known constant) add nothing to v or c; a stratum with positive weight and
    range needs n_k >= 1. Strata lie along the last axis of `means`; leading axes are independent experiments.

    >>> stratified_bernstein_upper([0.0, 0.2], None, [0.0, 1.0], [0, 100], [0.5, 0.5], 0.1) > 0.1
    True
    >>> round(stratified_bernstein_upper([0.1], [0.01], [1.0], [400], [1.0], 0.05), 6) == round(
    ...     bernstein_upper(0.1, 400, 0.05, 0.01, 1.0), 6)
    True
    """
    w = _weights(weights)
    kk = w.shape[0]
    mu = _finite("means", means)
    if mu.ndim == 0 or mu.shape[-1] != kk:
        raise InputError(f"need one mean per stratum: {kk} weights, means of shape {mu.shape}")
    b = np.broadcast_to(_nonneg("ranges", ranges), (kk,)).astype(np.float64)
    n_a = np.broadcast_to(_counts("n", n), (kk,)).astype(np.float64)
    if variances_or_bounds is None:
        s2 = np.full(kk, np.nan)
    else:
        s2 = np.broadcast_to(np.asarray(variances_or_bounds, dtype=np.float64), (kk,))
        if np.any(s2 < 0) or np.any(np.isinf(s2)):
            raise InputError(f"variance bounds must be >= 0 and finite (NaN = unknown), got {variances_or_bounds!r}")
    s2 = np.fmin(s2, b**2 / 4.0)                               # Popoviciu: Var <= B^2 / 4 (fmin skips NaN)
    d = float(_delta(delta))
    live = (w > 0) & (b > 0)
    if np.any(live & (n_a < 1)):
        bad = np.flatnonzero(live & (n_a < 1)).tolist()
        raise InputError(f"strata {bad} have positive weight and range but no samples")
    v = float(np.sum(w[live] ** 2 * s2[live] / n_a[live]))
    c = float(np.max(w[live] * b[live] / n_a[live])) if np.any(live) else 0.0
    t = math.log(1.0 / d)
    mu_hat = (mu * np.where(w > 0, 1.0, 0.0)) @ w               # weight-0 strata may carry any placeholder
    return _out(mu_hat + math.sqrt(2.0 * v * t) + c * t / 3.0)
