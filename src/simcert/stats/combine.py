"""Turning samples into the certificate's bounds: the plan of a certification run and one look at the data.

`Plan` holds the partition (proven, refuted and open strata), the method and the allocation; `Plan.look`
computes, from the running sums of a `SampleAccumulator` and an error share delta, every bound of the
certificate (`Look`). The rules and why they hold are in the docstring of `stats.certify`; in short, with
`W_V` refuted and `W_U` open mass:

- simcert, proportional: rate `W_V + W_U CP(K, N)`; mean det + `W_U` EB(open range); quantile det at
  p_det and the open strata's order statistic for the rest of p.
- simcert, neyman: rate `W_V` + Chernoff bound on the weighted count; mean det + stratified Bernstein with the
  ranges B_k; quantile det at p_det and the weighted Chernoff quantile for the rest.
- clopper-pearson / hoeffding / bernstein: rate CP / Hoeffding / empirical Bernstein on the 0/1 violations;
  mean EB (Hoeffding for "hoeffding") with the region's deterministic range; quantile the order statistic.

"det" is the proven and refuted leaves' deterministic deviation bounds weighted by their masses; p_det is
`min(p/2, their mass)`, fixed before sampling.

With `target="top1"` the "violation" is a top-1 disagreement (the partition proved and refuted top-1
agreement, the evaluator counted disagreements): the same rate rules give the top-1 disagreement rate, which
is also reported as `Look.top1`; per-output eps rates do not apply (empty).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .accumulate import SampleAccumulator
from .bounds import (
    SampleStats,
    clopper_pearson_lower,
    clopper_pearson_upper,
    empirical_bernstein_upper,
    hoeffding_upper,
    quantile_upper,
    stratified_bernstein_upper,
)
from .strata import Partition
from .weighted import weighted_bernoulli_lower, weighted_bernoulli_upper, weighted_quantile_upper

__all__ = ["Plan", "Look", "rate_bound"]

@dataclass
class Look:
    """Every bound computed at one look at the data (n samples, error share delta)."""

    n: int
    delta: float
    rate_upper: float
    rate_lower: float
    per_output: dict[int, float]
    top1: float | None
    quantile: float
    mean: float
    violations: int = 0
    per_stratum: list[int] = field(default_factory=list)


def rate_bound(method: str, k: float, n: int, delta: float) -> float:
    """Upper bound on a Bernoulli rate from k hits in n draws by the plain method's rule."""
    if n == 0:
        return 1.0
    if method == "hoeffding":
        return float(hoeffding_upper(k / n, n, delta))
    if method == "bernstein":
        if n < 2:
            return 1.0
        mean = k / n
        var = mean * (1.0 - mean) * n / (n - 1.0)
        return float(min(1.0, empirical_bernstein_upper(SampleStats(mean, var, n), delta, 1.0)))
    return float(clopper_pearson_upper(k, n, delta))


