"""The question the search answers: linear spec rows with the interval each must stay in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..bounds.common import SpecBounds
from ..twin import Twin

__all__ = ["SpecProblem", "BoundFn"]

# An engine as the search sees it: (twin, lower (B, n), upper (B, n), c1, c2) -> SpecBounds.
BoundFn = Callable[[Twin, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], SpecBounds]


@dataclass(frozen=True)
class SpecProblem:
    """Show that for every x in the region and every row k: lo[k] <= c1[k] . f(x) + c2[k] . g(x) <= hi[k].

    c1, c2: (K, m); lo, hi: (K,), with -inf / +inf for an unconstrained side. eps-equivalence on outputs S is
    rows g_k - f_k (k in S) with lo = -eps, hi = eps.
    """

    c1: torch.Tensor
    c2: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    confirm: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    """Optional real-property check on concrete outputs ((B, m) x2 -> (B,) bool). When the rows are only a
    sufficient condition (top-1), a point outside the rows' intervals is a counterexample only if this says so."""

    def to(self, dtype: torch.dtype, device: torch.device | str = "cpu") -> "SpecProblem":
        c1, c2, lo, hi = (t.to(dtype=dtype, device=device) for t in (self.c1, self.c2, self.lo, self.hi))
        return SpecProblem(c1, c2, lo, hi, self.confirm)

    @property
    def rows(self) -> int:
        return int(self.c1.shape[0])

    def values(self, fx: torch.Tensor, gx: torch.Tensor) -> torch.Tensor:
        """Spec values on concrete outputs: (B, m) x2 -> (B, K)."""
        return fx @ self.c1.T + gx @ self.c2.T

    def violated(self, fx: torch.Tensor, gx: torch.Tensor) -> torch.Tensor:
        """(B,) bool: some row leaves its interval at these concrete outputs."""
        v = self.values(fx, gx)
        bad = ((v < self.lo) | (v > self.hi)).any(dim=1)
        return bad if self.confirm is None else bad & self.confirm(fx, gx)

    def open_sides(self, lower: torch.Tensor, upper: torch.Tensor) -> list[tuple[int, tuple[str, ...]]]:
        """[(row, sides)] for the rows whose known bounds lower, upper (K,) leave a side ("lower" and/or
        "upper") outside its allowed interval, in row order."""
        out = []
        for k in range(self.rows):
            sides = (("lower",) if float(lower[k]) < float(self.lo[k]) else ()) + (
                ("upper",) if float(upper[k]) > float(self.hi[k]) else ())
            if sides:
                out.append((k, sides))
        return out

    def proven(self, bounds: SpecBounds) -> torch.Tensor:
        """(B,) bool: every row's certified interval lies inside its allowed interval."""
        return ((bounds.lower >= self.lo) & (bounds.upper <= self.hi)).all(dim=1)

    def refuted(self, bounds: SpecBounds) -> torch.Tensor:
        """(B,) bool: some row's certified interval lies entirely outside (every point of the box violates)."""
        return ((bounds.upper < self.lo) | (bounds.lower > self.hi)).any(dim=1)
