"""Differential bounds on the aligned twin graph (ReluDiff / NeuroDiff, with a CROWN-style final pass).

State of the twin graph at each layer: f's value z and the difference delta = z' - z (g's value is z + delta).
Affine step, exactly (ReluDiff):  z_out = W h + b,   delta_out = W' Delta + (W' - W) h + (b' - b),
where h = relu(z) and Delta = relu(z + delta) - relu(z) is the difference neuron. When the twins are close,
W' - W is small and delta stays small and precise.

Two passes:
1. *Forward symbolic pass* (ReluDiff/NeuroDiff): lower and upper linear equations in the input for z, for
   g's own value z', and for delta, layer by layer, using the ReLU and difference-neuron lines of
   `relaxations.py`; concretized on the box they give every intermediate bound (z, z', delta).
2. *Backward pass over the differential graph* (our proposal, METHODS.md 3.3): the final spec
   c1 . f + c2 . g = (c1 + c2) . z_L + c2 . delta_L is back-substituted through the (z, delta) graph with the
   same lines, so every relaxation keeps its own coefficient instead of being frozen into an input equation
   (the effect NeuroDiff's extra symbolic variables approximate).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import torch

from ..errors import UnsupportedOpError
from ..network import Layer, QuantizeActivation, ReLU, Shape
from ..twin import Twin
from .crown import backsubstitute
from .common import SpecBounds, apply_flat, batch_dot, concretize_upper, layer_bias, quantizer_interval, widen
from .interval import interval_bounds
from .relaxations import (
    ActivationLines,
    DiffLines,
    diff_relu_eqs,
    diff_relu_lines,
    identity_lines,
    quantize_lines,
    relu_eq_lower,
    relu_eq_upper,
    relu_lines,
    twin_lines_difference,
)

__all__ = ["diff_bounds", "DiffIntermediate", "diff_forward"]


@dataclass
class DiffIntermediate:
    """Concrete pre-activation bounds at each activation pair of the aligned twin graph, keyed by pair index."""

    z: dict[int, tuple[torch.Tensor, torch.Tensor]]
    g: dict[int, tuple[torch.Tensor, torch.Tensor]]
    d: dict[int, tuple[torch.Tensor, torch.Tensor]]

    def pack(self) -> torch.Tensor:
        """All bounds as one (B, P) tensor: per activation pair, (zl, zu, gl, gu, dl, du) flattened."""
        parts = [t.flatten(1) for i in sorted(self.z) for t in (*self.z[i], *self.g[i], *self.d[i])]
        return torch.cat(parts, 1)

    @staticmethod
    def unpack(packed: torch.Tensor, twin: Twin) -> dict[int, tuple[torch.Tensor, ...]]:
        """Inverse of `pack`: {pair index: (zl, zu, gl, gu, dl, du)} with the pair's shape."""
        assert twin.pairs is not None
        shapes, out, at = twin.shapes(), {}, 0
        for i, pair in enumerate(twin.pairs):
            if pair.is_activation:
                w = int(torch.Size(shapes[i]).numel())
                chunk = packed[:, at : at + 6 * w].reshape(packed.shape[0], 6, *shapes[i])
                out[i] = tuple(chunk[:, j] for j in range(6))
                at += 6 * w
        return out


# --------------------------------------------------------------------------------------- forward pass
# An "equation pair" (U, L) is two tensors (B, f + 1, *shape): rows 0..f-1 are coefficients of the f inputs
# free in the batch, row f the constant; U bounds the quantity from above and L from below for every x in the box.


def _eq_affine(layer: Layer, up: torch.Tensor, lo: torch.Tensor, in_shape: Shape, bias: bool):
    """(W+ U + W- L + b, W+ L + W- U + b) computed as W mid +- |W| rad (no per-sign matrices needed)."""
    mid, rad = (up + lo) / 2, (up - lo) / 2
    m = apply_flat(layer.linear, mid, 2, in_shape)
    r = apply_flat(layer.abs_linear, rad, 2, in_shape)
    new_up, new_lo = m + r, m - r
    if bias:
        b = layer_bias(layer, in_shape, up)[0]
        new_up[:, -1] += b
        new_lo[:, -1] += b
    return new_up, new_lo


