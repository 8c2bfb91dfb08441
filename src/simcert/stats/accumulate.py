"""Running per-stratum sums of sampled twin results (counts, violations, deviation moments, extremes).

One `SampleAccumulator` collects everything the certificate's bounds need from the samples, batch by batch,
without keeping the inputs: per-stratum sample and hit counts (overall, per output, top-1), per-stratum sums
of the deviation, pooled mean/variance (Chan et al.'s parallel update), every deviation value (float32,
rounded *up*, for the order-statistic quantile bounds), the positions of violating samples (for the
embedded plain-Monte-Carlo comparison) and a few confirmed violating inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .evaluate import SampleBatch

__all__ = ["SampleAccumulator", "Example"]


@dataclass(frozen=True)
class Example:
    """A sampled input whose violation was confirmed in float64 on both original networks."""

    x: np.ndarray
    f_out: np.ndarray
    g_out: np.ndarray
    deviation: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.x.tolist(), "f": self.f_out.tolist(), "g": self.g_out.tolist(), "deviation": self.deviation,
        }


def _round_up_f32(x: np.ndarray) -> np.ndarray:
    y = x.astype(np.float32)
    low = y.astype(np.float64) < x
    y[low] = np.nextafter(y[low], np.float32(np.inf))
    return y


@dataclass
class SampleAccumulator:
    """Sums over the samples drawn so far, for `m` strata and `k` checked outputs."""

    m: int
    k: int
    n: np.ndarray = field(init=False)
    hits: np.ndarray = field(init=False)
    hits_out: np.ndarray = field(init=False)
    hits_top1: np.ndarray = field(init=False)
    dev_sum: np.ndarray = field(init=False)
    total: int = 0
    mean: float = 0.0
    m2: float = 0.0
    rechecked: int = 0
    examples: list[Example] = field(default_factory=list)
    _dev: list[np.ndarray] = field(default_factory=list)
    _idx: list[np.ndarray] = field(default_factory=list)
    _viol_pos: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.n = np.zeros(self.m, np.int64)
        self.hits = np.zeros(self.m, np.int64)
        self.hits_out = np.zeros((self.m, self.k), np.int64)
        self.hits_top1 = np.zeros(self.m, np.int64)
        self.dev_sum = np.zeros(self.m)

    def add(self, index: np.ndarray, batch: SampleBatch) -> None:
        """Add a batch: `index[i]` is the stratum of sample i."""
        b = index.size
        if b == 0:
            return
        m = self.m
        self.n += np.bincount(index, minlength=m)
        self.hits += np.bincount(index, weights=batch.violated, minlength=m).astype(np.int64)
        for j in range(self.k):
            self.hits_out[:, j] += np.bincount(index, weights=batch.per_output[:, j], minlength=m).astype(np.int64)
        self.hits_top1 += np.bincount(index, weights=batch.top1, minlength=m).astype(np.int64)
        d = batch.deviation
        self.dev_sum += np.bincount(index, weights=d, minlength=m)
        # pooled mean and M2, merged batch-wise (Chan, Golub & LeVeque)
        bm = float(d.mean())
        bm2 = float(((d - bm) ** 2).sum())
        n_old = self.total
        tot = n_old + b
        delta = bm - self.mean
        self.mean += delta * b / tot
        self.m2 += bm2 + delta * delta * n_old * b / tot
        viol = np.flatnonzero(batch.violated)
        if viol.size:
            self._viol_pos.append(viol.astype(np.int64) + n_old)
        self.total = tot
        self.rechecked += batch.rechecked
        self._dev.append(_round_up_f32(d))
        if m > 1:
            self._idx.append(index.astype(np.int32))

    # ------------------------------------------------------------------------------------------ views
    @property
    def variance(self) -> float:
        """Unbiased pooled variance of the deviation (0 with fewer than 2 samples)."""
        return self.m2 / (self.total - 1) if self.total > 1 else 0.0

    @property
    def violations(self) -> int:
        return int(self.hits.sum())

    def deviations(self) -> np.ndarray:
        """Every sampled deviation (float32, rounded up), in sampling order."""
        return np.concatenate(self._dev) if self._dev else np.zeros(0, np.float32)

    def strata_of_samples(self) -> np.ndarray:
        """The stratum of every sample, in sampling order."""
        if self.m == 1:
            return np.zeros(self.total, np.int32)
        return np.concatenate(self._idx) if self._idx else np.zeros(0, np.int32)

    def violations_before(self, position: int) -> int:
        """How many of the first `position` samples violated."""
        if not self._viol_pos:
            return 0
        pos = np.concatenate(self._viol_pos)
        return int((pos < position).sum())