class Plan:
    """Which strata are sampled, how, and how the samples turn into bounds."""

    def __init__(self, part: Partition, method: str, allocation: str, quantile_p: float, target: str = "eps") -> None:
        self.part = part
        self.target = target
        self.method = method
        self.allocation = allocation
        self.p = quantile_p
        self.mass = part.open_mass
        self.w_u = float(self.mass.sum())
        self.w_v = part.refuted_total
        self.shares = self.mass * np.maximum(part.open_dev_upper - part.open_dev_lower, 1e-300)
        self.probs = self.mass / self.w_u if self.w_u > 0 else self.mass

    # ---------------------------------------------------------------------------------- deterministic
    def det_mean(self) -> float:
        """Deterministic part of the mean: proven and refuted strata at their deviation upper bounds."""
        p = self.part
        return float(p.proven_mass @ p.proven_dev_upper + p.refuted_mass @ p.refuted_dev_upper)

    def det_quantile(self, p_det: float) -> float:
        """Smallest t with (mass of proven/refuted leaves whose D upper bound exceeds t) <= p_det."""
        part = self.part
        dev = np.concatenate([part.proven_dev_upper, part.refuted_dev_upper])
        mass = np.concatenate([part.proven_mass, part.refuted_mass])
        if dev.size == 0 or mass.sum() <= p_det:
            return 0.0
        order = np.argsort(-dev)
        cum = np.cumsum(mass[order])                        # mass of leaves with D_max >= dev[order][j]
        j = int(np.searchsorted(cum, p_det * (1 - 1e-12), side="right"))   # leaves 0..j-1 fit into p_det
        return float(dev[order][j]) if j < dev.size else 0.0

    def p_det(self) -> float:
        """The share of the quantile's p given to the proven/refuted leaves: p/2, or their whole mass if less.

        Chosen from the partition alone (before any sample), so the split is valid."""
        det_mass = self.part.proven_total + self.part.refuted_total
        return min(self.p / 2.0, det_mass)

    def per_output_det(self, indices: list[int]) -> dict[int, float]:
        p = self.part
        return {k: float(p.refuted_mass @ p.refuted_row_unproven[:, j]) for j, k in enumerate(indices)}

    # --------------------------------------------------------------------------------- with samples
    def look(self, acc: SampleAccumulator, delta: float, indices: list[int]) -> Look:
        """All bounds from the samples so far, each at error share `delta`."""
        lk = self._look(acc, delta, indices)
        if self.target == "top1":
            lk.per_output = {}
            lk.top1 = lk.rate_upper
        lk.violations = acc.violations
        lk.per_stratum = acc.n.tolist() if self.part.n_open > 0 else []
        return lk

    def _look(self, acc: SampleAccumulator, delta: float, indices: list[int]) -> Look:
        n = acc.total
        part = self.part
        det_out = self.per_output_det(indices)
        if self.w_u == 0.0:
            mean = self.det_mean()
            return Look(n, delta, self.w_v, self.w_v, det_out, None, self.det_quantile(self.p), mean)
        if n == 0:
            upper_q = float(max(part.open_dev_upper.max(), self.det_quantile(self.p)))
            mean = self.det_mean() + float(self.mass @ part.open_dev_upper)
            return Look(0, delta, min(1.0, self.w_v + self.w_u), self.w_v,
                         {k: det_out[k] + self.w_u for k in indices}, None if self.method == "simcert" else 1.0,
                         upper_q, mean)
        if self.method != "simcert":
            return self._plain(acc, delta, indices)
        if self.allocation == "neyman":
            return self._neyman(acc, delta, indices, det_out)
        # proportional: i.i.d. draws from the distribution conditioned on the open strata
        k = acc.violations
        rate_u = self.w_v + self.w_u * float(clopper_pearson_upper(k, n, delta))
        rate_l = self.w_v + self.w_u * float(clopper_pearson_lower(k, n, delta))
        per_out = {
            kk: det_out[kk] + self.w_u * float(clopper_pearson_upper(int(acc.hits_out[:, j].sum()), n, delta))
            for j, kk in enumerate(indices)
        }
        lo_u, hi_u = float(part.open_dev_lower.min()), float(part.open_dev_upper.max())
        if n >= 2:
            eb = float(empirical_bernstein_upper(SampleStats(acc.mean, acc.variance, n), delta, hi_u - lo_u))
        else:
            eb = hi_u
        mean = self.det_mean() + self.w_u * min(eb, hi_u)
        p_det = self.p_det()
        t_det = self.det_quantile(p_det)
        p_u = (self.p - p_det) / self.w_u
        t_u = 0.0 if p_u >= 1.0 else float(quantile_upper(acc.deviations(), p_u, delta, upper_limit=hi_u))
        return Look(n, delta, min(rate_u, 1.0), rate_l, per_out, None, max(t_det, t_u), mean)

    def _plain(self, acc: SampleAccumulator, delta: float, indices: list[int]) -> Look:
        n, k = acc.total, acc.violations
        d_lo, d_hi = self.part.root_dev
        rate_u = rate_bound(self.method, k, n, delta)
        rate_l = float(clopper_pearson_lower(k, n, delta))
        per_out = {kk: rate_bound(self.method, int(acc.hits_out[:, j].sum()), n, delta) for j, kk in enumerate(indices)}
        top1 = rate_bound(self.method, int(acc.hits_top1.sum()), n, delta)
        if self.method == "hoeffding" or n < 2:
            mean = float(hoeffding_upper(acc.mean, n, delta, d_lo, d_hi)) if d_hi > d_lo else d_hi
        else:
            eb = empirical_bernstein_upper(SampleStats(acc.mean, acc.variance, n), delta, d_hi - d_lo)
            mean = float(min(d_hi, eb))
        q = float(quantile_upper(acc.deviations(), self.p, delta, upper_limit=d_hi))
        return Look(n, delta, rate_u, rate_l, per_out, top1, q, mean)

    def _neyman(self, acc: SampleAccumulator, delta: float, indices: list[int], det_out: dict[int, float]) -> Look:
        n_k = acc.n.astype(np.float64)
        sampled = n_k > 0
        if not np.all(sampled):
            raise AssertionError("Neyman allocation leaves no open stratum unsampled")
        scale_k = self.mass / n_k
        c = float(scale_k.max())
        s = float(scale_k @ acc.hits)
        rate_u = self.w_v + min(self.w_u, weighted_bernoulli_upper(s, c, delta))
        rate_l = self.w_v + weighted_bernoulli_lower(s, c, delta)
        per_out = {
            kk: det_out[kk] + min(self.w_u, weighted_bernoulli_upper(float(scale_k @ acc.hits_out[:, j]), c, delta))
            for j, kk in enumerate(indices)
        }
        part = self.part
        ranges = part.open_dev_upper - part.open_dev_lower
        means = np.clip(acc.dev_sum / n_k, part.open_dev_lower, part.open_dev_upper)
        sb = float(stratified_bernstein_upper(means, None, ranges, n_k, self.mass, delta))
        mean = self.det_mean() + min(sb, float(self.mass @ part.open_dev_upper))
        p_det = self.p_det()
        t_det = self.det_quantile(p_det)
        idx = acc.strata_of_samples()
        t_u = weighted_quantile_upper(acc.deviations(), scale_k[idx], c, self.p - p_det, delta,
                                      upper_limit=float(part.open_dev_upper.max()))
        return Look(acc.total, delta, min(rate_u, 1.0), rate_l, per_out, None, max(t_det, t_u), mean)

    def bound_names(self) -> dict[str, str]:
        names = self._bound_names()
        if self.target == "top1":
            names["rate"] = "top-1 disagreement: " + names["rate"]
        return names

    def _bound_names(self) -> dict[str, str]:
        if self.method == "simcert":
            if self.allocation == "neyman":
                return {
                    "rate": "refuted mass + Chernoff bound on the Neyman-stratified weighted count (proven strata 0)",
                    "mean": "deterministic (proven/refuted) + stratified Bernstein with per-stratum ranges",
                    "quantile": "deterministic (proven/refuted) at p/2 + weighted Chernoff quantile on the rest of p",
                }
            return {
                "rate": "refuted mass + open mass x Clopper-Pearson on the pooled proportional sample "
                        "(proven strata 0)",
                "mean": "deterministic (proven/refuted) + open mass x empirical Bernstein with the open strata's range",
                "quantile": "deterministic (proven/refuted) at p/2 + order statistic of the open strata "
                            "on the rest of p",
            }
        rate = {"clopper-pearson": "Clopper-Pearson", "hoeffding": "Hoeffding", "bernstein": "empirical Bernstein"}
        return {
            "rate": rate[self.method],
            "mean": "Hoeffding" if self.method == "hoeffding" else "empirical Bernstein",
            "quantile": "order statistic",
        }
