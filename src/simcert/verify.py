"""Deterministic differential verification: `verify` and `bound_spec`, the public entry points.

Data flow: models -> Twin -> (region, property) -> SpecProblem -> engine inside branch and bound ->
VerificationResult (verdict, certified bounds per row, confirmed counterexample, statistics).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable

import numpy as np
import torch

from .bounds import ENGINES
from .bounds.common import SpecBounds
from .bounds.gradient import monotone_signs, supports_gradient
from .errors import InputError
from .network import Network, QuantizeActivation
from .search.attack import first_violation
from .search.bab import SearchOptions, SearchState, branch_and_bound
from .search.problem import BoundFn, SpecProblem
from .search.relu_split import relu_split_search, supports_relu_split
from .spec import Box, DeltaTop1, EpsEquivalence, LinearSpec, RsmSpec, Top1, check_outputs
from .spec.properties import Property
from .twin import Twin

__all__ = ["verify", "bound_spec", "VerificationResult", "Counterexample", "METHODS", "as_network", "as_box"]

METHODS = ("auto", "interval", "crown", "alpha-crown", "diff", "diff-forward", "milp")


@dataclass(frozen=True)
class Counterexample:
    """An input where the property fails, with both models' outputs (confirmed on the real networks)."""

    x: np.ndarray
    f_out: np.ndarray
    g_out: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"input": self.x.tolist(), "f": self.f_out.tolist(), "g": self.g_out.tolist()}


@dataclass
class VerificationResult:
    """The answer of `verify`.

    verdict: "holds" (sound proof), "violated" (confirmed counterexample) or "unknown" (timeout/inconclusive).
    lower/upper: certified bounds over the region of each spec row (`rows` describes them); for
    eps-equivalence the rows are g_k - f_k.
    """

    verdict: str
    property: Property
    method: str
    rows: list[str]
    lower: np.ndarray
    upper: np.ndarray
    counterexample: Counterexample | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    precision: str = "float64, bounds widened outward by 1e-9 relative"

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    def bounds_dict(self) -> list[dict[str, Any]]:
        return [
            {"row": r, "lower": float(lo), "upper": float(hi)} for r, lo, hi in zip(self.rows, self.lower, self.upper)
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "property": self.property.to_json(),
            "method": {"name": self.method, "precision": self.precision},
            "bounds": self.bounds_dict(),
            "counterexample": None if self.counterexample is None else self.counterexample.to_dict(),
            "stats": self.stats,
        }


def as_network(model: Any) -> Network:
    """A Network from a Network, a path (.onnx/.nnet) or a torch module (which needs `load` with a shape)."""
    if isinstance(model, Network):
        return model
    from .network.io import load

    return load(model)


def as_box(region: Any, net: Network) -> Box:
    """A Box from a Box or a (lower, upper) pair, checked against the model's input size."""
    box = region if isinstance(region, Box) else Box(*region)
    return box.check_model(net)


