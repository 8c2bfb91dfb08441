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

import contextlib
import ctypes
import os
import sys
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import InputError, UnsupportedOpError
from ..network.layers import Dense, ElementwiseAffine, Identity, Layer, QuantizeActivation, ReLU, Reshape
from ..network.network import Network

__all__ = ["MilpResult", "milp_bound_spec"]

# Relative widening of interval pre-activation bounds: float64 rounding of a sum of N terms is at most
# about N * 1.1e-16 * sum |terms|, far below this for any network the MILP can handle (N < 1e6).
_IBP_REL_WIDEN = 1e-9
# Outward margin on solver bounds (see the module docstring).
_SOLVER_REL_MARGIN = 1e-6


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


# ------------------------------------------------------------------------------------------- model builder


class _Model:
    """Columns (with bounds and integrality) and sparse rows of the MILP, built incrementally."""

    def __init__(self) -> None:
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.ncols = 0
        self.rows: list[sp.csr_matrix] = []
        self.row_lo: list[np.ndarray] = []
        self.row_hi: list[np.ndarray] = []
        self.n_rows = 0
        self.round_rows: list[np.ndarray] = []  # indices of the rows  -1/2 <= z/s - r <= 1/2
        self.n_binary = 0  # integer columns with more than one admissible value
        self.n_input = 0  # the first n_input columns are the network input
        self.lp_deadline = 0.0  # LP bound tightening runs until this perf_counter() time
        self.max_binaries = np.inf
        # how to compute each column from the input (for MIP starts): (kind, cols, *data), in creation order
        self.defs: list[tuple] = []

    def add_cols(self, lo: np.ndarray, hi: np.ndarray, integer: bool = False) -> np.ndarray:
        lo, hi = np.asarray(lo, np.float64).ravel(), np.asarray(hi, np.float64).ravel()
        idx = np.arange(self.ncols, self.ncols + lo.size)
        self.lo.append(lo)
        self.hi.append(hi)
        self.integer.append(np.full(lo.size, integer))
        self.ncols += lo.size
        if integer:
            self.n_binary += int(np.sum(hi > lo))
            if self.n_binary > self.max_binaries:
                self.lp_deadline = 0.0  # the model will be refused: finish counting cheaply
        return idx

    def add_rows(self, a: sp.spmatrix, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Rows lo <= a . cols <= hi (a over the first a.shape[1] columns); returns their indices."""
        self.rows.append(sp.csr_matrix(a))
        self.row_lo.append(np.asarray(lo, np.float64).ravel())
        self.row_hi.append(np.asarray(hi, np.float64).ravel())
        idx = np.arange(self.n_rows, self.n_rows + a.shape[0])
        self.n_rows += a.shape[0]
        return idx

    def values(self, x: np.ndarray) -> np.ndarray:
        """All column values for input x (an exact execution of both networks), in float64."""
        v = np.zeros(self.ncols)
        for kind, cols, *data in self.defs:
            if kind == "input":
                v[cols] = x
            elif kind == "affine":  # z = a . v + c
                a, c = data
                v[cols] = a @ v[: a.shape[1]] + c
            elif kind == "relu":
                v[cols] = np.maximum(v[data[0]], 0.0)
            elif kind == "step":
                v[cols] = (v[data[0]] > 0).astype(np.float64)
            else:  # "round": r = round((a . v + c) / s)
                a, c, s, mode = data
                q = (a @ v[: a.shape[1]] + c) / s
                v[cols] = np.round(q) if mode == "half_even" else np.floor(q + 0.5)
        return v

    def col_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.lo), np.concatenate(self.hi)

    def unit_rows(self, cols: np.ndarray) -> sp.csr_matrix:
        """Rows e_col for each col (one row per entry of `cols`), over all current columns."""
        n = cols.size
        return sp.csr_matrix((np.ones(n), cols, np.arange(n + 1)), shape=(n, self.ncols))


def _pad(a: sp.csr_matrix, ncols: int) -> sp.csr_matrix:
    """The same rows over `ncols` >= a.shape[1] columns."""
    a = sp.csr_matrix(a)
    return sp.csr_matrix((a.data, a.indices, a.indptr), shape=(a.shape[0], ncols))


def _stack_rows(parts: Sequence[tuple[np.ndarray, sp.csr_matrix]], m: int, ncols: int) -> sp.csr_matrix:
    """Assemble an (m, ncols) matrix from (row indices, rows) pieces."""
    order = np.concatenate([p[0] for p in parts])
    mats = sp.vstack([_pad(p[1], ncols) for p in parts], format="csr")
    perm = np.empty(m, dtype=np.int64)
    perm[order] = np.arange(m)
    return sp.csr_matrix(mats[perm])


def _interval(a: sp.csr_matrix, c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound float64 range of a . v + c for v in [lo, hi] (widened by a rigorous relative rounding margin)."""
    lo, hi = lo[: a.shape[1]], hi[: a.shape[1]]
    mid, rad = (lo + hi) / 2.0, (hi - lo) / 2.0
    absa = abs(a)
    center = a @ mid + c
    radius = absa @ rad
    widen = _IBP_REL_WIDEN * (absa @ np.abs(mid) + radius + np.abs(c))
    return center - radius - widen, center + radius + widen


# ------------------------------------------------------------------------------------------- layer rules


def _affine_map(layer: Layer, in_shape: tuple[int, ...]) -> tuple[sp.csr_matrix, np.ndarray] | None:
    """(W, b) of an affine layer on the flattened (row-major) input; None for a pure reshape."""
    if isinstance(layer, (Reshape, Identity)):
        return None
    if isinstance(layer, Dense):
        return sp.csr_matrix(layer.weight), layer.bias.copy()
    out_shape = layer.output_shape(in_shape)
    if isinstance(layer, ElementwiseAffine):
        scale = np.broadcast_to(layer.scale, in_shape).ravel()
        shift = np.broadcast_to(layer.shift, out_shape).ravel()
        return sp.diags(scale, format="csr"), shift.copy()
    # generic affine layer (Conv2d, AvgPool2d, ...): push unit vectors through W x in float64; each output is
    # one weight times 1 plus zeros, so the matrix entries are the layer's exact coefficients.
    n = int(np.prod(in_shape))
    blocks = []
    with torch.no_grad():
        bias = layer.forward(torch.zeros((1, *in_shape), dtype=torch.float64)).reshape(-1).numpy().copy()
        for start in range(0, n, 512):
            stop = min(n, start + 512)
            eye = torch.zeros((stop - start, n), dtype=torch.float64)
            eye[torch.arange(stop - start), torch.arange(start, stop)] = 1.0
            cols = layer.linear(eye.reshape(-1, *in_shape)).reshape(stop - start, -1).numpy()
            blocks.append(sp.csr_matrix(cols.T))
    return sp.hstack(blocks, format="csr"), bias


def _relu_rows(
    model: _Model, a: sp.csr_matrix, c: np.ndarray, l: np.ndarray, u: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Exact encoding of y = relu(a . v + c) given l <= a . v + c <= u; returns y as rows over the columns."""
    m = c.size
    inactive = u <= 0
    active = (l >= 0) & ~inactive
    unstable = ~(active | inactive)
    parts: list[tuple[np.ndarray, sp.csr_matrix]] = []
    new_c = np.where(active, c, 0.0)
    if active.any():
        parts.append((np.flatnonzero(active), a[active]))
    if inactive.any():
        parts.append((np.flatnonzero(inactive), sp.csr_matrix((int(inactive.sum()), a.shape[1]))))
    if unstable.any():
        ls, us, s = l[unstable], u[unstable], int(unstable.sum())
        z = model.add_cols(ls, us)
        y = model.add_cols(np.zeros(s), us)
        d = model.add_cols(np.zeros(s), np.ones(s), integer=True)
        n = model.ncols

        def cols(idx: np.ndarray, coef: np.ndarray | float) -> sp.csr_matrix:
            vals = np.broadcast_to(np.asarray(coef, np.float64), (s,))
            return sp.csr_matrix((vals, idx, np.arange(s + 1)), shape=(s, n))

        # z - a . v = c
        model.add_rows(cols(z, 1.0) - _pad(a[unstable], n), c[unstable], c[unstable])
        model.defs += [("affine", z, a[unstable], c[unstable]), ("relu", y, z), ("step", d, z)]
        # y - z >= 0
        model.add_rows(cols(y, 1.0) - cols(z, 1.0), np.zeros(s), np.full(s, np.inf))
        # y - z - l d <= -l   (y <= z - l (1 - d))
        model.add_rows(cols(y, 1.0) - cols(z, 1.0) - cols(d, ls), np.full(s, -np.inf), -ls)
        # y - u d <= 0
        model.add_rows(cols(y, 1.0) - cols(d, us), np.full(s, -np.inf), np.zeros(s))
        parts.append((np.flatnonzero(unstable), model.unit_rows(y)))
    return _stack_rows(parts, m, model.ncols), new_c


def _quantize_rows(
    model: _Model, layer: QuantizeActivation, shape: tuple[int, ...], a: sp.csr_matrix, c: np.ndarray,
    l: np.ndarray, u: np.ndarray,
) -> tuple[sp.csr_matrix, np.ndarray]:
    """Exact encoding of y = s (clamp(round(z/s) + zp, qmin, qmax) - zp) (ties: both neighbours allowed)."""
    s = np.broadcast_to(layer.scale, shape).ravel().astype(np.float64)
    zp = np.broadcast_to(layer.zero_point, shape).ravel().astype(np.float64)
    m = c.size
    vl, vu = l / s, u / s
    # round(v) in [ceil(vl - 1/2), floor(vu + 1/2)] for v in [vl, vu] (both rounding modes); the tiny slack
    # covers the rounding of the divisions above.
    # A runtime with slack may round v + d for any |d| <= slack_steps (QuantizeActivation): widen both.
    half = 0.5 + float(getattr(layer, "slack_steps", 0.0))
    rl = np.ceil(vl - half - 1e-9 * (1.0 + np.abs(vl)))
    ru = np.floor(vu + half + 1e-9 * (1.0 + np.abs(vu)))
    free = ru > rl
    parts: list[tuple[np.ndarray, sp.csr_matrix]] = []
    t_c = np.where(free, zp, rl + zp)
    if (~free).any():
        parts.append((np.flatnonzero(~free), sp.csr_matrix((int((~free).sum()), model.ncols))))
    if free.any():
        p = int(free.sum())
        r = model.add_cols(rl[free], ru[free], integer=True)
        n = model.ncols
        # -1/2 - c/s <= (a/s) . v - r <= 1/2 - c/s   (scaled by 1/s for conditioning)
        inv = sp.diags(1.0 / s[free], format="csr")
        row = _pad(inv @ a[free], n) - sp.csr_matrix((np.ones(p), r, np.arange(p + 1)), shape=(p, n))
        cs = c[free] / s[free]
        model.round_rows.append(model.add_rows(row, -half - cs, half - cs))
        model.defs.append(("round", r, a[free], c[free], s[free], layer.rounding))
        parts.append((np.flatnonzero(free), model.unit_rows(r)))
    t_a = _stack_rows(parts, m, model.ncols)
    tl, tu = rl + zp, ru + zp
    qmin, qmax = float(layer.qmin), float(layer.qmax)
    # lower clamp: max(t, qmin) = qmin + relu(t - qmin)
    if np.any(tl < qmin):
        t_a, t_c = _relu_rows(model, t_a, t_c - qmin, tl - qmin, tu - qmin)
        t_c = t_c + qmin
        tl, tu = np.maximum(tl, qmin), np.maximum(tu, qmin)
    # upper clamp: min(t, qmax) = qmax - relu(qmax - t)
    if np.any(tu > qmax):
        t_a, t_c = _relu_rows(model, -t_a, qmax - t_c, qmax - tu, qmax - tl)
        t_a, t_c = -t_a, qmax - t_c
    # y = s (t - zp)
    return sp.csr_matrix(sp.diags(s) @ t_a), s * (t_c - zp)


@dataclass
class _State:
    """A network's current activation as rows a . v + c over the model's columns, with its per-sample shape."""

    a: sp.csr_matrix
    c: np.ndarray
    shape: tuple[int, ...]
    relu_index: int = 0


_PreBounds = Sequence[list[tuple[np.ndarray, np.ndarray]] | None]


def _pre_activation(
    name: str, model: _Model, st: _State, layer: Layer, relu_bounds: _PreBounds
) -> tuple[np.ndarray, np.ndarray]:
    """Sound bounds of the input of a non-linear layer: intervals on the rows, intersected with pre_bounds."""
    lo, hi = model.col_bounds()
    l, u = _interval(st.a, st.c, lo, hi)
    if isinstance(layer, ReLU):
        l, u = _intersect_pre_bounds(name, st, l, u, relu_bounds)
        return _lp_tighten(model, st.a, st.c, l, u, (l < 0) & (u > 0), relu=True)
    return _lp_tighten(model, st.a, st.c, l, u, np.ones(l.size, dtype=bool))


def _intersect_pre_bounds(
    name: str, st: _State, l: np.ndarray, u: np.ndarray, relu_bounds: _PreBounds
) -> tuple[np.ndarray, np.ndarray]:
    for given in relu_bounds:
        if given is None:
            continue
        pl, pu = given[st.relu_index]
        if pl.size != l.size or pu.size != u.size:
            raise InputError(
                f"pre_bounds for {name} ReLU layer {st.relu_index}: expected {l.size} values, "
                f"got {pl.size} and {pu.size}"
            )
        l, u = np.maximum(l, pl), np.minimum(u, pu)
        if np.any(l > u + 1e-7 * (1.0 + np.abs(u))):
            raise InputError(
                f"pre_bounds for {name} ReLU layer {st.relu_index} exclude values the network reaches "
                "(lower above the interval upper bound): they are not sound for this box"
            )
        l, u = np.minimum(l, u), np.maximum(l, u)
    return l, u


def _lp_tighten(
    model: _Model, a: sp.csr_matrix, c: np.ndarray, l: np.ndarray, u: np.ndarray, which: np.ndarray,
    relu: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Tighten the bounds of rows a . v + c (where `which`) by min/max over the LP relaxation built so far.
    With `relu`, a row stops once its sign is decided (l >= 0 or u <= 0).

    Cheap optional step (until `model.lp_deadline`): the LP relaxation contains every exact point, so its
    optimum bounds the row; the solver value is widened like the final bounds (module docstring)."""
    rows_on_inputs_only = a.nnz == 0 or int(a.indices.max()) < model.n_input
    idx = np.flatnonzero(which)
    if idx.size == 0 or not model.rows or rows_on_inputs_only or time.perf_counter() >= model.lp_deadline:
        return l, u  # intervals are exact for rows over the input box alone
    import highspy

    h = _new_highs()
    h.passModel(_to_highs_lp(model, relax=True))
    feas_tol = _option(h, "primal_feasibility_tolerance")
    n = model.ncols
    a = _pad(a, n)
    all_cols = np.arange(n, dtype=np.int32)
    l, u = l.copy(), u.copy()
    for j in idx:
        row = a[j].toarray().ravel()
        mg_row = feas_tol * (1.0 + float(np.abs(row).sum()))
        h.changeColsCost(n, all_cols, row)
        for sense in (highspy.ObjSense.kMinimize, highspy.ObjSense.kMaximize):
            if relu and (l[j] >= 0 or u[j] <= 0):
                continue  # the ReLU is decided
            remaining = model.lp_deadline - time.perf_counter()
            if remaining <= 0:
                return l, u
            h.setOptionValue("time_limit", remaining)
            h.changeObjectiveSense(sense)
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                continue
            val = float(h.getInfo().objective_function_value) + c[j]
            mg = _SOLVER_REL_MARGIN * (1.0 + abs(val)) + mg_row
            if sense == highspy.ObjSense.kMinimize:
                l[j] = max(l[j], val - mg)
            else:
                u[j] = min(u[j], val + mg)
    return l, u


def _step(
    name: str, i: int, layer: Layer, model: _Model, st: _State, bounds: tuple[np.ndarray, np.ndarray] | None
) -> _State:
    """Encode one layer; `bounds` are the pre-activation bounds of a non-linear layer (None for affine)."""
    if layer.is_affine:
        out_shape = tuple(layer.output_shape(st.shape))
        wb = _affine_map(layer, st.shape)
        if wb is None:
            return _State(st.a, st.c, out_shape, st.relu_index)
        w, b = wb
        return _State(sp.csr_matrix(w @ st.a), w @ st.c + b, out_shape, st.relu_index)
    assert bounds is not None
    l, u = bounds
    if isinstance(layer, ReLU):
        a, c = _relu_rows(model, st.a, st.c, l, u)
        return _State(_pad(a, model.ncols), c, st.shape, st.relu_index + 1)
    if isinstance(layer, QuantizeActivation):
        a, c = _quantize_rows(model, layer, st.shape, st.a, st.c, l, u)
        return _State(_pad(a, model.ncols), c, st.shape, st.relu_index)
    raise UnsupportedOpError(f"MILP engine: {name} layer {i} ({layer.describe()}) has no MILP encoding")


def _encode(
    name: str, layers: Sequence[Layer], model: _Model, st: _State, relu_bounds: _PreBounds, first: int = 0
) -> _State:
    """Encode `layers` (numbered from `first` in messages) on `st`; every list in `relu_bounds` that is not None
    holds (l, u) per ReLU layer (indexed by `relu_index`) and is intersected with the interval bounds."""
    for i, layer in enumerate(layers, start=first):
        bounds = None if layer.is_affine else _pre_activation(name, model, st, layer, relu_bounds)
        st = _step(name, i, layer, model, st, bounds)
    return _State(_pad(st.a, model.ncols), st.c, st.shape, st.relu_index)


def _aligned(p: Layer, q: Layer, in_shape_p: tuple[int, ...], in_shape_q: tuple[int, ...]) -> bool:
    """Same layer kind acting on the same shape to the same shape (neuron j of f pairs with neuron j of g)."""
    if type(p) is not type(q) or in_shape_p != in_shape_q:
        return False
    return tuple(p.output_shape(in_shape_p)) == tuple(q.output_shape(in_shape_q))


def _add_difference_cut(
    model: _Model, sf: _State, sg: _State, dl: np.ndarray, du: np.ndarray, tighten: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Add the valid rows dl <= (g row) - (f row) <= du where they beat the interval of the difference row
    (first tightened by LP where `tighten`).

    Returns the intersected difference bounds. The MILP stays exact: these only cut LP-relaxation points."""
    n = model.ncols
    diff = _pad(sg.a, n) - _pad(sf.a, n)
    dc = sg.c - sf.c
    lo, hi = model.col_bounds()
    il, iu = _interval(diff, dc, lo, hi)
    if tighten is not None:
        il, iu = _lp_tighten(model, diff, dc, np.maximum(dl, il), np.minimum(du, iu), tighten)
    tighter = (dl > il + 1e-9 * (1 + np.abs(il))) | (du < iu - 1e-9 * (1 + np.abs(iu)))
    if tighter.any():
        rows = sp.csr_matrix(diff[tighter])
        model.add_rows(rows, np.maximum(dl, il)[tighter] - dc[tighter], np.minimum(du, iu)[tighter] - dc[tighter])
    return np.maximum(dl, il), np.minimum(du, iu)


def _encode_twin_suffix(
    fl: Sequence[Layer], gl: Sequence[Layer], model: _Model, st: _State, pb_f: _PreBounds, pb_g: _PreBounds,
    names: tuple[str, str], first: int,
) -> tuple[_State, _State]:
    """Encode f's and g's own layers from the common state `st`.

    While the layers stay aligned (same kind and shapes), the activation difference D = g - f is bounded as in
    ReluDiff (Paulsen et al., ICSE 2020), in float64 interval arithmetic:
        affine   D' = W_g D + (W_g - W_f) h_f + (b_g - b_f)        (h_f: f's layer input)
        ReLU     relu(z_g) - relu(z_f) in [min(0, D), max(0, D)] and in [relu(l_g) - relu(u_f), relu(u_g) - relu(l_f)],
                 = D where both neurons are active
    and every bound is added as a valid row on (g row) - (f row) before each non-linear layer and after it.
    The independent big-M relaxations of f and g ignore that g ~ f; these rows restore the coupling.
    """
    sf = sg = st
    zero = np.zeros(int(np.prod(st.shape)))
    dl, du = zero, zero.copy()
    k = 0
    while k < min(len(fl), len(gl)) and _aligned(fl[k], gl[k], sf.shape, sg.shape):
        lf_, lg_ = fl[k], gl[k]
        i = first + k
        if lf_.is_affine:
            wf, wg = _affine_map(lf_, sf.shape), _affine_map(lg_, sg.shape)
            if wf is not None and wg is not None:
                lo, hi = model.col_bounds()
                hl, hu = _interval(sf.a, sf.c, lo, hi)
                (w_f, b_f), (w_g, b_g) = wf, wg
                dw = sp.csr_matrix(w_g - w_f)
                # interval of W_g D + dW h_f + db (center/radius form, rigorously widened like _interval)
                dm, dr, hm, hr = (dl + du) / 2, (du - dl) / 2, (hl + hu) / 2, (hu - hl) / 2
                aw, adw = abs(w_g), abs(dw)
                center = w_g @ dm + dw @ hm + (b_g - b_f)
                radius = aw @ dr + adw @ hr
                widen = _IBP_REL_WIDEN * (aw @ np.abs(dm) + adw @ np.abs(hm) + radius + np.abs(b_g - b_f))
                dl, du = center - radius - widen, center + radius + widen
            sf = _step(names[0], i, lf_, model, sf, None)
            sg = _step(names[1], i, lg_, model, sg, None)
        else:
            bf = _pre_activation(names[0], model, sf, lf_, pb_f)
            bg = _pre_activation(names[1], model, sg, lg_, pb_g)
            undecided = ((bf[0] < 0) & (bf[1] > 0)) | ((bg[0] < 0) & (bg[1] > 0))
            dl, du = _add_difference_cut(model, sf, sg, dl, du, undecided if isinstance(lf_, ReLU) else None)
            sf = _step(names[0], i, lf_, model, sf, bf)
            sg = _step(names[1], i, lg_, model, sg, bg)
            if isinstance(lf_, ReLU):
                (l_f, u_f), (l_g, u_g) = bf, bg
                relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
                both_active = (l_f >= 0) & (l_g >= 0)
                nl = np.where(both_active, dl, np.maximum(np.minimum(dl, 0.0), relu(l_g) - relu(u_f)))
                nu = np.where(both_active, du, np.minimum(np.maximum(du, 0.0), relu(u_g) - relu(l_f)))
                dl, du = nl, nu
            else:  # other non-linear pairs: only the plain interval of the difference (computed in the cut)
                dl, du = np.full(dl.shape, -np.inf), np.full(du.shape, np.inf)
            dl, du = _add_difference_cut(model, sf, sg, dl, du)
        k += 1
    if k == len(fl) == len(gl) and k > 0:  # fully aligned: bound the output difference too
        _add_difference_cut(model, sf, sg, dl, du)
    sf = _encode(names[0], fl[k:], model, sf, pb_f, first + k)
    sg = _encode(names[1], gl[k:], model, sg, pb_g, first + k)
    return sf, sg


def _same_layer(p: Layer, q: Layer) -> bool:
    """Identical type and parameters (so both networks compute the same values through it)."""
    if type(p) is not type(q):
        return False
    for fld in fields(p):
        if fld.name.startswith("_"):
            continue
        u, v = getattr(p, fld.name), getattr(q, fld.name)
        if isinstance(u, np.ndarray) or isinstance(v, np.ndarray):
            if not np.array_equal(np.asarray(u), np.asarray(v)):
                return False
        elif u != v:
            return False
    return True


def _shared_prefix(f: Network, g: Network) -> int:
    """Number of leading layers f and g share exactly (encoded once: the twin graph's common trunk)."""
    if tuple(f.input_shape) != tuple(g.input_shape):
        return 0
    p = 0
    while p < min(len(f.layers), len(g.layers)) and _same_layer(f.layers[p], g.layers[p]):
        p += 1
    return p


def _normalize_pre_bounds(
    pre_bounds: Sequence[Any] | None, nf: int, ng: int
) -> tuple[list | None, list | None]:
    """Accept [f_list, g_list] (one (l, u) per ReLU layer of each net) or a flat list of nf + ng pairs."""
    if pre_bounds is None:
        return None, None
    items = list(pre_bounds)

    def pairs(seq: Sequence[Any], who: str) -> list[tuple[np.ndarray, np.ndarray]]:
        out = []
        for j, p in enumerate(seq):
            if len(p) != 2:
                raise InputError(f"pre_bounds for {who} ReLU layer {j}: expected a (lower, upper) pair")
            out.append((np.asarray(p[0], np.float64).ravel(), np.asarray(p[1], np.float64).ravel()))
        return out

    # nested [f_list, g_list] vs a flat list of pairs: unambiguous by the lengths, since a pair has length 2
    # (a flat list of two pairs would need len(pair) == nf and len(pair) == ng with nf + ng == 2)
    nested = len(items) == 2 and all(isinstance(e, (list, tuple)) for e in items)
    if nested and len(items[0]) == nf and len(items[1]) == ng:
        return pairs(items[0], "f"), pairs(items[1], "g")
    if len(items) == nf + ng:
        return pairs(items[:nf], "f"), pairs(items[nf:], "g")
    raise InputError(
        f"pre_bounds must hold one (lower, upper) pair per ReLU layer: [f's {nf}, g's {ng}] "
        f"or a flat list of {nf + ng}"
    )


# ------------------------------------------------------------------------------------------- HiGHS


_BANNER_LOCK = threading.Lock()
_BANNER_DONE = False


@contextlib.contextmanager
def _quiet_stdout_fd() -> Iterator[None]:
    """Silence C-level stdout (HiGHS prints a banner when its first object is made); best effort."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _new_highs() -> Any:
    global _BANNER_DONE
    import highspy

    with _BANNER_LOCK:
        if _BANNER_DONE:
            h = highspy.Highs()
        else:
            with _quiet_stdout_fd():
                h = highspy.Highs()
            _BANNER_DONE = True
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-9)
    return h


def _option(h: Any, name: str) -> float:
    """A numeric HiGHS option (highspy returns either the value or a (status, value) pair)."""
    v = h.getOptionValue(name)
    return float(v[-1] if isinstance(v, tuple) else v)


def _matrix(model: _Model) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """All rows as one (rows, ncols) matrix with their lower/upper bounds."""
    if not model.rows:
        return sp.csr_matrix((0, model.ncols)), np.zeros(0), np.zeros(0)
    a = sp.vstack([_pad(r, model.ncols) for r in model.rows], format="csr")
    return a, np.concatenate(model.row_lo), np.concatenate(model.row_hi)


def _highs_lp(
    a: sp.csr_matrix, rlo: np.ndarray, rhi: np.ndarray, clo: np.ndarray, chi: np.ndarray,
    integer: np.ndarray | None = None,
) -> Any:
    """A HighsLp with rows rlo <= a . v <= rhi, columns clo <= v <= chi (integer where `integer`)."""
    import highspy

    a = sp.csr_matrix(a)
    a.sum_duplicates()
    a.eliminate_zeros()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_ = np.zeros(a.shape[1])
    lp.col_lower_, lp.col_upper_ = clo, chi
    lp.row_lower_, lp.row_upper_ = rlo, rhi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = a.shape[1], a.shape[0]
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(np.float64)
    if integer is not None and integer.any():
        lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous for b in integer]
    return lp


def _to_highs_lp(model: _Model, relax: bool = False) -> Any:
    """The model (its LP relaxation with `relax`) for HiGHS."""
    a, rlo, rhi = _matrix(model)
    lo, hi = model.col_bounds()
    return _highs_lp(a, rlo, rhi, lo, hi, None if relax else np.concatenate(model.integer))


def _start_points(
    f: Network, g: Network, lo: np.ndarray, hi: np.ndarray, c1: np.ndarray, c2: np.ndarray, n_random: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate inputs (centre, corners of boxes with <= 8 inputs, seeded uniform samples) and their real
    spec values (N, k), evaluated by running both networks."""
    pts = [(lo + hi) / 2, lo, hi]
    if lo.size <= 8:
        pts += list(np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(lo.size, -1).T)
    x = np.concatenate([np.array(pts), np.random.default_rng(0).uniform(lo, hi, size=(n_random, lo.size))])
    return x, f(x) @ c1.T + g(x) @ c2.T


def _interior_witness(model: _Model, sol: np.ndarray, obj: np.ndarray, value: float, maximize: bool) -> np.ndarray:
    """A point of the incumbent's integer cell as far from its rounding ties as possible (at most 1/4 grid
    step), keeping the objective within 1e-7 relative of the incumbent's `value` (objective without offset).

    An incumbent of a quantized twin may sit on a tie z/s = k + 1/2 where the real network rounds the other
    way; this LP (integers fixed, tie rows shrunk by a slack t, maximize t) moves it inside the cell, so the
    real networks evaluate to the solver's value. Returns the input part of the LP solution (or of `sol`)."""
    import highspy

    a, rlo, rhi = _matrix(model)
    clo, chi = model.col_bounds()
    integ = np.concatenate(model.integer)
    clo, chi = clo.copy(), chi.copy()
    clo[integ] = chi[integ] = np.round(sol[integ])
    tie = np.concatenate(model.round_rows)
    n = model.ncols
    t_col = sp.csr_matrix(np.ones((tie.size, 1)))
    other = np.setdiff1d(np.arange(a.shape[0]), tie)
    tol = 1e-7 * (1.0 + abs(value))
    rows = sp.vstack([
        sp.hstack([a[other], sp.csr_matrix((other.size, 1))]),
        sp.hstack([a[tie], -t_col]),  # z/s - r - t >= -1/2
        sp.hstack([a[tie], t_col]),  # z/s - r + t <= 1/2
        sp.csr_matrix(np.append(obj, 0.0)[None]),
    ], format="csr")
    lo_obj, hi_obj = (value - tol, np.inf) if maximize else (-np.inf, value + tol)
    rl = np.concatenate([rlo[other], rlo[tie], np.full(tie.size, -np.inf), [lo_obj]])
    ru = np.concatenate([rhi[other], np.full(tie.size, np.inf), rhi[tie], [hi_obj]])
    h = _new_highs()
    h.passModel(_highs_lp(rows, rl, ru, np.append(clo, 0.0), np.append(chi, 0.25)))
    h.changeColsCost(1, np.array([n], dtype=np.int32), np.array([1.0]))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.setOptionValue("time_limit", 5.0)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        return np.asarray(h.getSolution().col_value, np.float64)[: model.n_input]
    return sol[: model.n_input]


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
