"""Shared machinery of the relative-safety-margin analyses (`simcert.rsm`): margins on concrete inputs, the
batched witness search, engine choice, and the one-sided branch and bound.

Notation (METHODS.md section 6): for a label c and another class j, with D(x) = f(x) - g(x),

    Pi_cj(x) = (f_c(x) - f_j(x)) - (g_c(x) - g_j(x)) = D_c(x) - D_j(x),

a linear spec of both outputs (c1 = e_c - e_j, c2 = -(e_c - e_j)). `g => f` on a region is `min Pi_cj >= 0` for
every j (the "lower side"), `f => g` is `max Pi_cj <= 0` (the "upper side").
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .bounds import ENGINES
from .bounds.common import SpecBounds
from .network import Network
from .search.bab import SearchOptions, branch_and_bound
from .search.problem import BoundFn, SpecProblem
from .twin import Twin
from .verify import choose_method

__all__ = [
    "SIDES",
    "pi_matrix",
    "margin_rows",
    "PiAttack",
    "attack_pi",
    "extremes_at",
    "candidate_points",
    "confirmed_pi",
    "identical_twins",
    "rsm_engine",
    "intersect_engines",
    "SideOutcome",
    "search_side",
]

SIDES = ("g=>f", "f=>g")
"""The two implications: "g=>f" is decided on the lower side (min Pi >= 0), "f=>g" on the upper (max Pi <= 0)."""


def pi_matrix(fx: torch.Tensor, gx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Pi[b, j] = (fx[b, c_b] - fx[b, j]) - (gx[b, c_b] - gx[b, j]) with c_b = labels[b]; column c_b is 0.

    >>> pi_matrix(torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.5]]), torch.tensor([0])).tolist()
    [[0.0, 1.5]]
    """
    d = fx - gx
    return d.gather(1, labels.reshape(-1, 1)) - d


def margin_rows(labels: torch.Tensor, m: int) -> torch.Tensor:
    """(B, m) bool mask of the rows Pi_cj that exist (j != c_b)."""
    return torch.arange(m, device=labels.device).unsqueeze(0) != labels.reshape(-1, 1)


@dataclass
class PiAttack:
    """Extreme margins found at concrete points, per box: the smallest and largest Pi_cj seen (over j) and where.

    lo_value/hi_value (B,); lo_x/hi_x (B, n); lo_row/hi_row (B,) the class j; row_min/row_max (B, m) per-row
    extremes (+inf / -inf on the label's column). Values are from the (simplified) twin in float64: a point
    still has to be confirmed on the original models before it is reported as a witness.
    """

    lo_value: torch.Tensor
    lo_x: torch.Tensor
    lo_row: torch.Tensor
    hi_value: torch.Tensor
    hi_x: torch.Tensor
    hi_row: torch.Tensor
    row_min: torch.Tensor
    row_max: torch.Tensor

    def take(self, idx: torch.Tensor | slice) -> "PiAttack":
        """The boxes `idx` of this result."""
        return PiAttack(*(getattr(self, k)[idx] for k in self.__dataclass_fields__))

    def put(self, idx: torch.Tensor, other: "PiAttack") -> None:
        """Merge `other` (one entry per index in `idx`) into the boxes `idx`, in place."""
        merged = self.take(idx).merge(other)
        for k in self.__dataclass_fields__:
            getattr(self, k)[idx] = getattr(merged, k)

    @staticmethod
    def cat(parts: "list[PiAttack]") -> "PiAttack":
        """Concatenate results of consecutive box batches."""
        return PiAttack(*(torch.cat([getattr(p, k) for p in parts]) for k in PiAttack.__dataclass_fields__))

    def merge(self, other: "PiAttack") -> "PiAttack":
        """Keep, per box, the more extreme of the two searches."""
        take_lo = other.lo_value < self.lo_value
        take_hi = other.hi_value > self.hi_value
        return PiAttack(
            torch.where(take_lo, other.lo_value, self.lo_value),
            torch.where(take_lo[:, None], other.lo_x, self.lo_x),
            torch.where(take_lo, other.lo_row, self.lo_row),
            torch.where(take_hi, other.hi_value, self.hi_value),
            torch.where(take_hi[:, None], other.hi_x, self.hi_x),
            torch.where(take_hi, other.hi_row, self.hi_row),
            torch.minimum(self.row_min, other.row_min),
            torch.maximum(self.row_max, other.row_max),
        )


