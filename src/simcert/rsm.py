"""Relative safety margins (RSM) and local implication between a network f and its compressed twin g.

Baninajjar et al. 2024 (ECAI 2025: "formal local implication"), METHODS.md section 6. For the label c and each
other class j, the log relative safety margin is the linear twin spec

    Pi_cj(x) = (f_c(x) - f_j(x)) - (g_c(x) - g_j(x)),

and its ratio form is exp(Pi_cj(x)) = [s(f(x))_c / s(f(x))_j] / [s(g(x))_c / s(g(x))_j], with s the softmax
(the ratio of the two networks' softmax safety margins). Over a region X:
    "g=>f"  min_x Pi_cj >= 0 for every j: f's margin is never below g's, so f picks c wherever g does;
    "f=>g"  max_x Pi_cj <= 0 for every j: the converse;
    "both"  both hold (Pi = 0: equal margins), "neither" otherwise.

`rsm` bounds every Pi_cj with a twin-graph engine, looks for points where a direction fails, and tightens each
undecided side by input-splitting branch and bound (lower side: rows >= 0; upper side: rows <= 0); `method="milp"`
solves each bound exactly (small networks). `rsm_dataset` runs L-inf balls around many inputs, batched, and
`rsm_probabilistic` gives distribution-free statements on Pi under an input distribution.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .errors import InputError
from .rsm_core import (
    SIDES,
    attack_pi,
    candidate_points,
    extremes_at,
    identical_twins,
    rsm_engine,
    search_side,
)
from .rsm_dataset import RsmDatasetResult, rsm_dataset
from .rsm_probabilistic import rsm_probabilistic
from .rsm_result import RsmResult, RsmWitness, check_label, confirm_witness, json_float
from .search.bab import SearchOptions
from .spec import RsmSpec
from .twin import Twin
from .verify import as_box, as_network

__all__ = ["RsmResult", "RsmWitness", "rsm", "rsm_dataset", "rsm_probabilistic", "RsmDatasetResult", "json_float"]


def rsm(
    f: Any,
    g: Any,
    region: Any,
    label: int | None = None,
    *,
    method: str = "auto",
    timeout: float = 30.0,
    search: bool = True,
    options: SearchOptions | None = None,
    attack_starts: int = 8,
    attack_steps: int = 20,
    seed: int = 0,
) -> RsmResult:
    """Certified bounds of every Pi_cj over the region and the implication verdicts.

    label: the class c (default: f's decision at the region's centre). method: an engine name of
    `simcert.verify.METHODS` ("auto": the differential engine intersected with CROWN on aligned twins, CROWN
    otherwise; "milp": exact bounds by HiGHS, small networks only). With `search`, each undecided side is
    tightened by branch and bound until proven, refuted by a confirmed witness, or `timeout` (seconds, shared by
    both sides) runs out; the bounds are the tightest found (anytime, always sound).

    >>> from simcert.network import Network, Dense
    >>> from simcert.spec import Box
    >>> f = Network([Dense(np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2))], (2,))
    >>> g = Network([Dense(np.array([[0.5, 0.0], [0.0, 0.5]]), np.zeros(2))], (2,))
    >>> r = rsm(f, g, Box([0.5, 0.0], [1.0, 0.25]), label=0)   # Pi = 0.5 (x0 - x1) > 0: g's margin is smaller
    >>> r.verdict, round(float(r.lower[0]), 6), round(float(r.upper[0]), 6)
    ('g=>f', 0.125, 0.5)
    """
    if not timeout > 0:
        raise InputError(f"timeout must be positive, got {timeout}")
    t_start = time.perf_counter()
    f_net, g_net = as_network(f), as_network(g)
    twin = Twin(f_net, g_net)
    box = as_box(region, f_net)
    m = twin.output_size
    if m < 2:
        raise InputError(f"relative safety margins need at least 2 classes, {f_net.name} has {m} output")
    c = int(np.argmax(f_net(box.center[None])[0])) if label is None else check_label(label, m)
    others = RsmSpec(c).other_indices(m)
    c1_np, c2_np = RsmSpec(c).specs(m)
    k = len(others)
    stats: dict[str, Any] = {"label_source": "given" if label is not None else "f at the centre"}

    if identical_twins(twin):  # Pi = 0 exactly: equal margins everywhere
        z = np.zeros(k)
        stats["time_s"] = time.perf_counter() - t_start
        return RsmResult(c, others, z, z.copy(), z.copy(), z.copy(), {s: "proven" for s in SIDES},
                         {s: None for s in SIDES}, "identical twins", stats)

    lo_t, hi_t = box.to_torch(torch.float64)
    lo_b, hi_b = lo_t[None], hi_t[None]
    c1, c2 = torch.as_tensor(c1_np), torch.as_tensor(c2_np)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.tensor([c])

    # 1. bounds over the whole region
    t0 = time.perf_counter()
    points = []
    if method == "milp":
        from .bounds.milp import milp_bound_spec  # exact, needs highspy; small networks only

        res = milp_bound_spec(f_net, g_net, box.lower, box.upper, c1_np, c2_np, time_limit=timeout)
        lower = torch.as_tensor(res.lower, dtype=torch.float64)
        upper = torch.as_tensor(res.upper, dtype=torch.float64)
        for arg in (res.argmin, res.argmax):
            if arg is not None:
                ok = np.isfinite(arg).all(axis=1)
                points.append(torch.as_tensor(arg[ok], dtype=torch.float64))
        method_name, bound_fn = "milp", None
        stats["milp_optimal"] = bool(np.all(res.optimal))
    else:
        method_name, bound_fn = rsm_engine(twin, method)
        with torch.no_grad() if method_name != "alpha-crown" else torch.enable_grad():
            root = bound_fn(twin, lo_b, hi_b, c1, c2)
        lower, upper = root.lower[0].detach().double(), root.upper[0].detach().double()
        coeffs = None if root.input_coeffs is None else root.input_coeffs.detach()
        points.append(candidate_points(lo_b, hi_b, coeffs)[0])
    t_engine = time.perf_counter() - t0
    stats["engine_time_s"] = t_engine

    # 2. concrete points: attack + the engine's corners / MILP optimizers
    att = attack_pi(twin, lo_b, hi_b, labels, attack_starts, attack_steps, gen)
    pts = torch.cat([p.reshape(-1, box.dim) for p in points if p.numel()] or [lo_b], 0).clamp(lo_t, hi_t)
    att = att.merge(extremes_at(twin, pts.unsqueeze(0), labels))
    obs_lo = att.row_min[0, list(others)].clone()
    obs_hi = att.row_max[0, list(others)].clone()

    witnesses: dict[str, RsmWitness | None] = {s: None for s in SIDES}
    status: dict[str, str] = {}
    status["g=>f"] = "proven" if bool((lower >= 0).all()) else "unknown"
    status["f=>g"] = "proven" if bool((upper <= 0).all()) else "unknown"
    for side, x in (("g=>f", att.lo_x[0]), ("f=>g", att.hi_x[0])):
        if status[side] == "unknown":
            w = confirm_witness(f_net, g_net, x, c, others, side)
            if w is not None:
                status[side], witnesses[side] = "refuted", w

    # 3. branch and bound on the undecided sides
    boxes, timed_out = 0, False
    if search and bound_fn is not None:
        if options is None:
            per_box = max(t_engine, 1e-4)
            options = SearchOptions(batch_size=int(min(1024, max(1, 0.1 * timeout / per_box))), seed=seed)
        for side in SIDES:
            if status[side] != "unknown":
                continue
            left = timeout - (time.perf_counter() - t_start)
            if left <= 0:
                timed_out = True
                break
            budget = left / 2 if side == "g=>f" and status["f=>g"] == "unknown" else left
            out = search_side(twin, c1, c2, side, lo_t, hi_t, bound_fn, budget, options)
            lower, upper = torch.maximum(lower, out.lower), torch.minimum(upper, out.upper)
            boxes += out.boxes_bounded
            timed_out |= out.timed_out
            if out.status == "proven":
                status[side] = "proven"
            elif out.status == "refuted" and out.point is not None:
                w = confirm_witness(f_net, g_net, out.point, c, others, side)
                if w is not None:
                    status[side], witnesses[side] = "refuted", w
    # the observed extremes include the witnesses (values on the original models)
    if witnesses["g=>f"] is not None:
        obs_lo = torch.minimum(obs_lo, torch.as_tensor(witnesses["g=>f"].pi[list(others)]))
    if witnesses["f=>g"] is not None:
        obs_hi = torch.maximum(obs_hi, torch.as_tensor(witnesses["f=>g"].pi[list(others)]))
    stats.update({"time_s": time.perf_counter() - t_start, "boxes_bounded": boxes, "timed_out": timed_out})
    return RsmResult(c, others, lower.numpy().copy(), upper.numpy().copy(), obs_lo.numpy(), obs_hi.numpy(), status,
                     witnesses, method_name, stats)

