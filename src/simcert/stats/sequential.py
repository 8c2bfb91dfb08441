"""Anytime-valid stopping: look at the data at fixed checkpoints and spend the error budget across them.

Sampling until the bound looks good and then reporting that bound is *not* valid for a fixed-n bound: peeking
many times inflates the error. `CheckpointSchedule` fixes, before any data is seen, a geometric sequence of
sample sizes `n_1 < n_2 < ...` (`n_j ~ first * growth^(j-1)`) and a share `delta_j` of the error budget for
each, with `sum_j delta_j <= delta`:

- `spending="geometric"`: `delta_j = delta / 2^j`;
- `spending="p-series"`:  `delta_j = 6 delta / (pi^2 j^2)` (cheaper after about 6 checkpoints).

Why stopping stays valid (union bound): let E_j be the event "the Clopper-Pearson bound computed at checkpoint
j with delta_j fails" (e.g. `p > U_j`). Each n_j is fixed in advance, so `P[E_j] <= delta_j`, and
`P[some E_j] <= sum_j delta_j <= delta`. Outside that event *every* checkpoint bound is correct at once, so
whichever checkpoint a data-dependent rule stops at (first success, budget exhausted, ...), the bound it
reports is correct with probability >= 1 - delta. Bounds must only be read at the checkpoints themselves.

Decisions: "certified" (`U_j <= target`) is wrong only if `p > target` and some upper bound failed
(probability <= delta); "refuted" (`L_j > target`, Clopper-Pearson lower bound at delta_j) is wrong only if
`p <= target` and some lower bound failed (again <= delta). Each kind of error has probability <= delta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ..errors import InputError
from .bounds import SampleStats, clopper_pearson_lower, clopper_pearson_upper, empirical_bernstein_upper

__all__ = ["CheckpointSchedule", "Decision", "Spending"]

Decision = Literal["certified", "refuted", "continue"]
Spending = Literal["geometric", "p-series"]


@dataclass(frozen=True)
class CheckpointSchedule:
    """Pre-declared checkpoints `n_j` (j = 1, 2, ...) with error shares `delta_j` summing to at most delta.

    `n_j = max(n_{j-1} + 1, ceil(first * growth^(j-1)))`; see the module docstring for why bounds read at
    these checkpoints stay valid under any stopping rule.

    >>> s = CheckpointSchedule(0.05, first=100)
    >>> s.checkpoints(1000), s.delta_at(1), s.delta_at(3)
    ([100, 200, 400, 800], 0.025, 0.00625)
    >>> s.should_stop(0, 100, target_rate=0.05)    # CP(0, 100, 0.025) = 0.0362 <= 0.05
    True
    >>> s.should_stop(0, 150, target_rate=0.05)    # not a checkpoint: never stop there
    False
    """

    delta: float
    first: int = 100
    growth: float = 2.0
    spending: Spending = "geometric"
    _cache: list[int] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (0.0 < float(self.delta) < 1.0):
            raise InputError(f"delta must lie in (0, 1), got {self.delta!r}")
        if int(self.first) != self.first or self.first < 1:
            raise InputError(f"first checkpoint must be a positive integer, got {self.first!r}")
        if not (math.isfinite(self.growth) and self.growth > 1.0):
            raise InputError(f"growth must be > 1, got {self.growth!r}")
        if self.spending not in ("geometric", "p-series"):
            raise InputError(f"spending must be 'geometric' or 'p-series', got {self.spending!r}")

    # -------------------------------------------------------------------------------------- the schedule

    def checkpoint(self, j: int) -> int:
        """The sample size n_j of checkpoint j (1-based)."""
        if j < 1:
            raise InputError(f"checkpoint indices start at 1, got {j}")
        while len(self._cache) < j:
            i = len(self._cache) + 1
            n = math.ceil(self.first * self.growth ** (i - 1) - 1e-9)
            self._cache.append(max(n, self._cache[-1] + 1) if self._cache else int(self.first))
        return self._cache[j - 1]

    def delta_at(self, j: int) -> float:
        """The error share of checkpoint j: `delta / 2^j` or `6 delta / (pi^2 j^2)`."""
        if j < 1:
            raise InputError(f"checkpoint indices start at 1, got {j}")
        if self.spending == "geometric":
            return self.delta / 2.0**j
        return 6.0 * self.delta / (math.pi**2 * j * j)

    def index_of(self, n: int) -> int | None:
        """j with `n_j == n`, or None when n is not a checkpoint."""
        j = 1
        while self.checkpoint(j) < n:
            j += 1
        return j if self.checkpoint(j) == n else None

    def next_checkpoint(self, n: int) -> int:
        """The smallest checkpoint strictly above n (how many samples to have before looking next)."""
        j = 1
        while self.checkpoint(j) <= n:
            j += 1
        return self.checkpoint(j)

    def checkpoints(self, max_n: int) -> list[int]:
        """All checkpoints `n_j <= max_n`."""
        out, j = [], 1
        while self.checkpoint(j) <= max_n:
            out.append(self.checkpoint(j))
            j += 1
        return out

    def _delta_for(self, n: int) -> float:
        j = self.index_of(int(n))
        if j is None:
            raise InputError(f"n={n} is not a checkpoint of this schedule (next: {self.next_checkpoint(int(n))})")
        return self.delta_at(j)

    # ---------------------------------------------------------------------------------------------- rates

    def upper_bound(self, k: ArrayLike, n: int) -> Any:
        """Clopper-Pearson upper bound on the rate after k failures in n samples, n a checkpoint (at delta_j)."""
        return clopper_pearson_upper(k, n, self._delta_for(n))

    def lower_bound(self, k: ArrayLike, n: int) -> Any:
        """Clopper-Pearson lower bound on the rate after k failures in n samples, n a checkpoint (at delta_j)."""
        return clopper_pearson_lower(k, n, self._delta_for(n))

    def decide(self, k: int, n: int, target_rate: float) -> Decision:
        """"certified" if `U_j <= target_rate`, "refuted" if `L_j > target_rate`, else "continue".

        Off-checkpoint sample sizes always give "continue" (no error budget is spent there).
        """
        if not (0.0 <= float(target_rate) <= 1.0):
            raise InputError(f"target_rate must lie in [0, 1], got {target_rate!r}")
        j = self.index_of(int(n))
        if j is None:
            return "continue"
        d = self.delta_at(j)
        if clopper_pearson_upper(k, n, d) <= target_rate:
            return "certified"
        if clopper_pearson_lower(k, n, d) > target_rate:
            return "refuted"
        return "continue"

    def should_stop(self, k: int, n: int, target_rate: float) -> bool:
        """True when `decide(k, n, target_rate)` is "certified" or "refuted"."""
        return self.decide(k, n, target_rate) != "continue"

    # ---------------------------------------------------------------------------------------------- means

    def mean_upper_bound(self, samples: ArrayLike | SampleStats | tuple, range_bound: float) -> Any:
        """Empirical Bernstein upper bound on a mean at delta_j, for the n_j samples seen at checkpoint j.

        `samples` is the sample (last axis, its length must be a checkpoint) or `SampleStats(mean, var, n)`.
        Valid under any stopping rule by the same union bound as the rate bounds.
        """
        return empirical_bernstein_upper(samples, self._delta_for(_sample_size(samples)), range_bound)

    def should_stop_mean(
        self, samples: ArrayLike | SampleStats | tuple, range_bound: float, target_mean: float
    ) -> bool:
        """True at a checkpoint whose empirical Bernstein bound is at most `target_mean`."""
        if self.index_of(_sample_size(samples)) is None:
            return False
        return bool(self.mean_upper_bound(samples, range_bound) <= target_mean)


def _sample_size(samples: ArrayLike | SampleStats | tuple) -> int:
    """n of a (mean, variance, n) triple, or the length of the last axis of a sample."""
    if isinstance(samples, tuple):
        return int(samples[2])
    shape = np.shape(samples)
    if not shape:
        raise InputError("expected an array of samples or a (mean, variance, n) triple")
    return int(shape[-1])