def extremes_at(twin: Twin, x: torch.Tensor, labels: torch.Tensor) -> PiAttack:
    """Evaluate the points x (B, P, n) of each box (label labels[b]) and keep the per-box extremes of Pi."""
    b, p, n = x.shape
    m = twin.output_size
    with torch.no_grad():
        flat = x.reshape(b * p, n)
        pi = pi_matrix(twin.f.forward(flat), twin.g.forward(flat), labels.repeat_interleave(p)).reshape(b, p, m)
    rows = margin_rows(labels, m).unsqueeze(1)  # (B, 1, m)
    inf = torch.tensor(math.inf, dtype=pi.dtype)
    low = torch.where(rows, pi, inf)
    high = torch.where(rows, pi, -inf)
    lo_pj = low.reshape(b, p * m).argmin(1)
    hi_pj = high.reshape(b, p * m).argmax(1)
    ar = torch.arange(b)
    return PiAttack(
        low.reshape(b, -1)[ar, lo_pj], x[ar, lo_pj // m], lo_pj % m,
        high.reshape(b, -1)[ar, hi_pj], x[ar, hi_pj // m], hi_pj % m,
        low.min(1).values, high.max(1).values,
    )


def attack_pi(
    twin: Twin,
    lower: torch.Tensor,
    upper: torch.Tensor,
    labels: torch.Tensor,
    starts: int = 8,
    steps: int = 20,
    generator: torch.Generator | None = None,
) -> PiAttack:
    """Search each box for the smallest and the largest Pi_cj: the centre, then sign-gradient descent (on
    min_j Pi) and ascent (on max_j Pi) from the centre and `starts - 1` uniform random points, with steps
    0.25 * width * (1 - t / steps), projected on the box. Batched over boxes (B, n) and starts.
    """
    b, n = lower.shape
    m = twin.output_size
    rows = margin_rows(labels, m)
    lab = labels.repeat_interleave(starts)
    lo = lower.repeat_interleave(starts, 0)
    hi = upper.repeat_interleave(starts, 0)
    width = hi - lo
    u = torch.rand(lo.shape, dtype=lo.dtype, generator=generator)
    u.view(b, starts, n)[:, 0] = 0.5  # the centre is always a start
    x0 = lo + width * u
    best = extremes_at(twin, x0.reshape(b, starts, n), labels)
    for sign in (-1.0, 1.0):  # -1: minimize min_j Pi; +1: maximize max_j Pi
        x = x0.clone()
        r = rows.repeat_interleave(starts, 0)
        fill = math.inf if sign < 0 else -math.inf
        for t in range(steps):
            x = x.detach().requires_grad_(True)
            with torch.enable_grad():
                pi = pi_matrix(twin.f.forward(x), twin.g.forward(x), lab)
                pi = torch.where(r, pi, torch.full_like(pi, fill))
                obj = pi.min(1).values if sign < 0 else pi.max(1).values
                (grad,) = torch.autograd.grad((sign * obj).sum(), x)
            x = torch.minimum(torch.maximum(x.detach() + 0.25 * width * (1 - t / steps) * grad.sign(), lo), hi)
        best = best.merge(extremes_at(twin, x.reshape(b, starts, n), labels))
    return best


def candidate_points(lower: torch.Tensor, upper: torch.Tensor, coeffs: torch.Tensor | None) -> torch.Tensor:
    """Corners suggested by an engine's linear bound coefficients: for each row k, the corner maximizing and
    the corner minimizing coeffs[:, k] . x. lower/upper (B, n), coeffs (B, K, n) -> (B, 2K, n) (or (B, 1, n),
    the centre, without coefficients)."""
    if coeffs is None:
        return ((lower + upper) / 2).unsqueeze(1)
    pos = coeffs >= 0
    lo, hi = lower.unsqueeze(1), upper.unsqueeze(1)
    return torch.cat([torch.where(pos, hi, lo), torch.where(pos, lo, hi)], 1)


def confirmed_pi(f: Network, g: Network, x: np.ndarray, label: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both *original* models run on x (float64): (f(x), g(x), Pi_c.(x) over all m classes, 0 at c)."""
    fx, gx = f(x[None])[0], g(x[None])[0]
    d = fx - gx
    return fx, gx, d[label] - d


def identical_twins(twin: Twin) -> bool:
    """Whether f and g compute the same function layer by layer (aligned, no difference layer): then
    Pi = 0 exactly, in real arithmetic and in floating point alike."""
    return twin.pairs is not None and all(p.diff is None for p in twin.pairs)


def intersect_engines(*fns: BoundFn) -> BoundFn:
    """An engine returning the intersection of the engines' bounds (each is sound, so max of the lower and min
    of the upper bounds is sound); branching coefficients are the first engine's."""

    def bound(twin: Twin, lower: torch.Tensor, upper: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> SpecBounds:
        results = [fn(twin, lower, upper, c1, c2) for fn in fns]
        lo = torch.stack([r.lower for r in results]).max(0).values
        hi = torch.stack([r.upper for r in results]).min(0).values
        return SpecBounds(lo, hi, results[0].input_coeffs)

    return bound


def rsm_engine(twin: Twin, method: str) -> tuple[str, BoundFn]:
    """The engine for `method` (see `simcert.verify.choose_method`). `auto` on aligned twins runs the
    differential engine *and* CROWN and intersects them: the differential engine is far tighter for close
    twins (float16, int8), CROWN is often tighter for heavily pruned ones (measured in docs/rsm_study.md)."""
    chosen = choose_method(twin, method)
    if method == "auto" and chosen == "diff":
        return "diff+crown", intersect_engines(ENGINES["diff"], ENGINES["crown"])
    if chosen == "milp":
        raise ValueError("milp is handled by the caller")
    return chosen, ENGINES[chosen]


@dataclass
class SideOutcome:
    """Result of a one-sided search: status "proven" | "refuted" | "unknown", certified bounds (K,) valid over
    the whole region (the search's anytime bounds), the violating point when refuted (to be confirmed)."""

    status: str
    lower: torch.Tensor
    upper: torch.Tensor
    point: torch.Tensor | None
    boxes_bounded: int
    timed_out: bool


def search_side(
    twin: Twin,
    c1: torch.Tensor,
    c2: torch.Tensor,
    side: str,
    lower: torch.Tensor,
    upper: torch.Tensor,
    bound_fn: BoundFn,
    budget_s: float,
    options: SearchOptions,
    should_stop: Callable[[], bool] | None = None,
) -> SideOutcome:
    """Branch and bound for one implication: side "g=>f" proves all rows >= 0 (lo = 0, hi = +inf), side "f=>g"
    proves all rows <= 0 (lo = -inf, hi = 0). Stops when proven, refuted (a point of the real twin violating a
    row) or after `budget_s` seconds; the bounds returned are the tightest valid ones seen."""
    k = c1.shape[0]
    zeros = torch.zeros(k, dtype=torch.float64)
    inf = torch.full((k,), math.inf, dtype=torch.float64)
    lo_req, hi_req = (zeros, inf) if side == "g=>f" else (-inf, zeros)
    problem = SpecProblem(c1, c2, lo_req, hi_req)
    best_lo, best_hi = -inf.clone(), inf.clone()
    t0 = time.perf_counter()
    status, point, boxes, timed_out = "unknown", None, 0, False
    for state in branch_and_bound(twin, problem, lower, upper, bound_fn, options):
        best_lo = torch.maximum(best_lo, state.lower.to(torch.float64))
        best_hi = torch.minimum(best_hi, state.upper.to(torch.float64))
        boxes = state.boxes_bounded
        if state.done:
            if state.verdict == "holds":
                status = "proven"
            elif state.verdict == "violated" and state.counterexample is not None:
                status, point = "refuted", state.counterexample
            break
        if time.perf_counter() - t0 > budget_s or (should_stop is not None and should_stop()):
            timed_out = True
            break
    return SideOutcome(status, best_lo, best_hi, point, boxes, timed_out)
