"""Batched input-splitting branch and bound, as an anytime generator.

The frontier of unresolved sub-boxes is one tensor. Each step bounds a batch of boxes with an engine (a
callable, see `problem.BoundFn`), drops the proven ones, checks candidate points on the real networks, and
bisects the rest along the input with the largest `|coefficient| * width` of the engine's linear bound
(the smear heuristic; ReluDiff uses an interval gradient for the same purpose). Where an interval gradient
shows a row monotone in some inputs on a box (METHODS.md 3.4), each unproven side of that row moves to a face
of the box with those inputs fixed at the endpoint where the side is extreme, instead of being bisected: the
frontier carries, per box, which row sides it must still prove. The generator yields a `SearchState` after
every step, so timeouts, progress bars and distributed workers attach from outside.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch

from ..bounds.common import SpecBounds
from ..twin import Twin
from .attack import box_candidates, first_violation, pgd_attack
from .problem import BoundFn, SpecProblem

MonotoneFn = Callable[[Twin, torch.Tensor, torch.Tensor, torch.Tensor], "torch.Tensor | None"]

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
    relu_split: bool = True  # high-dimensional regions on the differential engine, without the MILP fallback:
    # the search keeps `relu_split_share` of the time limit, then ReLU-split branch and bound with
    # beta multipliers proves the rows it left open (search/relu_split.py; used by `verify`)
    relu_split_share: float = 0.5
    dtype: torch.dtype = torch.float64
    ranking_dtype: torch.dtype | None = torch.float32  # the cheap engine's split ranking (None: `dtype`); it
    # only chooses where to split, so its rounding cannot touch soundness (measured: 2x faster than float64)
    strong_dtype: torch.dtype | None = None  # the main engine's strong branching of stagnant boxes
    device: str = "cpu"
    monotone_fn: MonotoneFn | None = None  # (twin, state (B, P), c1, c2) -> (B, K, n) signs in {-1, 0, 1} from
    # the engine's intermediate bounds (`bounds.gradient.monotone_signs` for the differential engine; None: no
    # monotone-input fixing)


@dataclass
class SearchState:
    """Progress of the search; `done` with `verdict` in {"holds", "violated", "unresolved"} at the end."""

    lower: torch.Tensor  # (K,) certified lower bound of each row over the whole region so far
    upper: torch.Tensor  # (K,)
    proven_fraction: float = 0.0  # share of the region's volume proven; a box whose row sides went to
    # monotone faces counts each side (face) as an equal share of its volume
    frontier: int = 1
    boxes_bounded: int = 0
    steps: int = 0
    elapsed: float = 0.0
    done: bool = False
    verdict: str = "unknown"
    counterexample: torch.Tensor | None = None
    notes: list[str] = field(default_factory=list)


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
           prior: torch.Tensor | None, root: bool = False) -> SpecBounds:
    """One engine call, warm-started with the parents' intermediate bounds where the engine takes them, and
    told which boxes its cheap pass already proves (they skip the expensive one) where it can use that. The
    region's own box (`root`) skips the cheap pass where the engine allows it (`screen=False`): the widest
    box is the least likely to be settled by it."""
    kw: dict = {}
    if prior is not None and accepts(fn, "prior"):
        kw["prior"] = prior
    if accepts(fn, "settled"):
        kw["settled"] = prob.proven
    if root and accepts(fn, "screen"):
        kw["screen"] = False
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
                      dtype: torch.dtype | None = None, req: torch.Tensor | None = None):
    """For each box (B, n), the input whose bisection gives children with the least remaining slack.

    The children are bounded cold (no warm start): a parent's intermediate bounds would mask the differences
        between the splits (measured: 2-4x more boxes on ACAS prop 1). Near-ties (children within 1% of the best)
    go to the input that is widest relative to `root_width`: where no single bisection helps, all inputs tie
    up to rounding, and the argmin would bisect one input down to nothing while the others stay wide.

    With `with_parent`, also returns each box's best child slack divided by the box's own slack under the same
    engine (near 1: the engine sees no split that helps, so its ranking is uninformative).
    The children are bounded in `dtype` (default: the boxes'); only the choice of input is returned, so a
    cheaper, less precise dtype cannot affect soundness. `req` (B, K, 2): the row sides each box must prove
    (default: all).
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
    if req is not None:
        req = torch.cat([req.repeat_interleave(2 * d, dim=0), req]) if with_parent else req.repeat_interleave(2 * d, dim=0)
    slack = _side_slack(prob, bounds.lower, bounds.upper, req)
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


def _side_slack(prob: SpecProblem, lower: torch.Tensor, upper: torch.Tensor, req: torch.Tensor | None) -> torch.Tensor:
    """(B,) total amount by which the required row sides (`req` (B, K, 2): lower side, upper side; None: all)
    miss their limits."""
    miss = torch.stack([torch.clamp(prob.lo - lower, min=0), torch.clamp(upper - prob.hi, min=0)], -1)
    return (miss if req is None else torch.where(req, miss, torch.zeros_like(miss))).sum((1, 2))


def _screened_bounds(twin, prob: SpecProblem, bound_fn: BoundFn, screen_fn: BoundFn | None,
                     lo: torch.Tensor, hi: torch.Tensor, prior: torch.Tensor | None = None,
                     root: bool = False) -> SpecBounds:
    """Bounds of a batch: the cheap `screen_fn` first, the main engine only on the boxes it leaves open (both
    are sound, so the open boxes keep the intersection). The state of boxes the screen proved is the prior's
    (they are not split again)."""
    if screen_fn is None:
        return _bound(bound_fn, twin, prob, lo, hi, prior, root)
    cheap = _bound(screen_fn, twin, prob, lo, hi, prior)
    hard = torch.nonzero(~prob.proven(cheap)).flatten()
    if hard.numel() == 0:
        return cheap
    full = _bound(bound_fn, twin, prob, lo[hard], hi[hard], None if prior is None else prior[hard], root)
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


@dataclass
class _Boxes:
    """Sub-boxes with what the search knows of each: the bounds of the box they came from (valid for them
    too), the engine's intermediate bounds of that box (its warm start; None when none are kept), the row
    sides still to prove (B, K, 2: lower side, upper side) and their share of the region's volume."""

    lo: torch.Tensor
    hi: torch.Tensor
    blo: torch.Tensor
    bhi: torch.Tensor
    req: torch.Tensor
    weight: torch.Tensor
    st: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.lo.shape[0])

    def take(self, idx: torch.Tensor | slice) -> "_Boxes":
        pick = lambda t: None if t is None else t[idx]  # noqa: E731
        return _Boxes(self.lo[idx], self.hi[idx], self.blo[idx], self.bhi[idx], self.req[idx], self.weight[idx],
                      pick(self.st))

    def split_last(self, n: int) -> tuple["_Boxes", "_Boxes"]:
        """(the rest, the last n boxes)."""
        cut = len(self) - n
        return self.take(slice(0, cut)), self.take(slice(cut, None))

    @staticmethod
    def cat(parts: list["_Boxes"], keep_state: bool) -> "_Boxes":
        """The boxes of `parts` in order; their states too when `keep_state` and every non-empty part has them."""
        filled = [p for p in parts if len(p)]
        st = None
        if keep_state and filled and all(p.st is not None for p in filled):
            st = torch.cat([p.st for p in filled])
        return _Boxes(*(torch.cat([getattr(p, name) for p in parts]) for name in
                        ("lo", "hi", "blo", "bhi", "req", "weight")), st)

    def region_bounds(self, inf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Min of the lower and max of the upper bounds over the boxes that must still prove that side."""
        if len(self) == 0:
            return inf.clone(), -inf
        lower = torch.where(self.req[..., 0], self.blo, inf).min(0).values
        upper = torch.where(self.req[..., 1], self.bhi, -inf).max(0).values
        return lower, upper


def _monotone_faces(boxes: _Boxes, signs: torch.Tensor, open_req: torch.Tensor, free: torch.Tensor):
    """Move each open row side of a box whose row is monotone in some free inputs to a face of the box.

    signs (B, K, n) in {-1, 0, 1}; open_req (B, K, 2) the sides still open; free (B, n) the inputs that may be
    fixed. The upper side of a row non-decreasing in x_j is largest at x_j = hi_j, its lower side at lo_j (the
    other way round for a non-increasing row), so the side holds on the box iff it holds on that face.
    Returns (faces, the sides left to the box (B, K, 2)); each face carries one side and the box's share of
    the volume divided among its sides.
    """
    mono = (signs != 0) & free.unsqueeze(1)  # (B, K, n)
    to_face = open_req & mono.any(-1).unsqueeze(-1)  # (B, K, 2)
    b, k, side = torch.nonzero(to_face, as_tuple=True)
    lo, hi = boxes.lo[b].clone(), boxes.hi[b].clone()
    up = (side == 1).unsqueeze(1)
    at_hi = (signs[b, k] > 0) == up  # (F, n): where the side is extreme at the input's upper end
    fix = mono[b, k]
    value = torch.where(at_hi, hi, lo)
    lo, hi = torch.where(fix, value, lo), torch.where(fix, value, hi)
    req = torch.zeros(b.numel(), *boxes.req.shape[1:], dtype=torch.bool, device=lo.device)
    req[torch.arange(b.numel(), device=lo.device), k, side] = True
    share = boxes.weight[b] / boxes.req[b].sum((1, 2))
    faces = _Boxes(lo, hi, boxes.blo[b], boxes.bhi[b], req, share, None if boxes.st is None else boxes.st[b])
    return faces, open_req & ~to_face


def _choose_splits(twin, prob: SpecProblem, bound_fn: BoundFn, options: SearchOptions, o: _Boxes,
                   p_blo: torch.Tensor, p_bhi: torch.Tensor, coeffs: torch.Tensor | None, free: torch.Tensor,
                   active: torch.Tensor, root_width: torch.Tensor, sb_cap: int) -> tuple[torch.Tensor, int, int]:
    """The input to bisect in each open box: (dims (B,), the next strong-branching budget, boxes bounded).

    The smear heuristic (the largest |coefficient| * width over the rows with an open side), replaced by a
    cheap engine's ranking where that is informative; boxes whose slack barely improved on their parent's
    (stagnant: the coefficients do not show which input drives the unstable neurons) get strong branching
    with the real engine (every split tried, the best kept; low-dimensional inputs only), under a budget
    that doubles while it clearly beats the heuristic and halves otherwise.
    """
    dev, width = o.lo.device, o.hi - o.lo
    if len(o) == 0:
        return torch.zeros(0, dtype=torch.long, device=dev), sb_cap, 0
    if coeffs is not None and options.branching != "widest":
        unresolved = (((o.blo < prob.lo) & o.req[..., 0]) | ((o.bhi > prob.hi) & o.req[..., 1])).to(width)  # (B, K)
        score = (coeffs.abs() * unresolved.unsqueeze(-1)).sum(1) * width
        score = torch.where(free, score + 1e-12 * width, torch.full_like(score, -1.0))
    else:
        score = width
    dim = score.argmax(dim=1)
    if int(active.sum()) > options.strong_branching_max_dims or options.branching == "widest":
        return dim, sb_cap, 0
    stagnant = _side_slack(prob, o.blo, o.bhi, o.req) > options.stagnation * _side_slack(prob, p_blo, p_bhi, o.req)
    if options.branching_fn is not None and (~stagnant).any():  # rank the splits of the other boxes cheaply
        cheap = torch.nonzero(~stagnant).flatten()
        cheap_dim, ratio = _strong_branching(
            twin, prob, options.branching_fn, o.lo[cheap], o.hi[cheap], active, with_parent=True,
            root_width=root_width, dtype=options.ranking_dtype, req=o.req[cheap],
        )
        informative = ratio < options.informative_ratio  # else keep the smear choice
        dim[cheap[informative]] = cheap_dim[informative]
    extra = 0
    if stagnant.any() and sb_cap > 0:
        sb = torch.nonzero(stagnant).flatten()[:sb_cap]
        best_dim, per_child = _strong_branching(twin, prob, bound_fn, o.lo[sb], o.hi[sb], active,
                                                root_width=root_width, dtype=options.strong_dtype, req=o.req[sb])
        extra = 2 * int(active.sum()) * sb.numel()
        # adapt the budget: keep it where the best split clearly beats the heuristic's choice
        pos = torch.cumsum(active.to(torch.long), 0) - 1  # input index -> column of per_child
        rows = torch.arange(sb.numel(), device=dev)
        useful = per_child.min(1).values < 0.5 * per_child[rows, pos[dim[sb]]]
        useful_frac = float(useful.to(width.dtype).mean())
        cap_max = options.max_strong_branching
        sb_cap = min(2 * sb_cap, cap_max) if useful_frac >= 0.2 else max(sb_cap // 2, min(4, cap_max))
        dim[sb] = best_dim
    return dim, sb_cap, extra


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
    region at every yield (min/max over proven leaves and the frontier's last bounds, each side over the
    boxes responsible for it).
    """
    t0 = time.perf_counter()
    dt, dev = options.dtype, options.device
    prob = problem.to(dt, dev)
    gen = torch.Generator(device=dev).manual_seed(options.seed)
    lo0 = lower.to(dtype=dt, device=dev).reshape(1, -1)
    hi0 = upper.to(dtype=dt, device=dev).reshape(1, -1)
    active = (hi0 - lo0)[0] > 0
    root_width = torch.where(active, hi0[0] - lo0[0], torch.ones_like(hi0[0]))
    k = prob.rows
    inf = torch.full((k,), math.inf, dtype=dt, device=dev)
    req0 = torch.ones(1, k, 2, dtype=torch.bool, device=dev)  # every side; an infinite limit is met at once
    frontier = _Boxes(lo0, hi0, -inf.unsqueeze(0), inf.unsqueeze(0), req0, torch.ones(1, dtype=dt, device=dev))
    keep_state = True
    done_lo, done_hi = inf.clone(), -inf.clone()  # running min/max over finished sides
    proven_frac = 0.0
    sb_cap = options.max_strong_branching  # adaptive: strong branching of stagnant boxes per step
    per_box_s = 0.0  # seconds per box of the last step (sizes the last batch before the deadline)
    attacked = False
    state = SearchState(lower=-inf.clone(), upper=inf.clone())

    def fold(lower_b: torch.Tensor, upper_b: torch.Tensor, sides: torch.Tensor) -> None:
        """Finished row sides (B, K, 2) of bounded boxes enter the running bounds."""
        nonlocal done_lo, done_hi
        done_lo = torch.minimum(done_lo, torch.where(sides[..., 0], lower_b, inf).min(0).values)
        done_hi = torch.maximum(done_hi, torch.where(sides[..., 1], upper_b, -inf).max(0).values)

    def region_bounds(extra: _Boxes | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        f_lo, f_hi = frontier.region_bounds(inf)
        lo_, hi_ = torch.minimum(done_lo, f_lo), torch.maximum(done_hi, f_hi)
        if extra is not None:
            e_lo, e_hi = extra.region_bounds(inf)
            lo_, hi_ = torch.minimum(lo_, e_lo), torch.maximum(hi_, e_hi)
        return lo_, hi_

    while len(frontier) > 0:
        if options.deadline is not None and time.perf_counter() > options.deadline:
            state.done, state.verdict = True, "unresolved"
            state.notes.append("deadline reached")
            yield state
            return
        step_t0 = time.perf_counter()
        take = min(options.batch_size, len(frontier))
        if options.deadline is not None and per_box_s > 0:  # a smaller batch where a full one would overrun
            take = max(1, min(take, int((options.deadline - step_t0) / per_box_s)))
        frontier, batch = frontier.split_last(take)
        with torch.no_grad():
            bounds = _screened_bounds(twin, prob, bound_fn, options.screen_fn, batch.lo, batch.hi, batch.st,
                                      root=state.steps == 0)
        state.boxes_bounded += take
        met = torch.stack([bounds.lower >= prob.lo, bounds.upper <= prob.hi], -1)  # (B, K, 2)
        proven = (met | ~batch.req).all(dim=(1, 2))
        # counterexample candidates from the unproven boxes; once, also a gradient attack on the whole region
        # (cheap, finds most counterexamples; skipped when the search ends within `attack_after` steps)
        open_idx = torch.nonzero(~proven).flatten()
        if open_idx.numel():
            coeffs = None if bounds.input_coeffs is None else bounds.input_coeffs[open_idx]
            points = box_candidates(batch.lo[open_idx], batch.hi[open_idx], coeffs)
            if not attacked and state.steps >= options.attack_after and options.attack_starts > 0:
                attacked = True
                points = torch.cat([points, pgd_attack(twin, prob, lo0, hi0, options.attack_starts,
                                                       options.attack_steps, gen)])
            x = first_violation(twin, prob, points)
            if x is not None:
                # bounds valid for the whole region: finished sides, this batch and the rest of the frontier
                bounded = _Boxes(batch.lo, batch.hi, bounds.lower, bounds.upper, batch.req, batch.weight)
                state.lower, state.upper = region_bounds(bounded)
                state.done, state.verdict, state.counterexample = True, "violated", x
                state.elapsed = time.perf_counter() - t0
                yield state
                return
        # finished leaves
        if proven.any():
            fold(bounds.lower[proven], bounds.upper[proven], batch.req[proven])
            proven_frac += float(batch.weight[proven].sum())
        # split the open boxes
        if open_idx.numel():
            o = batch.take(open_idx)
            o = _Boxes(o.lo, o.hi, bounds.lower[open_idx], bounds.upper[open_idx], o.req, o.weight,
                       bounds.state[open_idx] if (keep_state and bounds.state is not None) else None)
            p_blo, p_bhi = batch.blo[open_idx], batch.bhi[open_idx]
            free = _splittable(o.hi - o.lo, root_width) & active
            faces: list[_Boxes] = []
            if options.monotone_fn is not None and bounds.state is not None:
                signs = options.monotone_fn(twin, bounds.state[open_idx], prob.c1, prob.c2)
                if signs is not None and (signs != 0).any():
                    met_o = met[open_idx] & o.req
                    new_faces, left = _monotone_faces(o, signs, o.req & ~met_o, free)
                    if len(new_faces):
                        faces = [new_faces]
                        # the box's met sides are finished; its faced sides leave; the rest stays to be split
                        share = o.weight / o.req.sum((1, 2))
                        fold(o.blo, o.bhi, met_o)
                        proven_frac += float((share * met_o.sum((1, 2))).sum())
                        o.weight = share * left.sum((1, 2))
                        o.req = left
                        keep = torch.nonzero(left.any(dim=(1, 2))).flatten()
                        o, p_blo, p_bhi, free = o.take(keep), p_blo[keep], p_bhi[keep], free[keep]
                        open_idx = open_idx[keep]
            coeffs = None if bounds.input_coeffs is None else bounds.input_coeffs[open_idx]
            dim, sb_cap, extra = _choose_splits(twin, prob, bound_fn, options, o, p_blo, p_bhi, coeffs, free,
                                                active, root_width, sb_cap)
            state.boxes_bounded += extra
            mid = ((o.lo + o.hi) / 2).gather(1, dim[:, None]).squeeze(1)
            rows = torch.arange(len(o), device=dev)
            left_hi = o.hi.clone()
            left_hi[rows, dim] = mid
            right_lo = o.lo.clone()
            right_lo[rows, dim] = mid
            half = o.weight / 2
            children = [_Boxes(o.lo, left_hi, o.blo, o.bhi, o.req, half, o.st),
                        _Boxes(right_lo, o.hi, o.blo, o.bhi, o.req, half, o.st), *faces]
            frontier = _Boxes.cat([frontier, *children], keep_state)
            if frontier.st is not None and frontier.st.numel() * frontier.st.element_size() > options.max_state_mb * 2**20:
                keep_state, frontier.st = False, None
                state.notes.append("warm-start memory cap reached: intermediate bounds no longer reused")
            if len(frontier) > options.max_frontier:
                state.notes.append("frontier limit reached")
                state.lower, state.upper = region_bounds()
                state.done, state.verdict = True, "unresolved"
                yield state
                return
        per_box_s = (time.perf_counter() - step_t0) / take
        state.steps += 1
        state.frontier = len(frontier)
        state.proven_fraction = min(proven_frac, 1.0)
        state.lower, state.upper = region_bounds()
        state.elapsed = time.perf_counter() - t0
        if len(frontier) == 0:
            state.done, state.verdict, state.proven_fraction = True, "holds", 1.0
        yield state
