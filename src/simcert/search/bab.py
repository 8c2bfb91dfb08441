"""Batched input-splitting branch and bound, as an anytime generator.

The frontier of unresolved sub-boxes is one tensor. Each step bounds a batch of boxes with an engine (a
callable, see `problem.BoundFn`), drops the proven ones, checks candidate points on the real networks, and
bisects the rest along the input with the largest `|coefficient| * width` of the engine's linear bound
(the smear heuristic; ReluDiff uses an interval gradient for the same purpose). The generator yields a
`SearchState` after every step, so timeouts, progress bars and distributed workers attach from outside.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from ..bounds.common import SpecBounds
from ..twin import Twin
from .attack import box_candidates, first_violation, pgd_attack
from .problem import BoundFn, SpecProblem

__all__ = ["SearchOptions", "SearchState", "branch_and_bound"]


@dataclass(frozen=True)
class SearchOptions:
    batch_size: int = 256
    max_frontier: int = 2_000_000
    attack_starts: int = 64
    attack_steps: int = 30
    attack_after: int = 2  # the gradient attack on the whole region runs at the first step >= this with open
    # boxes (the search proves most easy instances within two steps, where the attack would be wasted)
    seed: int = 0
    stagnation: float = 0.95  # a child whose slack is above this fraction of its parent's is "stagnant"
    strong_branching_max_dims: int = 16
    branching_fn: BoundFn | None = None  # cheap engine ranking every split (None: the smear heuristic)
    screen_fn: BoundFn | None = None  # cheap engine tried first on every box; the main engine bounds the rest
    branching: str = "auto"  # "auto": verify picks branching_fn; "smear": keep the smear heuristic; "widest":
    # bisect the widest input (for discontinuous twins, e.g. quantized activations, whose linear coefficients
    # do not show where the jumps are)
    informative_ratio: float = 0.9  # the cheap ranking is used only where its best split cuts slack below this
    max_strong_branching: int = 64  # at most this many stagnant boxes per step get real-engine strong branching
    deadline: float | None = None  # time.perf_counter() value after which the search yields "unresolved"
    max_state_mb: float = 2048.0  # memory cap on the frontier's stored intermediate bounds (then: no warm start)
    milp_fallback: bool = False  # high-dimensional regions (more free inputs than strong_branching_max_dims):
    # the search keeps `milp_share` of the time limit, then the MILP bounds the rows it left open (see
    # search/milp_fallback.py; used by `verify`, not by the search itself)
    milp_share: float = 0.5
    dtype: torch.dtype = torch.float64
    ranking_dtype: torch.dtype | None = torch.float32  # the cheap engine's split ranking (None: `dtype`); it
    # only chooses where to split, so its rounding cannot touch soundness (measured: 2x faster than float64)
    strong_dtype: torch.dtype | None = None  # the main engine's strong branching of stagnant boxes
    device: str = "cpu"


@dataclass
class SearchState:
    """Progress of the search; `done` with `verdict` in {"holds", "violated", "unresolved"} at the end."""

    lower: torch.Tensor  # (K,) certified lower bound of each row over the whole region so far
    upper: torch.Tensor  # (K,)
    proven_fraction: float = 0.0
    frontier: int = 1
    boxes_bounded: int = 0
    steps: int = 0
    elapsed: float = 0.0
    done: bool = False
    verdict: str = "unknown"
    counterexample: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)


def _log_volume(lower: torch.Tensor, upper: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    w = (upper - lower)[:, active]
    return torch.log(w).sum(dim=1)


@functools.lru_cache(maxsize=64)
def accepts(fn: BoundFn | None, name: str) -> bool:
    """Whether an engine takes the keyword `name`: `prior` (intermediate bounds of a superset box,
    `SpecBounds.state`) or `settled` (a mask of boxes already proven, which may skip refinement)."""
    if fn is None:
        return False
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _bound(fn: BoundFn, twin, prob: SpecProblem, lo: torch.Tensor, hi: torch.Tensor,
           prior: torch.Tensor | None) -> SpecBounds:
    """One engine call, warm-started with the parents' intermediate bounds where the engine takes them, and
    told which boxes its cheap pass already proves (they skip the expensive one) where it can use that."""
    kw: dict = {}
    if prior is not None and accepts(fn, "prior"):
        kw["prior"] = prior
    if accepts(fn, "settled"):
        kw["settled"] = prob.proven
    return fn(twin, lo, hi, prob.c1, prob.c2, **kw)


def _splittable(width: torch.Tensor, root_width: torch.Tensor) -> torch.Tensor:
    """(B, n) bool: inputs worth bisecting, those not negligible (below 1e-6 of the relatively widest input of
    the box). Bisecting an input of a box that is already tiny there cannot shrink the box where it matters,
    but rounding can make the bounds jitter by more than a "good" split's margin, and the search would then
    bisect it forever."""
    rel = width / root_width
    return rel > 1e-6 * rel.max(dim=1, keepdim=True).values


def _strong_branching(twin, prob: SpecProblem, bound_fn: BoundFn, lo: torch.Tensor, hi: torch.Tensor,
                      active: torch.Tensor, with_parent: bool = False, root_width: torch.Tensor | None = None,
                      dtype: torch.dtype | None = None):
    """For each box (B, n), the input whose bisection gives children with the least remaining slack.

    The children are bounded cold (no warm start): a parent's intermediate bounds would mask the differences
        between the splits (measured: 2-4x more boxes on ACAS prop 1). Near-ties (children within 1% of the best)
    go to the input that is widest relative to `root_width`: where no single bisection helps, all inputs tie
    up to rounding, and the argmin would bisect one input down to nothing while the others stay wide.

    With `with_parent`, also returns each box's best child slack divided by the box's own slack under the same
    engine (near 1: the engine sees no split that helps, so its ranking is uninformative).
    The children are bounded in `dtype` (default: the boxes'); only the choice of input is returned, so a
    cheaper, less precise dtype cannot affect soundness.
    """
    if dtype is not None and dtype != lo.dtype:
        prob = prob.to(dtype, lo.device)
        lo, hi = lo.to(dtype), hi.to(dtype)
        root_width = None if root_width is None else root_width.to(dtype)
    dims = torch.nonzero(active).flatten()
    b, d = lo.shape[0], dims.numel()
    mid = (lo + hi) / 2
    c_lo = lo.unsqueeze(1).repeat(1, 2 * d, 1)  # (B, 2d, n): for each dim, left then right child
    c_hi = hi.unsqueeze(1).repeat(1, 2 * d, 1)
    j = torch.arange(d, device=lo.device)
    c_hi[:, 2 * j, dims] = mid[:, dims]
    c_lo[:, 2 * j + 1, dims] = mid[:, dims]
    all_lo, all_hi = c_lo.reshape(-1, lo.shape[1]), c_hi.reshape(-1, lo.shape[1])
    if with_parent:
        all_lo, all_hi = torch.cat([all_lo, lo]), torch.cat([all_hi, hi])
    with torch.no_grad():
        bounds = bound_fn(twin, all_lo, all_hi, prob.c1, prob.c2)
    slack = (torch.clamp(prob.lo - bounds.lower, min=0) + torch.clamp(bounds.upper - prob.hi, min=0)).sum(1)
    per_child = slack[: b * 2 * d].reshape(b, d, 2).max(dim=2).values
    root_width = torch.ones_like(lo[0]) if root_width is None else root_width
    per_child = torch.where(_splittable(hi - lo, root_width)[:, dims], per_child, torch.full_like(per_child, math.inf))
    best = per_child.min(dim=1).values
    near = per_child <= best.unsqueeze(1) * 1.01 + 1e-12
    rel_width = (hi - lo)[:, dims] / root_width[dims]
    choice = torch.where(near, rel_width, torch.full_like(rel_width, -1.0)).argmax(dim=1)
    if not with_parent:
        return dims[choice], per_child
    return dims[choice], best / slack[b * 2 * d :].clamp(min=1e-300)


def _screened_bounds(twin, prob: SpecProblem, bound_fn: BoundFn, screen_fn: BoundFn | None,
                     lo: torch.Tensor, hi: torch.Tensor, prior: torch.Tensor | None = None) -> SpecBounds:
    """Bounds of a batch: the cheap `screen_fn` first, the main engine only on the boxes it leaves open (both
    are sound, so the open boxes keep the intersection). The state of boxes the screen proved is the prior's
    (they are not split again)."""
    if screen_fn is None:
        return _bound(bound_fn, twin, prob, lo, hi, prior)
    cheap = _bound(screen_fn, twin, prob, lo, hi, prior)
    hard = torch.nonzero(~prob.proven(cheap)).flatten()
    if hard.numel() == 0:
        return cheap
    full = _bound(bound_fn, twin, prob, lo[hard], hi[hard], None if prior is None else prior[hard])
    lower, upper = cheap.lower.clone(), cheap.upper.clone()
    lower[hard] = torch.maximum(full.lower, lower[hard])
    upper[hard] = torch.minimum(full.upper, upper[hard])
    coeffs = None
    if full.input_coeffs is not None:
        coeffs = torch.zeros(lo.shape[0], *full.input_coeffs.shape[1:], dtype=lo.dtype, device=lo.device)
        if cheap.input_coeffs is not None:
            coeffs = cheap.input_coeffs.clone()
        coeffs[hard] = full.input_coeffs
    state = None
    if full.state is not None and hard.numel() == lo.shape[0]:
        state = full.state
    elif full.state is not None and prior is not None:
        state = prior.clone()
        state[hard] = full.state
    return SpecBounds(lower, upper, coeffs, state)


def branch_and_bound(
    twin: Twin,
    problem: SpecProblem,
    lower: torch.Tensor,
    upper: torch.Tensor,
    bound_fn: BoundFn,
    options: SearchOptions = SearchOptions(),
) -> Iterator[SearchState]:
    """Search the box [lower, upper] (n,) for a proof or a counterexample of `problem`.

    Guarantee: "holds" only when every leaf was proven by the (sound) engine; "violated" only with a point
    that violates the problem on the real networks. Anytime: the state's bounds are valid for the whole
    region at every yield (min/max over proven leaves and the frontier's last bounds).
    """
    t0 = time.perf_counter()
    dt, dev = options.dtype, options.device
    prob = problem.to(dt, dev)
    gen = torch.Generator(device=dev).manual_seed(options.seed)
    lo0 = lower.to(dtype=dt, device=dev).reshape(1, -1)
    hi0 = upper.to(dtype=dt, device=dev).reshape(1, -1)
    active = (hi0 - lo0)[0] > 0
    root_width = torch.where(active, hi0[0] - lo0[0], torch.ones_like(hi0[0]))
    root_logvol = float(_log_volume(lo0, hi0, active)[0]) if active.any() else 0.0
    k = prob.rows
    inf = torch.full((k,), math.inf, dtype=dt, device=dev)
    # frontier boxes, the bounds of their parent (valid for them too) and the parent's intermediate bounds
    # (the engine's warm start; None when the engine keeps none or the memory cap was reached)
    f_lo, f_hi = lo0, hi0
    f_blo, f_bhi = -inf.unsqueeze(0), inf.unsqueeze(0)
    f_st: torch.Tensor | None = None
    keep_state = True
    done_lo, done_hi = inf.clone(), -inf.clone()  # running min/max over finished leaves
    proven_frac = 0.0
    sb_cap = options.max_strong_branching  # adaptive: strong branching of stagnant boxes per step
    per_box_s = 0.0  # seconds per box of the last step (sizes the last batch before the deadline)
    attacked = False
    state = SearchState(lower=-inf.clone(), upper=inf.clone())

    while f_lo.shape[0] > 0:
        if options.deadline is not None and time.perf_counter() > options.deadline:
            state.done, state.verdict = True, "unresolved"
            state.notes.append("deadline reached")
            yield state
            return
        step_t0 = time.perf_counter()
        take = min(options.batch_size, f_lo.shape[0])
        if options.deadline is not None and per_box_s > 0:  # a smaller batch where a full one would overrun
            take = max(1, min(take, int((options.deadline - step_t0) / per_box_s)))
        b_lo, b_hi = f_lo[-take:], f_hi[-take:]
        p_blo, p_bhi = f_blo[-take:], f_bhi[-take:]
        f_lo, f_hi, f_blo, f_bhi = f_lo[:-take], f_hi[:-take], f_blo[:-take], f_bhi[:-take]
        b_st = None
        if f_st is not None:
            b_st, f_st = f_st[-take:], f_st[:-take]
        with torch.no_grad():
            bounds = _screened_bounds(twin, prob, bound_fn, options.screen_fn, b_lo, b_hi, b_st)
        state.boxes_bounded += take
        proven = prob.proven(bounds)
        # counterexample candidates from the unproven boxes; once, also a gradient attack on the whole region
        # (cheap, finds most counterexamples; skipped when the search ends within `attack_after` steps)
        open_idx = torch.nonzero(~proven).flatten()
        if open_idx.numel():
            coeffs = None if bounds.input_coeffs is None else bounds.input_coeffs[open_idx]
            points = box_candidates(b_lo[open_idx], b_hi[open_idx], coeffs)
            if not attacked and state.steps >= options.attack_after and options.attack_starts > 0:
                attacked = True
                points = torch.cat([points, pgd_attack(twin, prob, lo0, hi0, options.attack_starts,
                                                       options.attack_steps, gen)])
            x = first_violation(twin, prob, points)
            if x is not None:
                # bounds valid for the whole region: finished leaves, this batch and the rest of the frontier
                batch_lo, batch_hi = torch.cat([bounds.lower, f_blo]), torch.cat([bounds.upper, f_bhi])
                state.lower = torch.minimum(done_lo, batch_lo.min(0).values)
                state.upper = torch.maximum(done_hi, batch_hi.max(0).values)
                state.done, state.verdict, state.counterexample = True, "violated", x
                state.elapsed = time.perf_counter() - t0
                yield state
                return
        # finished leaves
        if proven.any():
            done_lo = torch.minimum(done_lo, bounds.lower[proven].min(dim=0).values)
            done_hi = torch.maximum(done_hi, bounds.upper[proven].max(dim=0).values)
            if active.any():
                proven_frac += float(torch.exp(_log_volume(b_lo[proven], b_hi[proven], active) - root_logvol).sum())
            else:
                proven_frac = 1.0
        # split the open boxes
        if open_idx.numel():
            o_lo, o_hi = b_lo[open_idx], b_hi[open_idx]
            o_blo, o_bhi = bounds.lower[open_idx], bounds.upper[open_idx]
            o_st = bounds.state[open_idx] if (keep_state and bounds.state is not None) else None
            width = o_hi - o_lo
            if bounds.input_coeffs is not None and options.branching != "widest":
                unresolved = ((o_blo < prob.lo) | (o_bhi > prob.hi)).to(dt)  # (B, K)
                score = (bounds.input_coeffs[open_idx].abs() * unresolved.unsqueeze(-1)).sum(1) * width
                score = torch.where(_splittable(width, root_width), score + 1e-12 * width, torch.full_like(score, -1.0))
            else:
                score = width
            dim = score.argmax(dim=1)
            # stagnating boxes (their bound barely improved on the parent's): the linear coefficients do not
            # show which input drives the unstable neurons, so try every split and keep the best (strong
            # branching, only for low-dimensional inputs)
            slack = lambda blo, bhi: torch.clamp(prob.lo - blo, min=0) + torch.clamp(bhi - prob.hi, min=0)  # noqa: E731
            stagnant = slack(o_blo, o_bhi).sum(1) > options.stagnation * slack(p_blo[open_idx], p_bhi[open_idx]).sum(1)
            if int(active.sum()) <= options.strong_branching_max_dims and options.branching != "widest":
                if options.branching_fn is not None and (~stagnant).any():
                    # rank the splits of the other boxes with a cheap engine
                    cheap = torch.nonzero(~stagnant).flatten()
                    cheap_dim, ratio = _strong_branching(
                        twin, prob, options.branching_fn, o_lo[cheap], o_hi[cheap], active, with_parent=True,
                        root_width=root_width, dtype=options.ranking_dtype,
                    )
                    informative = ratio < options.informative_ratio  # else keep the smear choice
                    dim[cheap[informative]] = cheap_dim[informative]
                if stagnant.any() and sb_cap > 0:
                    sb = torch.nonzero(stagnant).flatten()[:sb_cap]
                    best_dim, per_child = _strong_branching(twin, prob, bound_fn, o_lo[sb], o_hi[sb], active,
                                                            root_width=root_width, dtype=options.strong_dtype)
                    state.boxes_bounded += 2 * int(active.sum()) * sb.numel()
                    # adapt the budget: keep it where the best split clearly beats the heuristic's choice
                    pos = torch.cumsum(active.to(torch.long), 0) - 1  # input index -> column of per_child
                    rows = torch.arange(sb.numel(), device=dev)
                    useful = per_child.min(1).values < 0.5 * per_child[rows, pos[dim[sb]]]
                    useful_frac = float(useful.to(dt).mean())
                    cap_max = options.max_strong_branching
                    sb_cap = min(2 * sb_cap, cap_max) if useful_frac >= 0.2 else max(sb_cap // 2, min(4, cap_max))
                    dim[sb] = best_dim
            mid = ((o_lo + o_hi) / 2).gather(1, dim[:, None]).squeeze(1)
            rows = torch.arange(o_lo.shape[0], device=dev)
            left_hi = o_hi.clone()
            left_hi[rows, dim] = mid
            right_lo = o_lo.clone()
            right_lo[rows, dim] = mid
            f_lo = torch.cat([f_lo, o_lo, right_lo])
            f_hi = torch.cat([f_hi, left_hi, o_hi])
            f_blo = torch.cat([f_blo, o_blo, o_blo])
            f_bhi = torch.cat([f_bhi, o_bhi, o_bhi])
            if f_st is not None or f_lo.shape[0] == 2 * open_idx.numel():  # states aligned with the frontier
                if o_st is None:
                    f_st = None
                else:
                    f_st = torch.cat([o_st, o_st]) if f_st is None else torch.cat([f_st, o_st, o_st])
                if f_st is not None and f_st.numel() * f_st.element_size() > options.max_state_mb * 2**20:
                    keep_state, f_st = False, None
                    state.notes.append("warm-start memory cap reached: intermediate bounds no longer reused")
            if f_lo.shape[0] > options.max_frontier:
                state.notes.append("frontier limit reached")
                state.lower = torch.minimum(done_lo, f_blo.min(0).values)
                state.upper = torch.maximum(done_hi, f_bhi.max(0).values)
                state.done, state.verdict = True, "unresolved"
                yield state
                return
        per_box_s = (time.perf_counter() - step_t0) / take
        state.steps += 1
        state.frontier = int(f_lo.shape[0])
        state.proven_fraction = min(proven_frac, 1.0)
        state.lower = torch.minimum(done_lo, f_blo.min(0).values) if f_lo.shape[0] else done_lo
        state.upper = torch.maximum(done_hi, f_bhi.max(0).values) if f_lo.shape[0] else done_hi
        state.elapsed = time.perf_counter() - t0
        if f_lo.shape[0] == 0:
            state.done, state.verdict, state.proven_fraction = True, "holds", 1.0
        yield state