def choose_method(twin: Twin, method: str) -> str:
    """`auto`: the differential engine for aligned twins (measured best, docs/benchmarks.md; activation-quantized
    twins align their quantizers with identity placeholders), else CROWN on the twin graph."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method == "auto":
        return "diff" if twin.aligned else "crown"
    if method in ("diff", "diff-forward") and not twin.aligned:
        raise InputError(f"method {method} needs twins with the same layer structure ({twin.alignment_note})")
    return method


def engine(method: str) -> BoundFn:
    if method == "milp":
        from .bounds.milp_engine import milp_bound_fn

        return milp_bound_fn
    return ENGINES[method]


def problem_for(prop: Property, twin: Twin, box: Box) -> tuple[SpecProblem, list[str]]:
    """The spec rows and allowed intervals that decide `prop` on the region."""
    m = twin.output_size
    t = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    if isinstance(prop, EpsEquivalence):
        c1, c2 = prop.specs(m)
        k = c1.shape[0]
        rows = [f"g_{i} - f_{i}" for i in prop.indices(m)]
        return SpecProblem(t(c1), t(c2), t(np.full(k, -prop.eps)), t(np.full(k, prop.eps))), rows
    if isinstance(prop, (Top1, DeltaTop1)):
        # sufficient condition: f and g both pick f's class at the region's centre on the whole region
        label = int(np.argmax(twin.f(box.center[None])[0]))
        c1, c2 = prop.specs(m, label)
        k = c1.shape[0]
        tiny = np.full(k, np.finfo(np.float64).tiny)  # strict: margins > 0
        rows = [f"f_{label} - f_{j}" for j in range(m) if j != label] + [f"g_{label} - g_{j}" for j in range(m) if j != label]

        def confirm(fx: torch.Tensor, gx: torch.Tensor) -> torch.Tensor:
            return torch.as_tensor(check_outputs(prop, fx.detach().cpu().numpy(), gx.detach().cpu().numpy()))

        return SpecProblem(t(c1), t(c2), t(tiny), t(np.full(k, np.inf)), confirm), rows
    if isinstance(prop, (RsmSpec, LinearSpec)):
        c1, c2 = prop.specs(m)
        k = c1.shape[0]
        offset = prop.offset if isinstance(prop, LinearSpec) else 0.0
        rows = [f"spec {i}" for i in range(k)]
        return SpecProblem(t(c1), t(c2), t(np.full(k, -offset)), t(np.full(k, np.inf))), rows
    raise InputError(f"unsupported property {type(prop).__name__}")


def _confirm(prop: Property, f: Network, g: Network, x: torch.Tensor) -> Counterexample | None:
    """Re-run both original models on x (float64) and keep x only if the property really fails there."""
    xn = x.detach().cpu().numpy().astype(np.float64)[None]
    fx, gx = f(xn), g(xn)
    if bool(check_outputs(prop, fx, gx)[0]):
        return Counterexample(xn[0], fx[0], gx[0])
    return None


class _ProgressWatch:
    """Whether a search is still progressing: its unproven fraction shrank by at least 5% over the last
    `window` seconds (measured on ACAS Xu: the forward-ranking phase either keeps shrinking it steadily, e.g.
    prop 7 on 1_9 at eps 0.05 by 8-13% per 30 s for 300 s, or stalls for minutes, where the smear phase then
    wins)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.samples: deque[tuple[float, float]] = deque()

    def add(self, now: float, proven_fraction: float) -> None:
        self.samples.append((now, 1.0 - proven_fraction))
        while len(self.samples) > 1 and self.samples[1][0] <= now - self.window:
            self.samples.popleft()

    def progressing(self) -> bool:
        (t_old, old), (t_new, new) = self.samples[0], self.samples[-1]
        return t_new - t_old >= 0.5 * self.window and new < 0.95 * old