def _ranges(up: torch.Tensor, lo: torch.Tensor, box_c: torch.Tensor, box_r: torch.Tensor):
    """(min U, max U, min L, max L) of an equation pair over the box: value at the centre -+ |coefficients|.radius."""
    shape = up.shape[2:]
    bsz = up.shape[0]
    out = []
    for eq in (up, lo):
        e = eq.reshape(bsz, eq.shape[1], -1)
        mid = e[:, -1] + torch.bmm(box_c.unsqueeze(1), e[:, :-1]).squeeze(1)
        rad = torch.bmm(box_r.unsqueeze(1), e[:, :-1].abs()).squeeze(1)
        out += [(mid - rad).reshape(bsz, *shape), (mid + rad).reshape(bsz, *shape)]
    return tuple(out)


def _eq_lines(r: ActivationLines, up: torch.Tensor, lo: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Equations of a monotone activation (slopes >= 0) from its lines: (su U + bu, sl L + bl)."""
    new_up = r.upper_slope.unsqueeze(1) * up
    new_up[:, -1] += r.upper_bias
    new_lo = r.lower_slope.unsqueeze(1) * lo
    new_lo[:, -1] += r.lower_bias_or_zero()
    return new_up, new_lo


def _eq_diff_lines(d: DiffLines, z_up, z_lo, d_up, d_lo) -> tuple[torch.Tensor, torch.Tensor]:
    """Equations of the difference neuron from its lines: each coefficient picks U or L by its sign."""

    def comb(c: torch.Tensor, hi: torch.Tensor, lo: torch.Tensor) -> torch.Tensor:
        c = c.unsqueeze(1)
        return c.clamp(min=0) * hi + c.clamp(max=0) * lo

    new_up = comb(d.uz, z_up, z_lo) + comb(d.ud, d_up, d_lo)
    new_up[:, -1] += d.ub
    new_lo = comb(d.lz, z_lo, z_up) + comb(d.ld, d_lo, d_up)
    new_lo[:, -1] += d.lb
    return new_up, new_lo


def _side_lines(layer: Layer, l: torch.Tensor, u: torch.Tensor) -> ActivationLines:
    """One side of a quantizer pair: the quantizer's lines, or the identity for a placeholder."""
    return quantize_lines(layer, l, u) if isinstance(layer, QuantizeActivation) else identity_lines(l)


def diff_forward(twin: Twin, lower: torch.Tensor, upper: torch.Tensor, refine: bool = False,
                 prior: torch.Tensor | None = None):
    """Forward symbolic differential pass. Returns (DiffIntermediate, {i: (lines f, lines g, DiffLines, halves)}, eqs).

    With `refine`, the bounds of every neuron that is unstable in f or g are tightened at each ReLU, before
    the pass goes on, by back-substitution over the differential graph below it (`_refine_unstable`).
    `prior` (B, P): packed intermediate bounds valid on a superset of each box (the parent's, in a search);
    they are intersected in before refinement, so neurons the parent already fixed are not refined again.
    """
    if twin.pairs is None:
        raise UnsupportedOpError(f"diff engine needs aligned twins ({twin.alignment_note}); use crown")
    bsz, n = lower.shape
    dt, dev = lower.dtype, lower.device
    # equations are over the inputs free in some box of the batch; the others are constants (a local region
    # of an image fixes most pixels: 140 of MNIST's 784 are free in VeryDiff's local_15 regions)
    free = torch.nonzero((upper > lower).any(dim=0)).flatten()
    nf = free.numel()
    box_c, box_r = ((upper + lower) / 2)[:, free], ((upper - lower) / 2)[:, free]
    shapes = twin.shapes()
    # input equations z_0 = x: a unit row per free input, the fixed inputs' values in the constant row
    eye = torch.zeros(bsz, nf + 1, n, dtype=dt, device=dev)
    eye[:, torch.arange(nf, device=dev), free] = 1.0
    eye[:, nf, :] = lower
    eye[:, nf, free] = 0.0
    x_eq = eye.reshape(bsz, nf + 1, *shapes[0])
    z_up = z_lo = g_up = g_lo = x_eq
    d_up = d_lo = torch.zeros_like(x_eq)
    # post-activation equations (h = relu(z), h' = relu(z'), Delta)
    inter = DiffIntermediate({}, {}, {})
    lines = {}
    x0 = lower.reshape(bsz, *shapes[0]), upper.reshape(bsz, *shapes[0])
    f_box, g_box = x0, x0  # interval bounds of f's and g's value at the current layer
    known = None if prior is None else DiffIntermediate.unpack(prior, twin)
    for i, pair in enumerate(twin.pairs):
        in_shape = shapes[i]
        if pair.is_activation:
            zr, gr_, dr_ = _ranges(z_up, z_lo, box_c, box_r), _ranges(g_up, g_lo, box_c, box_r), _ranges(d_up, d_lo, box_c, box_r)
            zl, zu, gl, gu, dl, du = zr[2], zr[1], gr_[2], gr_[1], dr_[2], dr_[1]
            # interval arithmetic on each network: knows e.g. that a ReLU's output is >= 0
            zl, zu = torch.maximum(zl, f_box[0]), torch.minimum(zu, f_box[1])
            gl, gu = torch.maximum(gl, g_box[0]), torch.minimum(gu, g_box[1])
            # z' = z + delta, delta = z' - z: intersect the three views
            if known is not None:  # bounds valid on a superset box
                pl = known[i]
                zl, zu, gl, gu = torch.maximum(zl, pl[0]), torch.minimum(zu, pl[1]), torch.maximum(gl, pl[2]), torch.minimum(gu, pl[3])
                dl, du = torch.maximum(dl, pl[4]), torch.minimum(du, pl[5])
            gl, gu = torch.maximum(gl, zl + dl), torch.minimum(gu, zu + du)
            dl, du = torch.maximum(dl, gl - zu), torch.minimum(du, gu - zl)
        if pair.is_activation and not isinstance(pair.f, ReLU):  # quantizer pair
            inter.z[i], inter.g[i], inter.d[i] = (zl, zu), (gl, gu), (dl, du)
            f_lines, g_lines = _side_lines(pair.f, zl, zu), _side_lines(pair.g, gl, gu)
            triple = (f_lines, g_lines, twin_lines_difference(f_lines, g_lines))
            lines[i] = (*triple, _half_lines(triple))
            d_up, d_lo = _eq_diff_lines(triple[2], z_up, z_lo, d_up, d_lo)
            z_up, z_lo = _eq_lines(f_lines, z_up, z_lo)
            g_up, g_lo = _eq_lines(g_lines, g_up, g_lo)
        elif isinstance(pair.f, ReLU):
            if refine and lines:  # the first ReLU's equations are exact affine maps of x already
                zl, zu, gl, gu, dl, du = _refine_unstable(twin, lines, i, lower, upper, zl, zu, gl, gu, dl, du)
            inter.z[i], inter.g[i], inter.d[i] = (zl, zu), (gl, gu), (dl, du)
            own = (relu_lines(zl, zu), relu_lines(gl, gu))
            triple = (*own, diff_relu_lines(zl, zu, gl, gu, dl, du, twin_lines=own))
            lines[i] = (*triple, _half_lines(triple))
            zr = (zr[0], zu, zl, zr[3])
            gr_ = (gr_[0], gu, gl, gr_[3])
            dr_ = (dr_[0], du, dl, dr_[3])
            relu_up = relu_eq_upper(z_up, zr[0], zu), relu_eq_upper(g_up, gr_[0], gu)
            d_up, d_lo = diff_relu_eqs((z_up, z_lo, zr), (g_up, g_lo, gr_), (d_up, d_lo, dr_), relu_up)
            z_up, z_lo = relu_up[0], relu_eq_lower(z_lo, zl, zr[3])
            g_up, g_lo = relu_up[1], relu_eq_lower(g_lo, gl, gr_[3])
        elif pair.f.is_affine:
            # delta_out = W' Delta + (W' - W) h + (b' - b)
            nd_up, nd_lo = _eq_affine(pair.g, d_up, d_lo, in_shape, bias=False)
            if pair.diff is not None:
                hu, hl = _eq_affine(pair.diff, z_up, z_lo, in_shape, bias=True)
                nd_up, nd_lo = nd_up + hu, nd_lo + hl
            d_up, d_lo = nd_up, nd_lo
            z_up, z_lo = _eq_affine(pair.f, z_up, z_lo, in_shape, bias=True)
            g_up, g_lo = _eq_affine(pair.g, g_up, g_lo, in_shape, bias=True)
        else:
            raise UnsupportedOpError(f"diff engine: no rule for {pair.f.kind} yet")
        f_box, g_box = _interval_step(pair.f, f_box, in_shape), _interval_step(pair.g, g_box, in_shape)
    return inter, lines, (z_up, z_lo, g_up, g_lo, d_up, d_lo)


def _interval_step(layer: Layer, box: tuple[torch.Tensor, torch.Tensor], in_shape: Shape):
    """Interval arithmetic through one layer (affine: centre/radius; activations are monotone)."""
    lo, hi = box
    if layer.is_affine:
        c, r = (hi + lo) / 2, (hi - lo) / 2
        c, r = layer.forward(c), layer.abs_linear(r)
        return c - r, c + r
    if isinstance(layer, QuantizeActivation):
        return quantizer_interval(layer, lo, hi)
    return layer.forward(lo), layer.forward(hi)


# -------------------------------------------------------------------------------------- backward pass


def _half_lines(layer_lines: tuple) -> dict[str, torch.Tensor]:
    """Half sums/differences of the upper and lower lines of one ReLU layer (cached in a 4th tuple slot)."""
    if len(layer_lines) > 3:
        return layer_lines[3]
    fr, _, dr = layer_lines[:3]
    e = lambda t: t.unsqueeze(1)  # noqa: E731  (B, *shape) -> (B, 1, *shape)
    flat = lambda t: t.reshape(t.shape[0], -1)  # noqa: E731
    return {
        "s_mid": e((fr.upper_slope + fr.lower_slope) / 2),
        "s_rad": e((fr.upper_slope - fr.lower_slope) / 2),
        "b_mid": flat((fr.upper_bias + fr.lower_bias_or_zero()) / 2),
        "b_rad": flat((fr.upper_bias - fr.lower_bias_or_zero()) / 2),
        "dz_mid": e((dr.uz + dr.lz) / 2),
        "dz_rad": e((dr.uz - dr.lz) / 2),
        "dd_mid": e((dr.ud + dr.ld) / 2),
        "dd_rad": e((dr.ud - dr.ld) / 2),
        "db_mid": flat((dr.ub + dr.lb) / 2),
        "db_rad": flat((dr.ub - dr.lb) / 2),
    }


def diff_backward(
    twin: Twin, lines: dict[int, tuple], mu: torch.Tensor, lam: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Back-substitute from the twin graph's output; see `diff_backward_partial`."""
    assert twin.pairs is not None
    return diff_backward_partial(twin, lines, mu, lam, len(twin.pairs))


def diff_backward_partial(
    twin: Twin, lines: dict[int, tuple], mu: torch.Tensor, lam: torch.Tensor | None,
    end: int, box_index: torch.Tensor | None = None,
    pre_terms: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = None, trace: dict | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper bound of mu . z_L + lam . delta_L as A . x + const, back-substituted through the (z, delta) graph.

    mu, lam: (B, K, m). Affine pair (z' = W h + b, delta' = W' Delta + dW h + db):
        mu_h = mu W + lam dW,  lam_Delta = lam W',  const += mu . b + lam . db.
    ReLU pair: positive coefficients take upper lines, negative ones lower lines:
        mu_z  = mu+ s + mu- a + lam+ uz + lam- lz,   lam_d = lam+ ud + lam- ld,
        const += mu+ . b_s + lam+ . ub + lam- . lb.
    At the input, delta_0 = 0 (both networks read the same x), so only mu remains.
    `box_index` (B,): the lines are per box and batch entry r uses box box_index[r] (rows gathered from
    many boxes, without padding).
    `pre_terms` {i: (add_mu, add_lam)}: terms added to the objective at activation pair i's input, i.e.
    add_mu . z_i + add_lam . delta_i (the Lagrangian terms of phase constraints, `search/relu_split.py`).
    `trace`: filled with {i: (mu, lam)}, the coefficients of pair i's output (branching scores).
    """
    assert twin.pairs is not None
    shapes = twin.shapes()
    bsz, k = mu.shape[:2]
    const = torch.zeros(bsz, k, dtype=mu.dtype, device=mu.device)
    for i in reversed(range(end)):
        pair = twin.pairs[i]
        in_shape, out_shape = shapes[i], shapes[i + 1]
        if pair.is_activation:
            # c+ . upper_line + c- . lower_line = c . mid + |c| . rad, with mid/rad the half sum/difference
            # of the two lines (one fused multiply-add per term instead of sign selections)
            h = _half_lines(lines[i])
            if trace is not None:
                trace[i] = (mu, lam)
            if box_index is not None:
                keys = ("s_mid", "s_rad", "b_mid", "b_rad") + (() if lam is None else tuple(k for k in h if k[0] == "d"))
                h = {key: h[key].index_select(0, box_index) for key in keys}
            amu = mu.abs()
            const = const + batch_dot(mu.flatten(2), h["b_mid"])
            const = const + batch_dot(amu.flatten(2), h["b_rad"])
            new_mu = torch.addcmul(mu * h["s_mid"], amu, h["s_rad"])
            if lam is not None:
                alam = lam.abs()
                const = const + batch_dot(lam.flatten(2), h["db_mid"])
                const = const + batch_dot(alam.flatten(2), h["db_rad"])
                new_mu = torch.addcmul(torch.addcmul(new_mu, lam, h["dz_mid"]), alam, h["dz_rad"])
                lam = torch.addcmul(lam * h["dd_mid"], alam, h["dd_rad"])
            mu = new_mu
            if pre_terms is not None and i in pre_terms:
                add_mu, add_lam = pre_terms[i]
                mu = mu + add_mu.reshape(mu.shape)
                lam = lam + add_lam.reshape(mu.shape)  # type: ignore[operator]
        else:
            const = const + (mu * layer_bias(pair.f, in_shape, mu)).flatten(2).sum(-1)
            # mu W + lam (W' - W) = (mu - lam) W + lam W': the same map with two products, not three
            through_diff = lam is not None and pair.diff is not None
            new_mu = pair.f.vjp((mu - lam if through_diff else mu).reshape(bsz * k, *out_shape), in_shape)
            if lam is not None:
                new_lam = pair.g.vjp(lam.reshape(bsz * k, *out_shape), in_shape)
                if through_diff:
                    const = const + (lam * layer_bias(pair.diff, in_shape, lam)).flatten(2).sum(-1)
                    new_mu = new_mu + new_lam
                lam = new_lam.reshape(bsz, k, *in_shape)
            mu = new_mu.reshape(bsz, k, *in_shape)
    return mu.reshape(bsz, k, -1), const


def g_backward_partial(twin: Twin, lines: dict, a: torch.Tensor, end: int,
                       box_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper bound of a . z'_end through g's own layers and lines only (CROWN on the aligned g)."""
    assert twin.aligned_g is not None
    return backsubstitute(twin.aligned_g, {j: side[1] for j, side in lines.items()}, a, end, box_index)


_ROWS_LIMIT = 1 << 22  # entries of a layer's cached row matrix (larger layers back-substitute one-hot rows)


def _layer_rows(layer: Layer, in_shape: Shape, out_shape: Shape, like: torch.Tensor) -> torch.Tensor | None:
    """The affine layer's matrix, one row per output neuron: (out, *in_shape), cached; None when too large."""
    out, inp = int(torch.Size(out_shape).numel()), int(torch.Size(in_shape).numel())
    if out * inp > _ROWS_LIMIT:
        return None
    key = ("rows", tuple(in_shape), like.dtype, like.device)
    if key not in layer._cache:
        eye = torch.eye(out, dtype=like.dtype, device=like.device).reshape(out, *out_shape)
        layer._cache[key] = layer.vjp(eye, in_shape)
    return layer._cache[key]


def _first_step(twin: Twin, i: int, neuron: torch.Tensor, target: str, like: torch.Tensor):
    """The rows +-e_neuron of layer i's pre-activation moved through the affine pair i-1 below it by indexing the
    layers' rows (no product with one-hot vectors): (mu, lam, const) for `diff_backward_partial(..., end=i-1)`
    (mu for the "g" target is g's coefficient), or None when pair i-1 is not affine or too large."""
    assert twin.pairs is not None and twin.aligned_g is not None
    pair, shapes = twin.pairs[i - 1], twin.shapes()
    if pair.is_activation:
        return None
    in_shape, out_shape = shapes[i - 1], shapes[i]

    def rows(layer: Layer | None):
        if layer is None:
            return torch.zeros(neuron.numel(), 2, *in_shape, dtype=like.dtype, device=like.device), 0.0
        m = _layer_rows(layer, in_shape, out_shape, like)
        if m is None:
            return None
        r = m[neuron]
        b = layer_bias(layer, in_shape, like).flatten()[neuron]
        return torch.stack([r, -r], 1), torch.stack([b, -b], 1)

    parts = {"z": (pair.f, None), "delta": (pair.diff, pair.g), "g": (twin.aligned_g.layers[i - 1], None)}[target]
    mu, lam = rows(parts[0]), (rows(parts[1]) if parts[1] is not None else None)
    if mu is None or (parts[1] is not None and lam is None):
        return None
    # the constant is the bias of the pair's first part: b (z), b' (g) or b' - b (delta; W' carries no bias)
    return mu[0], (None if lam is None else lam[0]), mu[1]


def _backsub_rows(twin, lines, i, lower, upper, need: torch.Tensor, shape, target: str):
    """Bounds of the needed neurons of layer i, +-inf elsewhere: f's z ("z", through f alone: the delta path
    of those rows is identically zero), the difference delta ("delta", through the differential graph) or
    g's z' ("g", through g alone). The needed (box, neuron) pairs are gathered into one batch (no padding),
    so the cost follows the number of unstable neurons."""
    bsz, w = need.shape
    inf = float("inf")
    new_up = torch.full((bsz, w), inf, dtype=lower.dtype, device=lower.device)
    new_lo = torch.full((bsz, w), -inf, dtype=lower.dtype, device=lower.device)
    box, neuron = torch.nonzero(need, as_tuple=True)
    r = box.numel()
    if r == 0:
        return new_lo, new_up
    first = _first_step(twin, i, neuron, target, lower)
    if first is not None:
        mu, lam, const0 = first
        end = i - 1
    else:
        rows = torch.nn.functional.one_hot(neuron, w).to(lower.dtype).reshape(r, 1, *shape)
        both = torch.cat([rows, -rows], 1)
        mu, lam, const0, end = (torch.zeros_like(both), both, 0.0, i) if target == "delta" else (both, None, 0.0, i)
    if target == "g":
        coef, const = g_backward_partial(twin, lines, mu, end, box)
    else:
        coef, const = diff_backward_partial(twin, lines, mu, lam, end, box)
    ub = concretize_upper(coef, const + const0, lower[box], upper[box])
    new_up[box, neuron] = ub[:, 0]
    new_lo[box, neuron] = -ub[:, 1]
    return new_lo, new_up


def _refine_unstable(twin: Twin, lines, i: int, lower, upper, zl, zu, gl, gu, dl, du, direct_g: bool = True):
    """Tighten the bounds at ReLU layer i by back-substitution, only for the neurons that matter.

    First f's unstable neurons, through f alone (the delta path of their rows is identically zero); then
    delta for neurons unstable in f or g, through the differential graph. g's bounds follow from
    z' = z + delta. Rows are gathered per box, so the cost follows the number of unstable neurons.
    """
    shape = zl.shape[1:]
    bsz = zl.shape[0]
    flat = lambda t: t.reshape(bsz, -1)  # noqa: E731
    zl, zu, gl, gu, dl, du = map(flat, (zl, zu, gl, gu, dl, du))
    lo, up = _backsub_rows(twin, lines, i, lower, upper, (zl < 0) & (zu > 0), shape, "z")
    zl, zu = torch.maximum(zl, lo), torch.minimum(zu, up)
    gl, gu = torch.maximum(gl, zl + dl), torch.minimum(gu, zu + du)
    need = ((zl < 0) & (zu > 0)) | ((gl < 0) & (gu > 0))
    lo, up = _backsub_rows(twin, lines, i, lower, upper, need, shape, "delta")
    dl, du = torch.maximum(dl, lo), torch.minimum(du, up)
    gl, gu = torch.maximum(gl, zl + dl), torch.minimum(gu, zu + du)
    if direct_g:
        lo, up = _backsub_rows(twin, lines, i, lower, upper, (gl < 0) & (gu > 0), shape, "g")
        gl, gu = torch.maximum(gl, lo), torch.minimum(gu, up)
    dl, du = torch.maximum(dl, gl - zu), torch.minimum(du, gu - zl)
    return tuple(t.reshape(bsz, *shape) for t in (zl, zu, gl, gu, dl, du))


def diff_bounds(
    twin: Twin,
    lower: torch.Tensor,
    upper: torch.Tensor,
    c1: torch.Tensor,
    c2: torch.Tensor,
    intermediate: str = "forward",
    prior: torch.Tensor | None = None,
    settled: Callable[[SpecBounds], torch.Tensor] | None = None,
    screen: bool = True,
) -> SpecBounds:
    """Differential bounds of c1 . f + c2 . g on aligned twins.

    Requires: aligned twins (same layer structure; structured pruning is zero-padded), boxes (B, n), specs (K, m).
    Returns: SpecBounds (B, K) with the final pass's input coefficients (branching hints).
    Method: forward symbolic differential pass for intermediate bounds (ReluDiff/NeuroDiff lines), then the
    spec back-substituted through the differential graph; the result is intersected with interval bounds.
    With intermediate="backward", a second pass refines the unstable neurons by back-substitution, starting
    from the first pass's bounds, and the two final bounds are intersected (never looser than "forward").
    `prior`: packed intermediate bounds of a superset of each box (`SpecBounds.state` of the parent box).
    `settled`: (B,) mask of boxes whose bounds already suffice (a search's "proven"); those skip refinement.
    `screen=False` (with intermediate="backward"): the refined pass alone, without the forward pass first. The
    forward pass pays only where it settles boxes, and on a region's whole box it rarely does (it proved none of
    ACAS Xu's 143 property boxes; skipping it cut their bound from 24 to 15 ms, widths within 0.8%, see
    docs/benchmarks.md); the bound is then not intersected with the forward pass's.
    Guarantee: sound (float64 + outward widening); not complete.
    Reference: Paulsen et al., ReluDiff (ICSE 2020) and NeuroDiff (ASE 2020).
    """
    refine_only = intermediate == "backward" and not screen
    inter, lines, _ = diff_forward(twin, lower, upper, refine=refine_only, prior=prior)
    res = replace(_final_pass(twin, lines, lower, upper, c1, c2), state=inter.pack() if inter.z else None)
    if refine_only or intermediate != "backward" or not inter.z:
        return res
    todo = None if settled is None else torch.nonzero(~settled(res)).flatten()
    if todo is not None and todo.numel() == 0:
        return res
    # refinement starts from the forward pass's bounds: tighter intermediate bounds can still change which
    # lines are chosen and make later layers or the final bound looser, so both results are intersected
    take = (lambda t: t) if todo is None else (lambda t: t.index_select(0, todo))  # noqa: E731
    lo_box, hi_box = take(lower), take(upper)
    inter, lines, _ = diff_forward(twin, lo_box, hi_box, refine=True, prior=take(res.state))
    refined = _final_pass(twin, lines, lo_box, hi_box, c1, c2)
    new_lo, new_hi = torch.maximum(take(res.lower), refined.lower), torch.minimum(take(res.upper), refined.upper)
    if todo is None:
        return replace(refined, lower=new_lo, upper=new_hi, state=inter.pack())
    # res's tensors were made by this call: the refined boxes are written into them in place
    res.lower[todo], res.upper[todo], res.input_coeffs[todo] = new_lo, new_hi, refined.input_coeffs
    res.state[todo] = inter.pack()
    return res


def _final_pass(twin: Twin, lines: dict, lower, upper, c1, c2) -> SpecBounds:
    """The spec back-substituted through the differential graph, intersected with the twin-graph (CROWN)
    back-substitution through f and g separately with the same lines (it wins when the twins differ a lot,
    e.g. coarse weight quantization) and with interval bounds (coarse quantizers that clamp)."""
    bsz = lower.shape[0]
    k = c1.shape[0]
    a1 = c1.to(lower).unsqueeze(0).expand(bsz, k, -1)
    a2 = c2.to(lower).unsqueeze(0).expand(bsz, k, -1)
    mu, lam = a1 + a2, a2
    coef, const = diff_backward(twin, lines, torch.cat([mu, -mu], 1), torch.cat([lam, -lam], 1))
    ub = concretize_upper(coef, const, lower, upper)
    cf, kf = diff_backward(twin, lines, torch.cat([a1, -a1], 1), None)
    cg, kg = g_backward_partial(twin, lines, torch.cat([a2, -a2], 1), len(twin.pairs or ()))
    ub = torch.minimum(ub, concretize_upper(cf + cg, kf + kg, lower, upper))
    lo, hi = widen(-ub[:, k:], ub[:, :k])
    # where the linear relaxations are loose (coarse quantizers that clamp), interval arithmetic can win
    box = interval_bounds(twin, lower, upper, c1.to(lower), c2.to(lower))
    lo, hi = torch.maximum(lo, box.lower), torch.minimum(hi, box.upper)
    return SpecBounds(lo, hi, coef[:, :k])

