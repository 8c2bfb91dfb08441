"""Exact MILP encoding of networks for `milp`: layer rules (affine maps, ReLU and quantizer rows), pre-activation
bounds (intervals, given `pre_bounds`, LP tightening) and the twin encoding (shared prefix, difference rows)."""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import InputError, UnsupportedOpError
from ..network.layers import Dense, ElementwiseAffine, Identity, Layer, QuantizeActivation, ReLU, Reshape
from ..network.network import Network
from .milp_model import _IBP_REL_WIDEN, _Model, _interval, _pad, _stack_rows
from .milp_solve import _SOLVER_REL_MARGIN, _new_highs, _option, _to_highs_lp


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
    optimum bounds the row; the solver value is widened like the final bounds (`milp` module docstring)."""
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
