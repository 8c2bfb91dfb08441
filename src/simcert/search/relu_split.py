"""ReLU-split branch and bound on the differential engine, for regions with many free inputs (image balls).

Bisecting one input at a time barely shrinks a box with hundreds of free pixels; fixing the phase of an
unstable neuron removes its relaxation instead. A sub-problem ("domain") is the region's box with phase
constraints s_d * v_d(x) >= 0, d = 1..D, where v_d is the pre-activation of a ReLU neuron of f (z) or of g
(z' = z + delta) and s_d = +1 (active) or -1 (inactive). The two children of a split cover their parent.

Bounding a domain:
1. intermediate bounds: the parent's, with the split neuron's bound clipped to its phase (l >= 0 or u <= 0),
   then the differential forward pass with refinement (`diff_forward(refine=True, prior=...)`), so the split
   neuron's relaxation is exact and the layers after it tighten. A domain whose bounds cross (l > u) is empty.
2. the spec side back-substituted through the differential graph with the constraints in Lagrangian form
   (beta-CROWN, Wang et al., NeurIPS 2021): for beta_d >= 0,
       max over the domain of c . out(x)  <=  max over the box of  c . out(x) + sum_d beta_d s_d v_d(x),
   since every added term is >= 0 on the domain. The betas are optimized by projected Adam; every iterate's
   bound is valid, and each domain keeps the best one (and its parent's, a superset's).
Branching: the neuron whose relaxation gap, weighted by its coefficient in the final pass, is largest (the
BaBSR score of Bunel et al., JMLR 2020, on the differential graph: |mu| . gap of f's lines + |lam| . gap of
the difference neuron's lines).
Guarantee: sound (float64, outward widening; Lagrangian relaxation); incomplete. At the deadline the open
domains' bounds are still valid, so the result is the max over all leaves.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from ..bounds.common import concretize_upper, widen
from ..bounds.diff import _half_lines, diff_backward_partial, diff_forward
from ..network import ReLU
from ..twin import Twin
from .problem import SpecProblem

__all__ = ["ReluSplitOptions", "ReluSplitResult", "relu_split_search", "supports_relu_split"]


@dataclass(frozen=True)
class ReluSplitOptions:
    batch_size: int = 32  # domains popped per step (each gives two children)
    beta_steps: int = 20  # projected Adam steps on the multipliers per bound
    beta_lr: float = 0.05
    polish_steps: int = 300  # steps for a domain with every neuron stable (splitting cannot help it any more)
    max_domains: int = 50_000  # frontier cap (then the search stops with "unknown")
    max_bounded: int | None = None  # budget of domains bounded in all (None: until the deadline); a budget
    # that does not depend on the machine's speed (tests)


@dataclass(frozen=True)
class ReluSplitResult:
    """Certified bounds of every row over the region (K,) (+-inf on sides the search was not asked to bound),
    whether every asked side was proven, and the search's counts. `closed_share`: the share of the split
    tree closed (each split halves a domain's share; not a share of the input volume)."""

    lower: torch.Tensor
    upper: torch.Tensor
    proven: bool
    domains: int
    closed_share: float
    time_s: float


def supports_relu_split(twin: Twin) -> bool:
    """Aligned twins with at least one ReLU pair (the splittable neurons) and no quantizer pairs."""
    if twin.pairs is None:
        return False
    acts = [p for p in twin.pairs if p.is_activation]
    return bool(acts) and all(isinstance(p.f, ReLU) for p in acts)


@dataclass(frozen=True)
class _Layout:
    """Where each activation pair's bounds sit in the packed state (`DiffIntermediate.pack`) and the
    splittable neuron columns: column c is (pair, neuron, kind 0 = f / 1 = g, lower col, upper col)."""

    offsets: dict[int, tuple[int, int]]  # pair -> (offset, width)
    columns: torch.Tensor  # (C, 5) long

    @staticmethod
    def of(twin: Twin) -> "_Layout":
        assert twin.pairs is not None
        shapes, offsets, cols, at = twin.shapes(), {}, [], 0
        for i, pair in enumerate(twin.pairs):
            if not pair.is_activation:
                continue
            w = int(torch.Size(shapes[i]).numel())
            offsets[i] = (at, w)
            for kind, group in ((0, 0), (1, 2)):  # (zl, zu) and (gl, gu)
                for j in range(w):
                    cols.append((i, j, kind, at + group * w + j, at + (group + 1) * w + j))
            at += 6 * w
        return _Layout(offsets, torch.tensor(cols, dtype=torch.long))

    def unstable(self, state: torch.Tensor) -> torch.Tensor:
        """(B, C) bool: the column's neuron is unstable under the state's bounds."""
        lo, hi = state[:, self.columns[:, 3]], state[:, self.columns[:, 4]]
        return (lo < 0) & (hi > 0)

    def empty(self, state: torch.Tensor) -> torch.Tensor:
        """(B,) bool: some bound crossed (lower above upper beyond rounding): the domain has no point."""
        out = torch.zeros(state.shape[0], dtype=torch.bool, device=state.device)
        for at, w in self.offsets.values():
            for group in range(3):
                lo, hi = state[:, at + 2 * group * w : at + (2 * group + 1) * w], state[:, at + (2 * group + 1) * w : at + (2 * group + 2) * w]
                out |= (lo > hi + 1e-9 * (1 + hi.abs())).any(dim=1)
        return out


def _objectives(problem: SpecProblem, known_lower: torch.Tensor, known_upper: torch.Tensor):
    """The open sides as "upper bound <= threshold" objectives: (a1 (R, m), a2 (R, m), thr (R,), row (R,),
    sign (R,)), a row's lower side being the upper side of its negation."""
    a1, a2, thr, rows, signs = [], [], [], [], []
    for k, sides in problem.open_sides(known_lower, known_upper):
        for side in sorted(sides, reverse=True):  # the upper side first
            s = 1.0 if side == "upper" else -1.0
            a1.append(s * problem.c1[k]), a2.append(s * problem.c2[k]), rows.append(k), signs.append(s)
            thr.append(problem.hi[k] if side == "upper" else -problem.lo[k])
    if not rows:
        return None
    return torch.stack(a1), torch.stack(a2), torch.stack(thr), torch.tensor(rows), torch.tensor(signs)


def _lagrangian_terms(layout: _Layout, splits: torch.Tensor, beta: torch.Tensor):
    """{pair: (add_mu, add_lam)} (B, R, width) from the constraints (B, D, 4) [pair, neuron, kind, sign]
    (sign 0: padding) and multipliers beta (B, R, D): beta_d s_d on z (f's neuron) or on z and delta (g's,
    whose pre-activation is z + delta)."""
    bsz, r = beta.shape[:2]
    terms = {}
    for i, (_, w) in layout.offsets.items():
        on = (splits[:, :, 0] == i) & (splits[:, :, 3] != 0)  # (B, D)
        if not bool(on.any()):
            continue
        val = beta * (splits[:, :, 3].to(beta) * on)[:, None, :]  # (B, R, D)
        idx = torch.where(on, splits[:, :, 1], 0)[:, None, :].expand(bsz, r, -1)
        zeros = torch.zeros(bsz, r, w, dtype=beta.dtype, device=beta.device)
        add_mu = zeros.scatter_add(2, idx, val)
        add_lam = zeros.scatter_add(2, idx, val * (splits[:, :, 2] == 1)[:, None, :])
        terms[i] = (add_mu, add_lam)
    return terms


def _bound_domains(twin, layout, lower, upper, state, splits, beta, objectives, open_mask, opts: ReluSplitOptions,
                   deadline: float = float("inf")):
    """Bound B domains, the multipliers starting from `beta` (B, R, D) (the parent's, warm start): (upper
    (B, R) widened, new state (B, P), branching score (B, C), optimized multipliers)."""
    a1, a2 = objectives[0].to(lower), objectives[1].to(lower)
    bsz, r = state.shape[0], a1.shape[0]
    lo_b, hi_b = lower.expand(bsz, -1), upper.expand(bsz, -1)
    with torch.no_grad():
        inter, lines, _ = diff_forward(twin, lo_b, hi_b, refine=True, prior=state)
    new_state = inter.pack()
    mu0 = (a1 + a2).unsqueeze(0).expand(bsz, r, -1)
    lam0 = a2.unsqueeze(0).expand(bsz, r, -1)
    end = len(twin.pairs)

    def run(beta: torch.Tensor, trace: dict | None = None) -> torch.Tensor:
        terms = _lagrangian_terms(layout, splits, beta)
        coef, const = diff_backward_partial(twin, lines, mu0, lam0, end, pre_terms=terms, trace=trace)
        return concretize_upper(coef, const, lo_b, hi_b)

    d = splits.shape[1]
    with torch.no_grad():
        best = run(beta)
    if d and opts.beta_steps:
        beta = beta.clone().requires_grad_(True)
        opt = torch.optim.Adam([beta], lr=opts.beta_lr)
        weight = open_mask.to(lower)
        for _ in range(opts.beta_steps):
            if time.perf_counter() > deadline:  # every iterate's bound is valid: stop early at the deadline
                break
            u = run(beta)
            best = torch.minimum(best, u.detach())
            opt.zero_grad()
            (u * weight).sum().backward()
            opt.step()
            with torch.no_grad():
                beta.clamp_(min=0.0)
        beta = beta.detach()
    trace: dict = {}
    with torch.no_grad():
        best = torch.minimum(best, run(beta, trace))
        score = _branching_score(layout, lines, trace, open_mask, new_state)
    return widen(best, best)[1], new_state, score, beta


def _branching_score(layout: _Layout, lines: dict, trace: dict, open_mask: torch.Tensor, state: torch.Tensor):
    """(B, C): per splittable neuron, its relaxation gaps weighted by its coefficients in the final pass (summed
    over the open objectives): f's neuron |mu| . gap(f's lines) + |lam| . gap(difference lines), g's neuron
    |lam| . gap(difference lines). Zero where the neuron is stable."""
    w_open = open_mask.to(state).unsqueeze(-1)  # (B, R, 1)
    parts = []
    for i, (_, w) in layout.offsets.items():
        mu, lam = trace[i]
        h = _half_lines(lines[i])
        bsz = mu.shape[0]
        amu = (mu.abs().reshape(bsz, -1, w) * w_open).sum(1)
        alam = (lam.abs().reshape(bsz, -1, w) * w_open).sum(1)
        d_gap = alam * h["db_rad"].reshape(bsz, w)
        parts += [amu * h["b_rad"].reshape(bsz, w) + d_gap, d_gap]
    return torch.cat(parts, 1) * layout.unstable(state)


def relu_split_search(
    twin: Twin,
    problem: SpecProblem,
    lower: torch.Tensor,
    upper: torch.Tensor,
    known_lower: torch.Tensor,
    known_upper: torch.Tensor,
    deadline: float,
    options: ReluSplitOptions = ReluSplitOptions(),
) -> ReluSplitResult | None:
    """Prove the sides of each row that `known_lower/upper` leave open over the box [lower, upper] (n,) by
    splitting ReLU phases, until `deadline` (a time.perf_counter() value). None for twins it cannot split
    (`supports_relu_split`)."""
    t0 = time.perf_counter()
    k = problem.rows
    out_lo = torch.full((k,), -float("inf"), dtype=torch.float64)
    out_hi = torch.full((k,), float("inf"), dtype=torch.float64)
    if not supports_relu_split(twin):
        return None
    objectives = _objectives(problem.to(torch.float64), known_lower, known_upper)
    if objectives is None:
        return ReluSplitResult(out_lo, out_hi, True, 0, 1.0, time.perf_counter() - t0)
    lower, upper = lower.reshape(1, -1).double(), upper.reshape(1, -1).double()
    thr, rows, signs = objectives[2], objectives[3], objectives[4]
    r = thr.numel()
    layout = _Layout.of(twin)
    state = diff_forward(twin, lower, upper, refine=True)[0].pack()
    splits = torch.zeros(1, 0, 4, dtype=torch.long)
    beta = torch.zeros(1, r, 0, dtype=torch.float64)
    ub, _, score, beta = _bound_domains(twin, layout, lower, upper, state, splits, beta, objectives,
                                        torch.ones(1, r, dtype=torch.bool), options)
    ub = torch.minimum(ub, torch.where(signs > 0, known_upper[rows], -known_lower[rows]).unsqueeze(0))
    share = torch.ones(1, dtype=torch.float64)
    closed_max = torch.full((r,), -float("inf"), dtype=torch.float64)  # best bound over closed domains
    closed_share, domains = 0.0, 1
    open_ = ~(ub <= thr).all(1)
    if not bool(open_[0]):
        closed_max, closed_share = ub[0], 1.0
    front = (state[open_], splits[open_], ub[open_], share[open_], score[open_], beta[open_])
    stuck = bool(open_[0]) and float(score.max()) <= 0
    budget = float("inf") if options.max_bounded is None else options.max_bounded
    while (not stuck and front[0].shape[0] and time.perf_counter() < deadline
           and front[0].shape[0] <= options.max_domains and domains < budget):
        take = min(options.batch_size, front[0].shape[0])
        batch = tuple(t[:take] for t in front)  # oldest first: the shallowest domains, the largest shares
        front = tuple(t[take:] for t in front)
        children = _split(layout, *batch)
        c_state, c_splits, c_ub, c_share, c_beta = children
        open_mask = c_ub > thr
        new_ub, new_state, c_score, c_beta = _bound_domains(twin, layout, lower, upper, c_state, c_splits, c_beta,
                                                            objectives, open_mask, options, deadline)
        domains += c_state.shape[0]
        c_ub = torch.minimum(c_ub, new_ub)
        empty = layout.empty(new_state)
        closed = empty | (c_ub <= thr).all(1)
        fixed = ~closed & (c_score.max(1).values <= 0)
        if bool(fixed.any()):
            # every neuron of these domains is stable: only the multipliers are left to tighten (polish them)
            at = torch.nonzero(fixed).flatten()
            polish = replace(options, beta_steps=options.polish_steps)
            p_ub, _, _, p_beta = _bound_domains(twin, layout, lower, upper, new_state[at], c_splits[at], c_beta[at],
                                                objectives, c_ub[at] > thr, polish, deadline)
            c_ub[at], c_beta[at] = torch.minimum(c_ub[at], p_ub), p_beta
            closed[at] = (c_ub[at] <= thr).all(1)
        if bool(closed.any()):
            closed_share += float(c_share[closed].sum())
            real = closed & ~empty
            if bool(real.any()):
                closed_max = torch.maximum(closed_max, c_ub[real].max(0).values)
        keep = ~closed
        if bool((c_score[keep].max(1).values <= 0).any()):
            # an open domain without an unstable neuron: splitting cannot tighten it, so no proof can follow
            stuck = True
        front = _join(front, tuple(t[keep] for t in (new_state, c_splits, c_ub, c_share, c_score, c_beta)))
        if stuck:
            break
    proven = front[0].shape[0] == 0
    best = closed_max if proven else torch.maximum(closed_max, front[2].max(0).values)
    for q in range(r):
        row = int(rows[q])
        if signs[q] > 0:
            out_hi[row] = best[q]
        else:
            out_lo[row] = -best[q]
    return ReluSplitResult(out_lo, out_hi, proven, domains, min(closed_share, 1.0), time.perf_counter() - t0)


def _split(layout: _Layout, state, splits, ub, share, score, beta):
    """Both children of each domain on its best-scored neuron: clipped states, constraint lists one longer,
    the parent's bounds (valid on the children), half its share each and its multipliers (0 for the new
    constraint). (Measured: also splitting the other network's same neuron where it is unstable, four
    children, proved fewer of the small MILP-checked twins and CNN balls in the same time.)"""
    col = layout.columns[score.argmax(1)]  # (B, 5)
    rows = torch.arange(state.shape[0])
    active, inactive = state.clone(), state.clone()
    active[rows, col[:, 3]] = active[rows, col[:, 3]].clamp(min=0.0)
    inactive[rows, col[:, 4]] = inactive[rows, col[:, 4]].clamp(max=0.0)

    def constraint(sign: int) -> torch.Tensor:
        c = torch.stack([col[:, 0], col[:, 1], col[:, 2], torch.full_like(col[:, 0], sign)], 1)
        return torch.cat([splits, c[:, None]], 1)

    beta = torch.nn.functional.pad(beta, (0, 1)).repeat(2, 1, 1)
    return (torch.cat([active, inactive]), torch.cat([constraint(1), constraint(-1)]),
            ub.repeat(2, 1), share.repeat(2) / 2, beta)


def _join(front: tuple, new: tuple) -> tuple:
    """The frontier with new domains appended; constraint lists (and their multipliers) of different lengths
    are padded (sign 0, multiplier 0)."""
    d = max(front[1].shape[1], new[1].shape[1])
    pad_c = lambda t: torch.nn.functional.pad(t, (0, 0, 0, d - t.shape[1]))  # noqa: E731
    pad_b = lambda t: torch.nn.functional.pad(t, (0, d - t.shape[2]))  # noqa: E731
    pads = {1: pad_c, len(front) - 1: pad_b}  # the multipliers come last
    return tuple(torch.cat([pads[j](a), pads[j](b)]) if j in pads else torch.cat([a, b])
                 for j, (a, b) in enumerate(zip(front, new)))
