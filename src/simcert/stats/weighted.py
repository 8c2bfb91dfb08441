"""Bounds for stratified samples with a fixed allocation: weighted sums of independent Bernoulli draws.

With proportional allocation drawn at random (each draw picks stratum k with probability w_k / W), the
stratified sample is an i.i.d. sample of the conditional distribution and the pooled Clopper-Pearson bound
applies. With a *fixed* allocation (Neyman: n_k chosen in advance, not proportional to w_k) the draws are
not identically distributed; the estimator of the mass `mu = sum_k w_k p_k` is the weighted sum

    S = sum_k (w_k / n_k) * (number of hits among the n_k draws of stratum k),   E S = mu,

a sum of independent terms in `[0, c]` with `c = max_k w_k / n_k`. This module bounds `mu` from S by the
Chernoff lower-tail bound (`chernoff_poisson_upper`), allocates samples (`allocate`), and turns the same
bound into a distribution-free quantile bound for stratified samples (`weighted_quantile_upper`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import brentq

from ..errors import InputError

__all__ = [
    "chernoff_poisson_upper",
    "chernoff_poisson_lower",
    "weighted_bernoulli_upper",
    "weighted_bernoulli_lower",
    "allocate",
    "weighted_quantile_upper",
]


def _delta(delta: float) -> float:
    d = float(delta)
    if not (0.0 < d < 1.0):
        raise InputError(f"delta must lie in (0, 1), got {delta!r}")
    return d


def chernoff_poisson_upper(a: float, delta: float) -> float:
    """Upper confidence bound on the mean `lam` of a sum T of independent [0, 1] variables, from T = a.

    Rule (Chernoff's lower tail for sums of independent [0, 1] variables, via `E exp(-sY) <= exp(-EY (1 - e^-s))`):
    `P[T <= a] <= exp(-lam) (e lam / a)^a` for `a < lam`. Inverting it, `U` is the root `lam > a` of

        lam - a - a ln(lam / a) = ln(1 / delta)       (U = ln(1/delta) when a = 0),

    and `P[lam > U] <= delta`. For counts this is within a few percent of the exact Poisson bound
    (`U = ln(1/delta)` vs Clopper-Pearson's `~ln(1/delta)` when nothing is seen).

    >>> round(chernoff_poisson_upper(0.0, 1e-6), 4)            # ln(1e6)
    13.8155
    >>> 17.0 < chernoff_poisson_upper(1.0, 1e-6) < 18.0
    True
    """
    a = float(a)
    if not (math.isfinite(a) and a >= 0):
        raise InputError(f"the observed sum must be finite and >= 0, got {a!r}")
    t = math.log(1.0 / _delta(delta))
    if a == 0.0:
        return t
    # g(lam) = lam - a - a ln(lam/a) - t is increasing for lam > a, g(a) = -t < 0.
    g = lambda lam: lam - a - a * math.log(lam / a) - t  # noqa: E731
    hi = a + t + 2.0 * math.sqrt(a * t) + 1.0
    while g(hi) < 0:
        hi *= 2.0
    root = brentq(g, a, hi, xtol=1e-14 * hi, rtol=1e-14)
    return float(root) * (1.0 + 1e-12)                         # a hair outward against the root's tolerance


def chernoff_poisson_lower(a: float, delta: float) -> float:
    """Lower confidence bound on the mean `lam` of a sum T of independent [0, 1] variables, from T = a.

    Rule (Chernoff's upper tail): `P[T >= a] <= exp(-lam) (e lam / a)^a` for `a > lam`, so `L` is the root
    `lam < a` of `a ln(a / lam) - (a - lam) = ln(1 / delta)` (L = 0 when a = 0), and `P[lam < L] <= delta`.

    >>> chernoff_poisson_lower(0.0, 0.01)
    0.0
    >>> 0.0 < chernoff_poisson_lower(20.0, 0.01) < 20.0
    True
    """
    a = float(a)
    if not (math.isfinite(a) and a >= 0):
        raise InputError(f"the observed sum must be finite and >= 0, got {a!r}")
    t = math.log(1.0 / _delta(delta))
    if a == 0.0:
        return 0.0
    g = lambda lam: a * math.log(a / lam) - (a - lam) - t  # noqa: E731  (decreasing on (0, a), g(a) = -t)
    lo = a * math.exp(-(t + a) / a) if a > 0 else 0.0          # g(lo) >= 0: a ln(a/lo) = t + a >= t + a - lo
    if g(lo) < 0:
        return 0.0
    root = brentq(g, lo, a, xtol=1e-15 * a, rtol=1e-14)
    return float(root) * (1.0 - 1e-12)


def weighted_bernoulli_upper(weighted_sum: float, scale: float, delta: float) -> float:
    """Upper confidence bound on `mu = sum_k w_k p_k` from a fixed-allocation stratified sample.

    `weighted_sum` is `S = sum_k (w_k / n_k) K_k` (K_k hits among n_k draws of stratum k) and `scale` is
    `c = max_k w_k / n_k` over the sampled strata. Rule: `T = S / c` is a sum of independent [0, 1]
    variables with mean `mu / c`, so `mu <= c * chernoff_poisson_upper(S / c, delta)` with confidence
    1 - delta. With proportional allocation (`w_k / n_k = W / N` for every k) it is the Poisson form of the
    pooled bound on `W * p`.

    >>> round(weighted_bernoulli_upper(0.0, 1e-4, 1e-6), 6)    # 1e-4 * ln(1e6)
    0.001382
    """
    c = float(scale)
    if not (math.isfinite(c) and c > 0):
        raise InputError(f"scale must be positive, got {scale!r}")
    s = float(weighted_sum)
    if not (math.isfinite(s) and s >= 0):
        raise InputError(f"weighted_sum must be finite and >= 0, got {weighted_sum!r}")
    return c * chernoff_poisson_upper(s / c, delta)


def weighted_bernoulli_lower(weighted_sum: float, scale: float, delta: float) -> float:
    """Lower confidence bound on `mu = sum_k w_k p_k`: `c * chernoff_poisson_lower(S / c, delta)` (see the upper one).

    >>> weighted_bernoulli_lower(0.0, 1e-4, 1e-6)
    0.0
    """
    c = float(scale)
    if not (math.isfinite(c) and c > 0):
        raise InputError(f"scale must be positive, got {scale!r}")
    s = float(weighted_sum)
    if not (math.isfinite(s) and s >= 0):
        raise InputError(f"weighted_sum must be finite and >= 0, got {weighted_sum!r}")
    return c * chernoff_poisson_lower(s / c, delta)


def allocate(total: int, shares: ArrayLike, minimum: int = 0) -> np.ndarray:
    """Split `total` samples over strata in proportion to `shares` (largest remainders), each at least `minimum`.

    Returns integer counts summing to `total`. Needs `total >= minimum * len(shares)`; a stratum with share 0
    gets exactly `minimum`.

    >>> allocate(10, [1.0, 1.0, 2.0]).tolist()
    [3, 2, 5]
    >>> allocate(5, [0.0, 1.0], minimum=1).tolist()
    [1, 4]
    """
    s = np.asarray(shares, dtype=np.float64)
    if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s < 0):
        raise InputError(f"shares must be a non-empty 1-D array of finite values >= 0, got {shares!r}")
    total, minimum = int(total), int(minimum)
    free = total - minimum * s.size
    if free < 0:
        raise InputError(f"cannot give {s.size} strata at least {minimum} samples each from {total}")
    out = np.full(s.size, minimum, dtype=np.int64)
    if free == 0:
        return out
    p = s / s.sum() if s.sum() > 0 else np.full(s.size, 1.0 / s.size)
    exact = free * p
    base = np.floor(exact).astype(np.int64)
    rest = free - int(base.sum())
    if rest > 0:
        order = np.argsort(-(exact - base), kind="stable")
        base[order[:rest]] += 1
    return out + base


def weighted_quantile_upper(
    values: ArrayLike, scale_per_value: ArrayLike, scale: float, p: float, delta: float, upper_limit: float = math.inf
) -> float:
    """Upper bound `t` with `Pr[X > t] <= p` (mass, not a conditional probability) from a fixed-allocation sample.

    `values[i]` is a draw of X in its stratum and `scale_per_value[i] = w_k / n_k` for that stratum, so
    `S(t) = sum_i scale_i [values_i > t]` estimates the mass `mu(t) = Pr[X > t]` without bias; `scale` is
    `c = max_k w_k / n_k`. Rule: return the smallest candidate t (0 or a sample value) with
    `c * chernoff_poisson_upper(S(t) / c, delta) <= p`, or `upper_limit` when none qualifies. Valid for the
    data-chosen t: if `mu(t) > p`, the fixed level `t0 = inf{t: mu(t) <= p}` has `Pr[X >= t0] >= p` and the
    count above it is at most `S(t)`, so the bound for that fixed quantity failed (probability <= delta).

    >>> weighted_quantile_upper([0.1, 0.2, 0.3], [1e-3] * 3, 1e-3, 0.5, 0.05)
    0.0
    """
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    sc = np.broadcast_to(np.asarray(scale_per_value, dtype=np.float64), x.shape)
    if not (float(p) > 0):
        raise InputError(f"p must be positive, got {p!r}")
    c = float(scale)

    def ok(s_above: float) -> bool:
        return weighted_bernoulli_upper(max(s_above, 0.0), c, delta) <= p

    if x.size == 0:
        return 0.0 if ok(0.0) else float(upper_limit)
    if ok(float(sc[x > 0].sum())):
        return 0.0
    order = np.argsort(-x, kind="stable")
    xs, cum = x[order], np.cumsum(sc[order])
    first = np.searchsorted(-xs, -xs, side="left")           # first index holding the value xs[j] (ties)
    s_at = np.where(first > 0, cum[np.maximum(first - 1, 0)], 0.0)   # S(xs[j]): mass strictly above xs[j]
    if not ok(float(s_at[0])):
        return float(upper_limit)
    lo, hi = 0, xs.size - 1                                   # ok(s_at[lo]) holds; s_at is non-decreasing in j
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if ok(float(s_at[mid])):
            lo = mid
        else:
            hi = mid - 1
    return float(min(xs[lo], upper_limit))
