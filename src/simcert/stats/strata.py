"""Strata for SimCert: partition a region by input splitting, prove what the engine can, keep the rest.

`partition_region` bisects sub-boxes of the region (along the input with the largest `|coefficient| * width`
of the engine's linear bound on the unresolved rows, the smear rule of `search/bab.py`) and sorts every leaf
into one of three kinds by the sound bounds of the rows `g_k - f_k`:

- **proven**:  every row in `[-eps, eps]`, so `D(x) = max_k |g_k(x) - f_k(x)| <= eps` on the whole leaf;
- **refuted**: some row entirely above eps or below -eps, so every point of the leaf violates;
- **open**:    neither; these are the strata that get sampled.

That is the eps-equivalence rule (`criteria.EpsCriterion`); `criteria.Top1Criterion` sorts leaves by top-1
agreement instead, from extra rows `f_c - f_j` and `g_c - g_j` bounded in the same engine call.

Heaviest open leaves are split first, until the time limit, the strata limit, or no open leaf is left. The
partition never looks at samples, so it can be chosen before (and independently of) the sampling.

Each leaf carries its probability mass under the input distribution (`box_log_mass`: volume fraction for
the uniform distribution, a product of truncated-normal CDF differences for a Gaussian) and the deterministic
range `[dev_lower, dev_upper]` of the deviation D on it. `draw_in_strata` samples the distribution
conditioned on a stratum (uniform or truncated Gaussian on the sub-box; exact, no rejection).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from scipy.special import log_ndtr

from ..errors import InputError
from ..search.problem import BoundFn
from ..twin import Twin
from .criteria import Criterion, EpsCriterion
from .samplers import Sampler, TruncatedGaussian, UniformBox, truncated_standard_normal_ppf

MIN_OPEN_MASS = 1e-12
"""Splitting stops once the open strata hold less mass than this (far below any rate worth certifying)."""

__all__ = ["Partition", "box_log_mass", "deviation_range", "partition_region", "draw_in_strata", "probe_engines"]


# --------------------------------------------------------------------------------------------- masses


def _log_normal_interval(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Phi(b) - Phi(a)) for a <= b, stable in both tails (mirrored to the lower tail when a >= 0)."""
    flip = a >= 0
    lo, hi = np.where(flip, -b, a), np.where(flip, -a, b)
    l_hi, l_lo = log_ndtr(hi), log_ndtr(lo)
    with np.errstate(divide="ignore"):
        return l_hi + np.log(-np.expm1(l_lo - l_hi))