def verify(
    f: Any,
    g: Any,
    region: Any,
    prop: Property,
    *,
    method: str = "auto",
    timeout: float = 60.0,
    options: SearchOptions = SearchOptions(),
    progress: Callable[[SearchState], None] | None = None,
) -> VerificationResult:
    """Decide `prop` for every x in `region`: a proof, a confirmed counterexample, or "unknown" at the timeout.

    >>> import numpy as np
    >>> from simcert.network import Network, Dense
    >>> f = Network([Dense(np.array([[1.0, 2.0]]), np.zeros(1))], (2,))
    >>> g = Network([Dense(np.array([[1.0, 2.01]]), np.zeros(1))], (2,))
    >>> verify(f, g, Box([0, 0], [1, 1]), EpsEquivalence(0.05)).verdict
    'holds'
    >>> verify(f, g, Box([0, 0], [10, 10]), EpsEquivalence(0.05)).verdict
    'violated'
    """
    if timeout <= 0:
        raise InputError(f"timeout must be positive, got {timeout}")
    f_net, g_net = as_network(f), as_network(g)
    twin = Twin(f_net, g_net)
    box = as_box(region, f_net)
    chosen = choose_method(twin, method)
    problem, rows = problem_for(prop, twin, box)
    lower, upper = box.to_torch(torch.float64)
    # Branching portfolio (measured, docs/benchmarks.md): for the differential engine, rank input splits with
    # the cheap forward pass for the first share of the time, then restart with the smear heuristic; the two
    # fail on different instances. Bounds from every phase are valid for the whole region, so they intersect.
    if chosen in ("diff", "diff-forward") and options.monotone_fn is None and supports_gradient(twin):
        # the differential engine's intermediate bounds give an interval gradient: monotone-input fixing
        options = replace(options, monotone_fn=monotone_signs)
    phases = [options]
    quantized = any(isinstance(l, QuantizeActivation) for l in twin.f.layers + twin.g.layers)
    if options.branching == "auto" and quantized:  # jumps: bisect the widest input (measured, see tests)
        phases = [replace(options, branching="widest")]
    elif options.branching_fn is None and options.branching == "auto" and chosen == "diff":
        phases = [replace(options, branching_fn=ENGINES["diff-forward"]), replace(options, branching="smear")]
    t0 = time.perf_counter()
    # many free inputs: bisection barely shrinks the box, so the exact MILP gets the rest of the time
    free = int((upper > lower).sum())
    high_dim = free > options.strong_branching_max_dims
    use_milp = options.milp_fallback and chosen != "milp" and high_dim
    # ... or, by default on the differential engine, ReLU-split branch and bound
    use_split = (options.relu_split and not use_milp and chosen == "diff" and high_dim and not quantized
                 and supports_relu_split(twin))
    search_timeout = timeout * (options.milp_share if use_milp else options.relu_split_share if use_split else 1.0)
    state: SearchState | None = None
    counterexample = None
    verdict = "unknown"
    best_lo = torch.full((problem.rows,), -float("inf"), dtype=torch.float64)
    best_hi = torch.full((problem.rows,), float("inf"), dtype=torch.float64)
    total_boxes = 0
    proven_fraction = 0.0  # each phase searches the whole region, so the best phase's share is proven
    for k, phase in enumerate(phases):
        # the first phase of a portfolio gets 40% of the time, and all of it while it is still progressing (a
        # restart cannot catch up on what a progressing search has left: measured on prop 7 on 1_9, eps 0.05)
        first = len(phases) > 1 and k == 0
        end = time.perf_counter() + 0.4 * search_timeout if first else t0 + search_timeout
        hard_end = t0 + search_timeout
        phase = replace(phase, deadline=phase.deadline or hard_end)
        watch = _ProgressWatch(window=0.1 * search_timeout)
        for state in branch_and_bound(twin, problem, lower, upper, engine(chosen), phase):
            if progress is not None:
                progress(state)
            watch.add(time.perf_counter(), state.proven_fraction)
            if state.done:
                if state.verdict == "violated" and state.counterexample is not None:
                    counterexample = _confirm(prop, f_net, g_net, state.counterexample)
                    verdict = "violated" if counterexample is not None else "unknown"
                elif state.verdict == "holds":
                    verdict = "holds"
                break
            now = time.perf_counter()
            if now > hard_end or (now > end and not watch.progressing()):
                break
        assert state is not None
        total_boxes += state.boxes_bounded
        proven_fraction = max(proven_fraction, state.proven_fraction)
        if torch.isfinite(state.lower).all() or torch.isfinite(state.upper).all():
            best_lo = torch.maximum(best_lo, state.lower.to(best_lo))
            best_hi = torch.minimum(best_hi, state.upper.to(best_hi))
        if verdict != "unknown" or time.perf_counter() - t0 > search_timeout:
            break
    assert state is not None
    precision = VerificationResult.precision
    split_note = None
    if use_split and verdict == "unknown" and t0 + timeout - time.perf_counter() > 0.1:
        split = relu_split_search(twin, problem, lower, upper, best_lo, best_hi, t0 + timeout)
        if split is not None:
            best_lo, best_hi = torch.maximum(best_lo, split.lower), torch.minimum(best_hi, split.upper)
            split_note = {"domains": split.domains, "closed_share": round(split.closed_share, 4),
                          "time_s": round(split.time_s, 3)}
            if bool(problem.proven(SpecBounds(best_lo[None], best_hi[None], None))[0]):
                verdict = "holds"
    milp_note = None
    if use_milp and verdict == "unknown" and t0 + timeout - time.perf_counter() > 0.1:
        from .search.milp_fallback import milp_fallback

        fallback = milp_fallback(twin, problem, lower, upper, best_lo, best_hi, t0 + timeout - time.perf_counter())
        if fallback is not None:
            best_lo, best_hi = torch.maximum(best_lo, fallback.lower), torch.minimum(best_hi, fallback.upper)
        verdict, counterexample, precision, milp_note = _milp_verdict(twin, problem, prop, fallback, best_lo, best_hi)
    lower_b, upper_b = best_lo, best_hi
    if total_boxes == 0:
        # decided before any box was bounded (a counterexample at once): report the root box's bounds
        with torch.no_grad() if chosen != "alpha-crown" else _null():
            root = engine(chosen)(twin, lower[None], upper[None], problem.c1, problem.c2)
        lower_b, upper_b = root.lower[0].detach(), root.upper[0].detach()
    stats = {
        "time_s": time.perf_counter() - t0,
        "boxes_bounded": total_boxes,
        "steps": state.steps,
        "frontier": state.frontier if verdict == "unknown" else 0,
        "proven_fraction": 1.0 if verdict == "holds" else proven_fraction,
        "timed_out": verdict == "unknown" and not state.done,
    }
    if milp_note is not None:
        stats["milp"] = milp_note
    if split_note is not None:
        stats["relu_split"] = split_note
    return VerificationResult(
        verdict=verdict,
        property=prop,
        method=chosen,
        rows=rows,
        lower=lower_b.cpu().numpy(),
        upper=upper_b.cpu().numpy(),
        counterexample=counterexample,
        stats=stats,
        precision=precision,
    )


