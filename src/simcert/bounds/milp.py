"""Exact MILP bounds of twin specs `c1 . f(x) + c2 . g(x)` over a box, with HiGHS (`highspy`).

Requires: two networks `f`, `g` on the same flat input size, made of affine layers (Dense, Conv2d,
    AvgPool2d, Reshape/Flatten, ElementwiseAffine, Identity), ReLU and QuantizeActivation; a box
    `lower <= x <= upper`; spec rows `c1` (k, m_f) and `c2` (k, m_g).
Returns: `MilpResult` with, per spec row, a certified lower and upper bound, the witness inputs that attain
    them and whether both sides were solved to optimality. Raises `InputError` when the model needs more than
    `max_binaries` integer variables, `UnsupportedOpError` for any other layer (e.g. Tanh, MaxPool).
Method: both networks are encoded exactly on the *shared* input variables (the twin graph, METHODS.md 2 and
    3.4). Affine layers are composed symbolically into sparse rows over earlier variables (conv and pooling
    become sparse matrices, so only small nets are practical); every non-linear neuron is encoded from its
    pre-activation bounds [l, u] (interval arithmetic in float64 on the symbolic rows, intersected with
    `pre_bounds` when given):

    ReLU y = max(0, z), z = a . v + c:
        u <= 0: y = 0 (no variable);  l >= 0: y = z (the row is passed on, no variable);
        l < 0 < u (big-M, one binary d):  z = a . v + c,  y >= 0,  y >= z,  y <= z - l (1 - d),  y <= u d.
    QuantizeActivation y = s (clamp(round(z / s) + zp, qmin, qmax) - zp), per element:
        one integer r with  z/s - 1/2 <= r <= z/s + 1/2  (exact rounding except on the tie set
        z/s in Z + 1/2, where both neighbours are allowed: a superset, so still sound), fixed when its
        range holds one integer; t = r + zp;  clamp(t, qmin, qmax) = qmax - relu(qmax - (qmin + relu(t - qmin)))
        with the ReLU rule above (binaries only where the clamp is undecided).

    Strengthening (none changes the exact optimum, all only remove LP-relaxation points):
    - layers identical in f and g at the start (same type and parameters) are encoded once;
    - while f's and g's layers stay aligned (same kinds and widths), ReluDiff-style interval bounds of the
      difference g - f of every neuron are added as rows on (g row) - (f row), before and after each
      non-linear layer (see `_encode_twin_suffix`): the separate big-M relaxations of f and g ignore that g ~ f;
    - for up to `lp_fraction` of the time limit, undecided pre-activation bounds (and the difference rows) are
      tightened by min/max over the LP relaxation built so far (widened like the final bounds, see below).
    Ties: the tie set has measure zero where z is a non-constant piecewise-linear function of x, so there the
    optimum is the supremum of the real spec (attained beside the tie; the witness is moved into the interior
    of its rounding cell by a small LP, see `_interior_witness`). Where z is constant on a region (after an
    earlier quantizer) and exactly on a tie, the bound stays sound but can exceed the real supremum.
    Each spec row and side is one MIP solve (maximize / minimize), started from the best of a few sampled
    inputs (its columns computed by running the encoding); `time_limit` is the budget of the whole call,
    shared evenly among the solves still to run.
Guarantee: sound and complete up to the solver's tolerances. The certified side is always HiGHS's MIP
    *dual* bound (the proved bound), never the incumbent; the incumbent only gives the witness. On a time
    limit the dual bound is still valid, and `optimal` is False. Every returned bound is also clipped by the
    (sound, loose) interval bound of the spec. Floating point: HiGHS works with feasibility tolerances
    (primal 1e-7, integrality 1e-6), so its optimum can be off by about 1e-6 relative; each bound (and each
    LP-tightened pre-activation bound) is widened outward by `1e-6 * (1 + |bound|) + feas_tol * (1 + ||a||_1)`,
    with `a` the objective row over the model variables. This margin is an engineering allowance for the
    solver's tolerances, not a rigorous floating-point proof (the interval pre-activation bounds *are* widened
    by a rigorous relative margin).
Reference: Tjeng, Xiao, Tedrake, "Evaluating robustness of neural networks with mixed integer programming"
    (ICLR 2019); NeuralVerification.jl's MIPVerify; HiGHS (Huangfu and Hall 2018).

Code: `milp_model` (the model), `milp_encode` (the encoding), `milp_solve` (HiGHS helpers); this module
    checks the inputs and runs the solves.

Example (one neuron: f(x) = relu(x), g(x) = relu(x) - 0.1 x on x in [-1, 1]; max of g - f is 0.1 at x=-1):

>>> import numpy as np
>>> from simcert.network.layers import Dense, ReLU
>>> from simcert.network.network import Network
>>> f = Network([Dense([[1.0]], [0.0]), ReLU()], (1,))
>>> g = Network([Dense([[1.0], [-1.0]], [0.0, 0.0]), ReLU(), Dense([[0.9, 0.1]], [0.0])], (1,))
>>> res = milp_bound_spec(f, g, np.array([-1.0]), np.array([1.0]), np.array([[-1.0]]), np.array([[1.0]]))
>>> round(float(res.upper[0]), 4), round(float(res.lower[0]), 4), bool(res.optimal[0])
(0.1, -0.1, True)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from ..errors import InputError
from ..network.network import Network
from .milp_encode import _State, _encode, _encode_twin_suffix, _normalize_pre_bounds, _shared_prefix
from .milp_model import _Model, _interval, _pad
from .milp_solve import _SOLVER_REL_MARGIN, _interior_witness, _new_highs, _option, _start_points, _to_highs_lp

__all__ = ["MilpResult", "milp_bound_spec"]


@dataclass(frozen=True)
class MilpResult:
    """Bounds of each spec row over the box.

    `lower`/`upper` (k,): certified bounds (the exact optimum, widened by `margin`, where `optimal`).
    `argmin`/`argmax` (k, n): the solver's incumbent inputs (the best start point where the solver found
    none; rows of NaN for a side not solved; None when no row has one). `optimal` (k,): every requested side
    solved to optimality. `margin` (k, 2): the outward widening applied to the lower and upper side (0 for a
    side bounded by intervals only).
    A side not listed in `sides` gets the interval bound of the spec (sound, loose) and no witness.
    """

    lower: np.ndarray
    upper: np.ndarray
    argmin: np.ndarray | None
    argmax: np.ndarray | None
    optimal: np.ndarray
    time_s: float
    margin: np.ndarray | None = None


def _check_inputs(
    f: Network, g: Network, lower: Any, upper: Any, c1: Any, c2: Any, sides: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if f.input_size != g.input_size:
        raise InputError(f"twin input sizes differ: {f.name} has {f.input_size}, {g.name} has {g.input_size}")
    lo = np.asarray(lower, np.float64).ravel()
    hi = np.asarray(upper, np.float64).ravel()
    if lo.size != f.input_size or hi.size != f.input_size:
        raise InputError(f"box has {lo.size}/{hi.size} bounds but the networks take {f.input_size} inputs")
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise InputError("box bounds must be finite")
    if np.any(lo > hi):
        raise InputError(f"box lower bound above upper bound at input {int(np.argmax(lo > hi))}")
    c1a, c2a = np.atleast_2d(np.asarray(c1, np.float64)), np.atleast_2d(np.asarray(c2, np.float64))
    if c1a.ndim != 2 or c2a.ndim != 2 or c1a.shape[0] != c2a.shape[0]:
        raise InputError(f"spec coefficients c1 {np.shape(c1)} and c2 {np.shape(c2)} need the same number of rows")
    if c1a.shape[1] != f.output_size or c2a.shape[1] != g.output_size:
        raise InputError(
            f"spec coefficients c1 {c1a.shape} / c2 {c2a.shape} do not match the output sizes "
            f"{f.output_size} / {g.output_size}"
        )
    if not (np.all(np.isfinite(c1a)) and np.all(np.isfinite(c2a))):
        raise InputError("spec coefficients must be finite")
    bad = [s for s in sides if s not in ("lower", "upper")]
    if bad or not sides:
        raise InputError(f"sides must be a non-empty subset of ('lower', 'upper'), got {tuple(sides)!r}")
    return lo, hi, c1a, c2a


# ------------------------------------------------------------------------------------------- engine


def milp_bound_spec(
    f: Network,
    g: Network,
    lower: np.ndarray,
    upper: np.ndarray,
    c1: np.ndarray,
    c2: np.ndarray,
    *,
    time_limit: float = 60.0,
    pre_bounds: list | None = None,
    max_binaries: int = 2000,
    sides: Sequence[str] = ("lower", "upper"),
    lp_fraction: float = 0.25,
) -> MilpResult:
    """Bound each spec row `c1[k] . f(x) + c2[k] . g(x)` over `lower <= x <= upper` exactly by MILP.

    `pre_bounds`: sound pre-activation bounds of every ReLU layer of the *simplified* networks over this box,
    either `[f_list, g_list]` or one flat list (f's layers first), each entry a `(lower, upper)` pair of arrays
    of that layer's (flattened) size; they are intersected with interval bounds. `time_limit` (seconds) is
    the budget of the whole call; up to `lp_fraction` of it goes to tightening the pre-activation bounds by
    LP (0 turns that off). Raises `InputError("MILP too large: ...")` when the model needs more than
    `max_binaries` integer variables (unstable ReLUs, undecided clamps and activation-rounding integers),
    `UnsupportedOpError` for a layer without an encoding. See the module docstring for the guarantee.
    """
    t0 = time.perf_counter()
    lo_x, hi_x, c1a, c2a = _check_inputs(f, g, lower, upper, c1, c2, sides)
    if time_limit <= 0:
        raise InputError(f"time_limit must be positive, got {time_limit}")
    fs, gs = f.simplified(), g.simplified()
    nf, ng = fs.relu_count(), gs.relu_count()
    pb_f, pb_g = _normalize_pre_bounds(pre_bounds, nf, ng)

    model = _Model()
    x_cols = model.add_cols(lo_x, hi_x)
    model.defs.append(("input", x_cols))
    model.n_input = x_cols.size
    model.lp_deadline = t0 + lp_fraction * time_limit
    model.max_binaries = max_binaries
    n = x_cols.size
    state = _State(sp.csr_matrix((np.ones(n), x_cols, np.arange(n + 1)), shape=(n, model.ncols)), np.zeros(n),
                   tuple(fs.input_shape))
    # identical leading layers are encoded once (both pre_bounds apply to them), then each net's own suffix
    p = _shared_prefix(fs, gs)
    state = _encode(f"{f.name}/{g.name}", fs.layers[:p], model, state, [pb_f, pb_g])
    out_f, out_g = _encode_twin_suffix(fs.layers[p:], gs.layers[p:], model, state, [pb_f], [pb_g], (f.name, g.name), p)
    a_f, c_f, a_g, c_g = out_f.a, out_f.c, out_g.a, out_g.c
    if model.n_binary > max_binaries:
        raise InputError(
            f"MILP too large: {model.n_binary} binary variables > max_binaries={max_binaries} "
            f"({f.name} vs {g.name}; tighter pre_bounds or a smaller box reduce it)"
        )
    a_f, a_g = _pad(a_f, model.ncols), _pad(a_g, model.ncols)
    col_lo, col_hi = model.col_bounds()
    has_int = bool(np.concatenate(model.integer).any())

    k = c1a.shape[0]
    obj = sp.csr_matrix(c1a) @ a_f + sp.csr_matrix(c2a) @ a_g  # (k, ncols)
    obj = obj.toarray()
    offset = c1a @ c_f + c2a @ c_g
    # sound interval bound of each spec row over the column box: the fallback and a clip for every side
    ib_lo, ib_hi = _interval(sp.csr_matrix(obj), offset, col_lo, col_hi)

    lower_out, upper_out = ib_lo.copy(), ib_hi.copy()
    margin = np.zeros((k, 2))
    arg = {"lower": np.full((k, x_cols.size), np.nan), "upper": np.full((k, x_cols.size), np.nan)}
    optimal = np.ones(k, dtype=bool)

    import highspy

    stopped = {
        highspy.HighsModelStatus.kTimeLimit,
        highspy.HighsModelStatus.kIterationLimit,
        highspy.HighsModelStatus.kSolutionLimit,
        highspy.HighsModelStatus.kInterrupt,
    }
    h = _new_highs()
    status = h.passModel(_to_highs_lp(model))
    if status == highspy.HighsStatus.kError:  # pragma: no cover - malformed model is a bug
        raise RuntimeError("HiGHS rejected the MILP model")
    feas_tol = _option(h, "primal_feasibility_tolerance")
    if has_int:
        feas_tol = max(feas_tol, _option(h, "mip_feasibility_tolerance"))
    all_cols = np.arange(model.ncols, dtype=np.int32)
    starts, start_vals = _start_points(f, g, lo_x, hi_x, c1a, c2a)
    jobs = [(i, side) for i in range(k) for side in ("lower", "upper") if side in sides]
    deadline = t0 + time_limit
    for j, (i, side) in enumerate(jobs):
        remaining = deadline - time.perf_counter()
        h.setOptionValue("time_limit", max(remaining / (len(jobs) - j), 1e-3))
        h.changeColsCost(model.ncols, all_cols, obj[i])
        h.changeObjectiveOffset(float(offset[i]))
        h.changeObjectiveSense(highspy.ObjSense.kMinimize if side == "lower" else highspy.ObjSense.kMaximize)
        best = starts[int(np.argmin(start_vals[:, i]) if side == "lower" else np.argmax(start_vals[:, i]))]
        arg[side][i] = best
        if has_int:  # MIP start: the best sampled input, with every column computed by running the encoding
            h.setSolution(model.ncols, all_cols, model.values(best))
        h.run()
        ms = h.getModelStatus()
        info = h.getInfo()
        if ms in (highspy.HighsModelStatus.kInfeasible, highspy.HighsModelStatus.kUnboundedOrInfeasible):
            raise InputError(
                "MILP infeasible: the encoding excludes every input of the box"
                + (" (the given pre_bounds are not sound for this box)" if pre_bounds is not None else "")
            )
        is_opt = ms == highspy.HighsModelStatus.kOptimal
        bound = np.nan
        if has_int and (is_opt or ms in stopped):  # the proved (dual) bound survives an early stop
            bound = float(info.mip_dual_bound)
            if is_opt and not np.isfinite(bound):
                bound = float(info.objective_function_value)
        elif is_opt:  # an LP: at optimality the objective value is the bound (strong duality)
            bound = float(info.objective_function_value)
        if not is_opt:
            optimal[i] = False
        if np.isfinite(bound):
            mg = _SOLVER_REL_MARGIN * (1.0 + abs(bound)) + feas_tol * (1.0 + float(np.abs(obj[i]).sum()))
            if side == "lower" and bound - mg > lower_out[i]:
                lower_out[i], margin[i, 0] = bound - mg, mg
            elif side == "upper" and bound + mg < upper_out[i]:
                upper_out[i], margin[i, 1] = bound + mg, mg
        if int(info.primal_solution_status) == 2:  # the solver's incumbent is the witness
            sol = np.asarray(h.getSolution().col_value, np.float64)
            cands = [np.clip(sol[x_cols], lo_x, hi_x)]
            if model.round_rows:  # a quantized incumbent may sit on a rounding tie: move it into its cell
                value = float(info.objective_function_value) - float(offset[i])
                cands.append(np.clip(_interior_witness(model, sol, obj[i], value, side == "upper"), lo_x, hi_x))
            real = f(np.array(cands)) @ c1a[i] + g(np.array(cands)) @ c2a[i]
            arg[side][i] = cands[int(np.argmin(real) if side == "lower" else np.argmax(real))]

    def witness(side: str) -> np.ndarray | None:
        w = arg[side]
        return None if np.all(np.isnan(w)) else w

    return MilpResult(
        lower=lower_out,
        upper=upper_out,
        argmin=witness("lower"),
        argmax=witness("upper"),
        optimal=optimal,
        time_s=time.perf_counter() - t0,
        margin=margin,
    )