def box_log_mass(sampler: Sampler, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """log of the probability mass of each sub-box (K, n) under `sampler` (a distribution on the region).

    Uniform: `log w_k = sum_i log((hi_ki - lo_ki) / (U_i - L_i))` over the coordinates with `U_i > L_i`.
    Truncated Gaussian (independent coordinates): `log w_k = sum_i log[(Phi(b_ki) - Phi(a_ki)) /
    (Phi(B_i) - Phi(A_i))]` with `a = (lo - c) / sigma` etc. Sub-boxes must lie inside the region.

    >>> s = UniformBox([0.0, 0.0], [1.0, 2.0])
    >>> np.exp(box_log_mass(s, np.array([[0.0, 0.0]]), np.array([[0.5, 1.0]]))).round(6).tolist()
    [0.25]
    """
    lo = np.asarray(lower, dtype=np.float64).reshape(len(lower), -1)
    hi = np.asarray(upper, dtype=np.float64).reshape(len(upper), -1)
    big_lo, big_hi = sampler.lower.reshape(-1), sampler.upper.reshape(-1)
    active = big_hi > big_lo
    if isinstance(sampler, UniformBox):
        width = (hi - lo)[:, active]
        with np.errstate(divide="ignore"):
            return np.sum(np.log(width) - np.log(big_hi - big_lo)[active], axis=1)
    if isinstance(sampler, TruncatedGaussian):
        c, s = sampler.center.reshape(-1)[active], sampler.sigma.reshape(-1)[active]
        num = _log_normal_interval((lo[:, active] - c) / s, (hi[:, active] - c) / s)
        den = _log_normal_interval((big_lo[active] - c) / s, (big_hi[active] - c) / s)
        return np.sum(num - den, axis=1)
    raise InputError(f"stratified sampling supports uniform and Gaussian distributions, not {type(sampler).__name__}")


def draw_in_strata(
    sampler: Sampler, lower: np.ndarray, upper: np.ndarray, index: np.ndarray, generator: np.random.Generator
) -> np.ndarray:
    """One draw from the distribution conditioned on stratum `index[i]`, for each i: float64 (B, n).

    Uniform: uniform on the sub-box. Truncated Gaussian: the same Gaussian truncated to the sub-box (the
    conditional law of independent coordinates on a box), by the inverse CDF.
    """
    if lower.shape[0] == 1:                               # one stratum: broadcast instead of gathering
        lo, hi = lower[0], upper[0]
    else:
        lo, hi = lower[index], upper[index]
    u = generator.random((index.size, lower.shape[1]))
    if isinstance(sampler, UniformBox):
        u *= hi - lo                                      # in place: batches of wide inputs are large
        u += lo
        return np.clip(u, lo, hi, out=u)
    if isinstance(sampler, TruncatedGaussian):
        c, s = sampler.center.reshape(-1), sampler.sigma.reshape(-1)
        z = truncated_standard_normal_ppf(u, (lo - c) / s, (hi - c) / s)
        return np.clip(c + s * z, lo, hi)
    raise InputError(f"stratified sampling supports uniform and Gaussian distributions, not {type(sampler).__name__}")


def deviation_range(row_lower: np.ndarray, row_upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bounds of `D = max_k |r_k|` on a box from bounds `[l_k, u_k]` of each row r_k: (B, K) -> (B,), (B,).

    Rule: `|r_k| <= max(|l_k|, |u_k|)` and `|r_k| >= max(l_k, -u_k, 0)`; D takes the max over rows of each.

    >>> lo, hi = deviation_range(np.array([[-0.1, 0.2]]), np.array([[0.3, 0.5]]))
    >>> float(lo[0]), float(hi[0])
    (0.2, 0.5)
    """
    lo, hi = np.asarray(row_lower, np.float64), np.asarray(row_upper, np.float64)
    d_hi = np.maximum(np.abs(lo), np.abs(hi)).max(axis=1)
    d_lo = np.maximum(np.maximum(lo, -hi), 0.0).max(axis=1)
    return d_lo, d_hi


# ------------------------------------------------------------------------------------------ partition


@dataclass
class Partition:
    """The strata of a region. Masses are probabilities under the input distribution (they sum to 1).

    open_*:    the sampled strata (boxes (m, n), log-masses, deviation range, per-row status).
    proven_*:  mass and deviation upper bound of each proven leaf (kept for quantile and mean bounds).
    refuted_*: boxes, masses and deviation ranges of leaves where every point violates.
    row_open:  (m, K) / row_refuted: (r, K) whether each output row is unresolved (open) or not proven (refuted)
               on the leaf; per-output rates use them.
    root_dev:  deterministic range of D over the whole region (from the first engine call).
    row_lower, row_upper: (K,) certified bounds of each row over the whole region (min/max over all leaves).
    """

    open_lower: np.ndarray
    open_upper: np.ndarray
    open_log_mass: np.ndarray
    open_dev_lower: np.ndarray
    open_dev_upper: np.ndarray
    proven_mass: np.ndarray
    proven_dev_upper: np.ndarray
    refuted_lower: np.ndarray
    refuted_upper: np.ndarray
    refuted_mass: np.ndarray
    refuted_dev_lower: np.ndarray
    refuted_dev_upper: np.ndarray
    refuted_row_unproven: np.ndarray
    root_dev: tuple[float, float]
    row_lower: np.ndarray
    row_upper: np.ndarray
    boxes_bounded: int = 0
    steps: int = 0
    time_s: float = 0.0
    stop_reason: str = ""
    engine: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def open_mass(self) -> np.ndarray:
        return np.exp(self.open_log_mass)

    @property
    def open_total(self) -> float:
        """W_U: the mass of the open (sampled) strata."""
        return float(self.open_mass.sum())

    @property
    def proven_total(self) -> float:
        return float(self.proven_mass.sum())

    @property
    def refuted_total(self) -> float:
        return float(self.refuted_mass.sum())

    @property
    def n_open(self) -> int:
        return int(self.open_lower.shape[0])

    @property
    def n_strata(self) -> int:
        return self.n_open + int(self.proven_mass.size) + int(self.refuted_mass.size)


def _split_dims(
    lo: np.ndarray, hi: np.ndarray, row_lo: np.ndarray, row_hi: np.ndarray, coeffs: np.ndarray | None,
    criterion: Criterion,
) -> np.ndarray:
    """The input to bisect per box: largest `sum_k |a_k| * width` over unresolved rows (else the widest)."""
    width = hi - lo
    if coeffs is not None:
        unresolved = criterion.unresolved(row_lo, row_hi).astype(np.float64)       # (B, K)
        score = np.einsum("bkn,bk->bn", np.abs(coeffs), unresolved) * width
        score = np.where(width > 0, score + 1e-12 * width, -1.0)
        return score.argmax(axis=1)
    return width.argmax(axis=1)


def partition_region(
    twin: Twin,
    c1: torch.Tensor,
    c2: torch.Tensor,
    criterion: float | Criterion,
    lower: np.ndarray,
    upper: np.ndarray,
    sampler: Sampler,
    bound_fn: BoundFn,
    *,
    time_limit: float,
    max_strata: int = 20_000,
    max_boxes: int | None = None,
    decide_rate: float | None = None,
    split_batch: int = 64,
    prove: bool = True,
    engine_name: str = "",
    progress: Callable[["Partition"], None] | None = None,
) -> Partition:
    """Partition `[lower, upper]` into proven, refuted and open strata for the rows `c1 . f + c2 . g`.

    `criterion` decides leaves (`criteria.EpsCriterion`, or a float eps for it; `criteria.Top1Criterion`);
    the rows are `criterion.rows(...)`: first the deviation rows g_k - f_k, which give each leaf's deviation
    range, then the criterion's own rows (none for eps).

    Rule: bound the root; then repeatedly take the `split_batch` heaviest open leaves, bisect each along
    its split input, bound the children (one engine call) and classify them (see the module docstring).
    Stops at `time_limit` seconds, at `max_strata` open leaves, after `max_boxes` bounded boxes (a
    reproducible limit, unlike time), when the open mass falls below `MIN_OPEN_MASS`, or when none is open;
    with `decide_rate`, also once the proofs alone decide `rate <= decide_rate` (open + refuted mass below
    it) or its opposite (refuted mass above it).
    With `prove=False` every leaf stays open (the "no proof" reference: pure stratified sampling).
    Guarantee: proven and refuted leaves are sound (the engine's bounds are); the masses of all leaves sum to 1.
    """
    t0 = time.perf_counter()
    n = lower.size
    k_rows = int(c1.shape[0])
    if not hasattr(criterion, "classify"):
        criterion = EpsCriterion(float(criterion))      # type: ignore[arg-type]
    crit: Criterion = criterion                         # type: ignore[assignment]
    k_dev = int(getattr(crit, "k_dev", k_rows))         # deviation rows come first

    cost = [0.0, 0]                                       # engine seconds and boxes so far (step sizing)

    def bound(lo: np.ndarray, hi: np.ndarray):
        t_call = time.perf_counter()
        with torch.no_grad():
            res = bound_fn(twin, torch.from_numpy(np.array(lo)), torch.from_numpy(np.array(hi)), c1, c2)
        cost[0] += time.perf_counter() - t_call
        cost[1] += lo.shape[0]
        coeffs = None if res.input_coeffs is None else res.input_coeffs.detach().cpu().numpy()
        return res.lower.detach().cpu().numpy(), res.upper.detach().cpu().numpy(), coeffs

    lo0 = np.asarray(lower, np.float64).reshape(1, n)
    hi0 = np.asarray(upper, np.float64).reshape(1, n)
    r_lo, r_hi, coeffs = bound(lo0, hi0)
    d_lo, d_hi = deviation_range(r_lo[:, :k_dev], r_hi[:, :k_dev])
    empty_boxes = np.zeros((0, n))
    part = Partition(
        open_lower=lo0, open_upper=hi0, open_log_mass=np.zeros(1), open_dev_lower=d_lo, open_dev_upper=d_hi,
        proven_mass=np.zeros(0), proven_dev_upper=np.zeros(0),
        refuted_lower=empty_boxes, refuted_upper=empty_boxes, refuted_mass=np.zeros(0),
        refuted_dev_lower=np.zeros(0), refuted_dev_upper=np.zeros(0), refuted_row_unproven=np.zeros((0, k_dev), bool),
        root_dev=(float(d_lo[0]), float(d_hi[0])), row_lower=r_lo[0].copy(), row_upper=r_hi[0].copy(),
        boxes_bounded=1, engine=engine_name,
    )
    done_rlo, done_rhi = np.full(k_rows, np.inf), np.full(k_rows, -np.inf)   # over finished leaves
    # open-leaf state: split dimension of each open leaf (from its own bound's coefficients)
    o_dim = _split_dims(lo0, hi0, r_lo, r_hi, coeffs, crit)
    o_lo, o_hi, o_lm, o_dlo, o_dhi, o_rlo, o_rhi = lo0, hi0, np.zeros(1), d_lo, d_hi, r_lo, r_hi
    proven_lm: list[np.ndarray] = []
    proven_dev: list[np.ndarray] = []
    ref: list[tuple[np.ndarray, ...]] = []

    def take(mask: np.ndarray, lo: np.ndarray, hi: np.ndarray, lm: np.ndarray, dlo: np.ndarray, dhi: np.ndarray,
             rlo: np.ndarray, rhi: np.ndarray) -> None:
        """Move the resolved leaves out of the open set (marking them in `mask`) into the proven/refuted lists."""
        nonlocal done_rlo, done_rhi
        proven, refuted = crit.classify(rlo, rhi)
        if not prove:
            return
        if proven.any():
            proven_lm.append(lm[proven])
            proven_dev.append(dhi[proven])
        refuted &= ~proven
        if refuted.any():
            unproven_row = crit.unproven_outputs(rlo[refuted], rhi[refuted], k_dev)
            ref.append((lo[refuted], hi[refuted], lm[refuted], dlo[refuted], dhi[refuted], unproven_row))
        mask |= proven | refuted
        if mask.any():
            done_rlo = np.minimum(done_rlo, rlo[mask].min(axis=0))
            done_rhi = np.maximum(done_rhi, rhi[mask].max(axis=0))

    done0 = np.zeros(1, bool)
    take(done0, lo0, hi0, np.zeros(1), d_lo, d_hi, r_lo, r_hi)
    keep = ~done0
    o_lo, o_hi, o_lm, o_dlo, o_dhi, o_dim = o_lo[keep], o_hi[keep], o_lm[keep], o_dlo[keep], o_dhi[keep], o_dim[keep]
    o_rlo, o_rhi = o_rlo[keep], o_rhi[keep]
    stop = "all leaves resolved" if o_lo.shape[0] == 0 else ""
    while not stop:
        if time.perf_counter() - t0 >= time_limit:
            stop = "time limit"
            break
        if o_lo.shape[0] >= max_strata:
            stop = "strata limit"
            break
        if max_boxes is not None and part.boxes_bounded >= max_boxes:
            stop = "box limit"
            break
        w_open = float(np.exp(o_lm).sum())
        if w_open <= MIN_OPEN_MASS:
            stop = "open mass negligible"
            break
        if decide_rate is not None:
            w_ref = float(sum(np.exp(r[2]).sum() for r in ref))
            if w_ref + w_open <= decide_rate or w_ref > decide_rate:
                stop = "rate decided by the proofs"
                break
        splittable = (o_hi - o_lo)[np.arange(o_lo.shape[0]), o_dim] > 0
        if not splittable.any():
            stop = "leaves cannot be split further"
            break
        cand = np.flatnonzero(splittable)
        b = min(split_batch, cand.size, max(1, max_strata - o_lo.shape[0]))
        if max_boxes is not None:
            b = max(1, min(b, (max_boxes - part.boxes_bounded) // 2))
        # keep one step within a quarter of the time left (high-dimensional boxes are slow to bound)
        left = time_limit - (time.perf_counter() - t0)
        per_box = cost[0] / max(cost[1], 1)
        if per_box > 0 and math.isfinite(left):
            b = max(1, min(b, int(0.25 * left / (2.0 * per_box))))
        pick = cand[np.argpartition(-o_lm[cand], b - 1)[:b]] if cand.size > b else cand
        rest = np.ones(o_lo.shape[0], bool)
        rest[pick] = False
        p_lo, p_hi, p_dim = o_lo[pick], o_hi[pick], o_dim[pick]
        rows = np.arange(pick.size)
        mid = (p_lo[rows, p_dim] + p_hi[rows, p_dim]) / 2.0
        left_hi, right_lo = p_hi.copy(), p_lo.copy()
        left_hi[rows, p_dim] = mid
        right_lo[rows, p_dim] = mid
        c_lo = np.concatenate([p_lo, right_lo])
        c_hi = np.concatenate([left_hi, p_hi])
        c_lm = box_log_mass(sampler, c_lo, c_hi)
        rlo, rhi, coeffs = bound(c_lo, c_hi)
        part.boxes_bounded += c_lo.shape[0]
        dlo, dhi = deviation_range(rlo[:, :k_dev], rhi[:, :k_dev])
        done = np.zeros(c_lo.shape[0], bool)
        take(done, c_lo, c_hi, c_lm, dlo, dhi, rlo, rhi)
        # children with zero mass (a split on a zero-probability face) need no sampling: drop them
        massless = ~np.isfinite(c_lm) & ~done
        if massless.any():
            done_rlo = np.minimum(done_rlo, rlo[massless].min(axis=0))
            done_rhi = np.maximum(done_rhi, rhi[massless].max(axis=0))
            done |= massless
        nd = ~done
        c_dim = _split_dims(c_lo[nd], c_hi[nd], rlo[nd], rhi[nd], None if coeffs is None else coeffs[nd], crit)
        o_lo = np.concatenate([o_lo[rest], c_lo[nd]])
        o_hi = np.concatenate([o_hi[rest], c_hi[nd]])
        o_lm = np.concatenate([o_lm[rest], c_lm[nd]])
        o_dlo = np.concatenate([o_dlo[rest], dlo[nd]])
        o_dhi = np.concatenate([o_dhi[rest], dhi[nd]])
        o_dim = np.concatenate([o_dim[rest], c_dim])
        o_rlo = np.concatenate([o_rlo[rest], rlo[nd]])
        o_rhi = np.concatenate([o_rhi[rest], rhi[nd]])
        part.steps += 1
        if o_lo.shape[0] == 0:
            stop = "all leaves resolved"
        if progress is not None:
            _rows(part, done_rlo, done_rhi, o_rlo, o_rhi)
            _fill(part, o_lo, o_hi, o_lm, o_dlo, o_dhi, proven_lm, proven_dev, ref, k_dev)
            part.time_s = time.perf_counter() - t0
            progress(part)
    _rows(part, done_rlo, done_rhi, o_rlo, o_rhi)
    _fill(part, o_lo, o_hi, o_lm, o_dlo, o_dhi, proven_lm, proven_dev, ref, k_dev)
    part.stop_reason = stop
    part.time_s = time.perf_counter() - t0
    return part


def _rows(part: Partition, done_lo: np.ndarray, done_hi: np.ndarray, o_rlo: np.ndarray, o_rhi: np.ndarray) -> None:
    """Region-wide row bounds: min/max over finished and open leaves (the leaves cover the region)."""
    lo, hi = done_lo, done_hi
    if o_rlo.shape[0]:
        lo, hi = np.minimum(lo, o_rlo.min(axis=0)), np.maximum(hi, o_rhi.max(axis=0))
    part.row_lower, part.row_upper = lo, hi


def _fill(part: Partition, o_lo, o_hi, o_lm, o_dlo, o_dhi, proven_lm, proven_dev, ref, k_rows: int) -> None:
    n = o_lo.shape[1] if o_lo.ndim == 2 else part.open_lower.shape[1]
    part.open_lower, part.open_upper, part.open_log_mass = o_lo, o_hi, o_lm
    part.open_dev_lower, part.open_dev_upper = o_dlo, o_dhi
    part.proven_mass = np.exp(np.concatenate(proven_lm)) if proven_lm else np.zeros(0)
    part.proven_dev_upper = np.concatenate(proven_dev) if proven_dev else np.zeros(0)
    if ref:
        part.refuted_lower = np.concatenate([r[0] for r in ref])
        part.refuted_upper = np.concatenate([r[1] for r in ref])
        part.refuted_mass = np.exp(np.concatenate([r[2] for r in ref]))
        part.refuted_dev_lower = np.concatenate([r[3] for r in ref])
        part.refuted_dev_upper = np.concatenate([r[4] for r in ref])
        part.refuted_row_unproven = np.concatenate([r[5] for r in ref])
    else:
        part.refuted_lower = part.refuted_upper = np.zeros((0, n))
        part.refuted_mass = part.refuted_dev_lower = part.refuted_dev_upper = np.zeros(0)
        part.refuted_row_unproven = np.zeros((0, k_rows), bool)


def probe_engines(
    twin: Twin,
    c1: torch.Tensor,
    c2: torch.Tensor,
    lower: np.ndarray,
    upper: np.ndarray,
    engines: dict[str, BoundFn],
    boxes: int = 16,
    seed: int = 0,
) -> tuple[str, dict[str, dict[str, float]]]:
    """Pick the engine whose deviation bounds are tightest on a probe of sub-boxes (measure, then choose).

    Probe: `boxes` sub-boxes with 1/4 and as many with 1/8 of the region's width, at seeded random places;
    score: the median over the probe of each engine's upper bound on D (ties: the faster engine). The
    partition splits down to boxes of about this size, where the tighter engine proves more per split.
    Returns the chosen name and, per engine, its median bound and time.
    """
    rng = np.random.default_rng(seed)
    lo_r, hi_r = np.asarray(lower, np.float64).reshape(-1), np.asarray(upper, np.float64).reshape(-1)
    parts_lo, parts_hi = [], []
    for div in (4.0, 8.0):
        w = (hi_r - lo_r) / div
        c = lo_r + w / 2 + rng.random((boxes, lo_r.size)) * (hi_r - lo_r - w)
        parts_lo.append(c - w / 2)
        parts_hi.append(c + w / 2)
    p_lo, p_hi = np.concatenate(parts_lo), np.concatenate(parts_hi)
    results: dict[str, dict[str, float]] = {}
    for name, fn in engines.items():
        t0 = time.perf_counter()
        with torch.no_grad():
            res = fn(twin, torch.from_numpy(p_lo), torch.from_numpy(p_hi), c1, c2)
        _, d_hi = deviation_range(res.lower.detach().cpu().numpy(), res.upper.detach().cpu().numpy())
        results[name] = {"median_deviation_bound": float(np.median(d_hi)), "time_s": time.perf_counter() - t0}
    best = min(results, key=lambda k: (results[k]["median_deviation_bound"], results[k]["time_s"]))
    return best, results
