"""Counterexample search: candidate points and projected-gradient attacks on the spec rows.

Every candidate is checked on both real networks (float64 forward) by the caller; an attack only proposes.
"""

from __future__ import annotations

import torch

from ..twin import Twin
from .problem import SpecProblem

__all__ = ["box_candidates", "pgd_attack", "first_violation"]


def box_candidates(lower: torch.Tensor, upper: torch.Tensor, coeffs: torch.Tensor | None) -> torch.Tensor:
    """Centres of the boxes and, when bound coefficients are known, the corners maximizing them.

    lower/upper: (B, n); coeffs: (B, K, n) linear upper-bound coefficients. Returns (B * (1 + K), n).
    """
    pts = [(lower + upper) / 2]
    if coeffs is not None:
        for k in range(coeffs.shape[1]):
            pts.append(torch.where(coeffs[:, k] >= 0, upper, lower))
            pts.append(torch.where(coeffs[:, k] >= 0, lower, upper))
    return torch.cat(pts, 0)


def pgd_attack(
    twin: Twin,
    problem: SpecProblem,
    lower: torch.Tensor,
    upper: torch.Tensor,
    starts: int = 64,
    steps: int = 30,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient ascent on the violation margin of every row, from random starts in each box.

    Maximizes max_k max(c_k(x) - hi_k, lo_k - c_k(x)) with sign-gradient steps of decreasing size.
    lower/upper: (B, n). Returns the final points (B * starts, n), to be checked by the caller.
    """
    b, n = lower.shape
    lo = lower.repeat_interleave(starts, 0)
    hi = upper.repeat_interleave(starts, 0)
    x = lo + (hi - lo) * torch.rand(lo.shape, dtype=lo.dtype, device=lo.device, generator=generator)
    width = hi - lo
    for t in range(steps):
        x = x.detach().requires_grad_(True)
        v = problem.values(twin.f.forward(x), twin.g.forward(x))
        margin = torch.maximum(v - problem.hi, problem.lo - v).max(dim=1).values
        (grad,) = torch.autograd.grad(margin.sum(), x)
        step = 0.25 * width * (1 - t / steps)
        x = torch.clamp(x.detach() + step * grad.sign(), lo, hi)
    return x.detach()


def first_violation(twin: Twin, problem: SpecProblem, points: torch.Tensor) -> torch.Tensor | None:
    """The first point violating the problem on the real networks (float64), or None."""
    with torch.no_grad():
        x = points.to(torch.float64)
        bad = problem.to(torch.float64).violated(twin.f.forward(x), twin.g.forward(x))
    idx = torch.nonzero(bad)
    return None if idx.numel() == 0 else x[idx[0, 0]]
