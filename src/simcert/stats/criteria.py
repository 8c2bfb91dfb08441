"""What a stratum must satisfy to be proven or refuted: eps-equivalence or top-1 agreement.

`partition_region` bounds a stack of spec rows `c1 . f + c2 . g` on every leaf. The first `k_dev` rows are
always the deviation rows `g_k - f_k` of the checked outputs (their bounds give the deviation range of the
leaf, `strata.deviation_range`); a criterion may append rows of its own. From the bounds `[lo, hi]` of all
rows a criterion decides, per leaf:

- `EpsCriterion(eps)`: proven when every deviation row lies in `[-eps, eps]` (then `D <= eps` on the leaf),
  refuted when some row lies entirely above eps or below -eps (every point violates).
- `Top1Criterion(label, m)`: rows `f_c - f_j` and then `g_c - g_j` (j != c, `spec.top1_specs`) for the class
  c that f picks at the region's centre. Proven when every one of them has lower bound > 0 (f and g both
  pick c, uniquely, at every point: no disagreement); refuted when every f-row has lower bound > 0 and some
  g-row has upper bound < 0 (f picks c and g never does: every point disagrees). Leaves where f's class is
  not c everywhere are never proven here: they stay open and are sampled (sound, possibly loose).

`unresolved(lo, hi)` marks the rows that still block a decision; the split rule of `strata._split_dims`
weighs the engine's input coefficients of those rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..errors import InputError
from ..spec import top1_specs

__all__ = ["Criterion", "EpsCriterion", "Top1Criterion", "deviation_rows"]


def deviation_rows(indices: tuple[int, ...] | list[int], m: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows (C1, C2) = (-e_k, +e_k) of `g_k - f_k` for each checked output k: (K, m) each."""
    idx = list(indices)
    c2 = np.zeros((len(idx), m))
    c2[np.arange(len(idx)), idx] = 1.0
    return -c2, c2


class Criterion(Protocol):
    """Decides leaves from the bounds of their spec rows (see the module docstring)."""

    name: str

    def rows(self, dev_c1: np.ndarray, dev_c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """All spec rows: the deviation rows followed by the criterion's own."""
        ...

    def classify(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(proven (B,), refuted (B,)) from the bounds (B, R) of all rows."""
        ...

    def unresolved(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """(B, R) rows that still block a decision (drive the choice of the split input)."""
        ...

    def unproven_outputs(self, lo: np.ndarray, hi: np.ndarray, k_dev: int) -> np.ndarray:
        """(B, k_dev) for per-output violation rates: the output may violate somewhere on the leaf."""
        ...


@dataclass(frozen=True)
class EpsCriterion:
    """`max_k |g_k - f_k| <= eps` on the deviation rows (no extra rows)."""

    eps: float
    name: str = "eps-equivalence"

    def rows(self, dev_c1: np.ndarray, dev_c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return dev_c1, dev_c2

    def classify(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        proven = np.all((lo >= -self.eps) & (hi <= self.eps), axis=1)
        refuted = np.any((lo > self.eps) | (hi < -self.eps), axis=1)
        return proven, refuted & ~proven

    def unresolved(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        return (lo < -self.eps) | (hi > self.eps)

    def unproven_outputs(self, lo: np.ndarray, hi: np.ndarray, k_dev: int) -> np.ndarray:
        return ~((lo[:, :k_dev] >= -self.eps) & (hi[:, :k_dev] <= self.eps))


@dataclass(frozen=True)
class Top1Criterion:
    """Top-1 agreement `argmax g = argmax f` with f's class `label` at the region's centre (m outputs).

    The deviation rows come first (k_dev of them, fixed by `rows`), then `top1_specs(label, m)`.
    """

    label: int
    m: int
    k_dev: int
    name: str = "top1"

    def __post_init__(self) -> None:
        if self.m < 2:
            raise InputError(f"top-1 agreement needs at least 2 outputs, the model has {self.m}")

    def rows(self, dev_c1: np.ndarray, dev_c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if dev_c1.shape[0] != self.k_dev:
            raise InputError(f"expected {self.k_dev} deviation rows, got {dev_c1.shape[0]}")
        t1, t2 = top1_specs(self.label, self.m)
        return np.vstack([dev_c1, t1]), np.vstack([dev_c2, t2])

    def _split(self, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        k, j = self.k_dev, self.m - 1
        return a[:, k : k + j], a[:, k + j : k + 2 * j]

    def classify(self, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f_lo, g_lo = self._split(lo)
        _, g_hi = self._split(hi)
        f_keeps = np.all(f_lo > 0, axis=1)
        proven = f_keeps & np.all(g_lo > 0, axis=1)
        refuted = f_keeps & np.any(g_hi < 0, axis=1)
        return proven, refuted & ~proven

    def unresolved(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        out = np.zeros(lo.shape, bool)
        k = self.k_dev
        out[:, k:] = lo[:, k:] <= 0
        return out

    def unproven_outputs(self, lo: np.ndarray, hi: np.ndarray, k_dev: int) -> np.ndarray:
        return np.zeros((lo.shape[0], k_dev), bool)