def _milp_verdict(twin: Twin, problem: SpecProblem, prop: Property, fallback: Any, lower: torch.Tensor,
                  upper: torch.Tensor) -> tuple[str, Counterexample | None, str, dict[str, Any]]:
    """Verdict after the MILP fallback (`search.milp_fallback.MilpFallback`, None when it could not run), given
    the region's bounds with its bounds intersected in: (verdict, counterexample, precision, statistics)."""
    precision = VerificationResult.precision
    if fallback is None:
        return "unknown", None, precision, {"used": False, "reason": "twin too large or not encodable"}
    note = {"used": True, "time_s": round(fallback.time_s, 3), "optimal_rows": fallback.optimal_rows}
    if fallback.candidates.numel():
        x = first_violation(twin, problem, fallback.candidates)
        ce = None if x is None else _confirm(prop, twin.f, twin.g, x)
        if ce is not None:
            return "violated", ce, precision, note
    if bool(problem.proven(SpecBounds(lower[None], upper[None], None))[0]):
        precision = ("float64 bounds widened outward by 1e-9 relative; rows left open by the search bounded by the "
                     "MILP (HiGHS's proved dual bound, widened for its tolerances)")
        return "holds", None, precision, note
    return "unknown", None, precision, note


def bound_spec(
    f: Any, g: Any, region: Any, c1: Any, c2: Any, method: str = "crown"
) -> tuple[np.ndarray, np.ndarray]:
    """Certified (lower, upper) of c1 . f(x) + c2 . g(x) over the region, from one engine call (no search).

    c1, c2: (m,) or (K, m). Returns arrays of shape (K,).
    """
    f_net, g_net = as_network(f), as_network(g)
    twin = Twin(f_net, g_net)
    box = as_box(region, f_net)
    chosen = choose_method(twin, method)
    c1a = np.atleast_2d(np.asarray(c1, dtype=np.float64))
    c2a = np.atleast_2d(np.asarray(c2, dtype=np.float64))
    if c1a.shape != c2a.shape or c1a.shape[1] != twin.output_size:
        raise InputError(f"spec shapes {c1a.shape} and {c2a.shape} do not match {twin.output_size} outputs")
    lower, upper = box.to_torch(torch.float64)
    with torch.no_grad() if chosen != "alpha-crown" else _null():
        res = engine(chosen)(twin, lower[None], upper[None], torch.as_tensor(c1a), torch.as_tensor(c2a))
    return res.lower[0].detach().numpy(), res.upper[0].detach().numpy()


class _null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *a: Any) -> None:
        return None
