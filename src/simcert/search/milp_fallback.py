"""The exact MILP on the whole region, for the spec rows an input-splitting search left open.

Where the region has many free inputs (an L-inf ball around an MNIST image: hundreds), bisecting one input at
a time barely shrinks the box, so the search stalls. The MILP (`bounds/milp.py`, HiGHS) splits on ReLU
phases instead, and with a time limit still returns its proved (dual) bound. Each open side of each row is
one solve; the solver's incumbents are returned as candidate counterexamples (to be confirmed on the real
networks by the caller).

Guarantee: the bounds are HiGHS's dual bounds widened for its tolerances (see `milp_bound_spec`): sound up to
the solver's tolerances, not the outward-rounded float64 of the bound engines; the result says which rows
they decided.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..network import ReLU
from ..twin import Twin
from .problem import SpecProblem

__all__ = ["MilpFallback", "milp_fallback", "engine_pre_bounds"]


@dataclass(frozen=True)
class MilpFallback:
    """Bounds of every row (K,), (+-inf where the MILP did not run), candidate points (P, n) and the rows
    whose open sides were all solved to optimality."""

    lower: torch.Tensor
    upper: torch.Tensor
    candidates: torch.Tensor
    optimal_rows: list[int]
    time_s: float


def milp_fallback(
    twin: Twin,
    problem: SpecProblem,
    lower: torch.Tensor,
    upper: torch.Tensor,
    known_lower: torch.Tensor,
    known_upper: torch.Tensor,
    time_limit: float,
    max_binaries: int = 2000,
) -> MilpFallback | None:
    """Solve the open sides of each row (those `known_lower/upper` do not already settle) over the box
    [lower, upper] (n,) within `time_limit` seconds in all, with the differential engine's pre-activation
    bounds as big-M bounds where the twin is aligned. None when the MILP cannot encode the twin (a layer
    without an encoding) or needs more than `max_binaries` binaries."""
    from ..bounds.milp import milp_bound_spec

    t0 = time.perf_counter()
    pre_bounds = engine_pre_bounds(twin, lower, upper)
    k = problem.rows
    lo_np, hi_np = lower.detach().cpu().double().numpy(), upper.detach().cpu().double().numpy()
    c1, c2 = problem.c1.cpu().double().numpy(), problem.c2.cpu().double().numpy()
    jobs = problem.open_sides(known_lower, known_upper)
    out_lo = torch.full((k,), -float("inf"), dtype=torch.float64)
    out_hi = torch.full((k,), float("inf"), dtype=torch.float64)
    points: list[np.ndarray] = []
    optimal: list[int] = []
    for j, (i, sides) in enumerate(jobs):
        share = (t0 + time_limit - time.perf_counter()) / (len(jobs) - j)
        if share <= 0.05:
            break
        try:
            r = milp_bound_spec(twin.f, twin.g, lo_np, hi_np, c1[i : i + 1], c2[i : i + 1], time_limit=share,
                                sides=sides, max_binaries=max_binaries, pre_bounds=pre_bounds)
        except InputError:  # too large, or a layer the MILP does not encode
            return None
        out_lo[i], out_hi[i] = float(r.lower[0]), float(r.upper[0])
        points += [w[0] for w in (r.argmin, r.argmax) if w is not None and np.all(np.isfinite(w[0]))]
        if bool(r.optimal[0]):
            optimal.append(i)
    cands = torch.as_tensor(np.array(points), dtype=lower.dtype).reshape(-1, lower.numel())
    return MilpFallback(out_lo, out_hi, cands, optimal, time.perf_counter() - t0)


def engine_pre_bounds(twin: Twin, lower: torch.Tensor, upper: torch.Tensor) -> list | None:
    """[f's, g's] pre-activation bounds at every ReLU layer of the simplified networks, from the differential
    engine (forward pass with back-substitution refinement) on the box: the MILP's big-M constants, far tighter
    than its own interval bounds. None unless the twin is aligned with one ReLU pair per ReLU layer of each
    simplified network; a layer whose width differs (zero-padded pruning) gets no bounds (+-inf)."""
    if twin.pairs is None:
        return None
    from ..bounds.diff import diff_forward
    from ..network.network import _shapes

    relu_pairs = [i for i, p in enumerate(twin.pairs) if isinstance(p.f, ReLU)]
    with torch.no_grad():
        inter, _, _ = diff_forward(twin, lower.reshape(1, -1).double(), upper.reshape(1, -1).double(), refine=True)
    out = []
    for net, bounds in ((twin.f, inter.z), (twin.g, inter.g)):
        s = net.simplified()
        shapes = _shapes(s.input_shape, s.layers)
        sizes = [int(np.prod(shapes[j])) for j, layer in enumerate(s.layers) if isinstance(layer, ReLU)]
        if len(sizes) != len(relu_pairs):
            return None
        pairs = []
        for size, i in zip(sizes, relu_pairs):
            lo, hi = (t[0].flatten().cpu().numpy() for t in bounds[i])
            if lo.size != size:
                lo, hi = np.full(size, -np.inf), np.full(size, np.inf)
            pairs.append((lo, hi))
        out.append(pairs)
    return out
