"""Back-substitution on the twin graph (CROWN / DeepPoly "dual-network symbolic propagation").

The twin graph is f and g side by side on one input: a block-diagonal network whose last layer is the spec
[c1, c2]. Each network is back-substituted separately (the blocks do not interact), and the two input-space
linear functions are *added before concretization*, so the shared input dependence cancels. Works for any
widths and depths (pruned or distilled twins).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UnsupportedOpError
from ..network import Network, QuantizeActivation, ReLU
from ..twin import Twin
from .common import SpecBounds, concretize_upper, layer_bias, widen
from .interval import network_intervals
from .relaxations import ActivationLines, quantize_lines, relu_lines

__all__ = ["crown_bounds", "alpha_crown_bounds", "network_relu_bounds", "backsubstitute"]


def backsubstitute(
    net: Network, lines: dict[int, ActivationLines], a: torch.Tensor, end: int,
    box_index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper linear bound of a . y_end in the input, y_end the output of layer end-1 (y_0 = input).

    a: (B, K, *shape_end). Returns (A_in (B, K, n), const (B, K)) with a . y_end <= A_in . x + const.
    Relaxation choice per coefficient sign: positive coefficients take an activation's upper line (ReLU or
    quantizer, `lines[i]`), negative ones the lower line. `box_index` (B,): the lines are per box and batch
    entry r uses box box_index[r].
    """
    bsz, k = a.shape[:2]
    const = torch.zeros(bsz, k, dtype=a.dtype, device=a.device)
    for i in reversed(range(end)):
        layer = net.layers[i]
        in_shape, out_shape = net.shapes[i], net.shapes[i + 1]
        if i in lines:
            r = lines[i] if box_index is None else _take_boxes(lines[i], box_index)
            ap, an = a.clamp(min=0), a.clamp(max=0)
            const = const + (ap * r.upper_bias.unsqueeze(1)).flatten(2).sum(-1)
            if r.lower_bias is not None:
                const = const + (an * r.lower_bias.unsqueeze(1)).flatten(2).sum(-1)
            a = ap * r.upper_slope.unsqueeze(1) + an * r.lower_slope.unsqueeze(1)
        elif layer.is_affine:
            const = const + (a * layer_bias(layer, in_shape, a)).flatten(2).sum(-1)
            a = layer.vjp(a.reshape(bsz * k, *out_shape), in_shape).reshape(bsz, k, *in_shape)
        else:
            raise UnsupportedOpError(f"crown engine: no rule for {layer.kind} yet")
    return a.reshape(bsz, k, -1), const


def _take_boxes(r: ActivationLines, index: torch.Tensor) -> ActivationLines:
    """The lines of boxes `index` (gathered along the batch dimension)."""
    take = lambda t: None if t is None else t.index_select(0, index)  # noqa: E731
    return ActivationLines(take(r.lower_slope), take(r.upper_slope), take(r.upper_bias), take(r.lower_bias))


def _bound_both(net: Network, lines, a: torch.Tensor, end: int, lower: torch.Tensor, upper: torch.Tensor):
    """Lower and upper bounds of a . y_end over the boxes, in one back-substitution of [a; -a]."""
    k = a.shape[1]
    coef, const = backsubstitute(net, lines, torch.cat([a, -a], dim=1), end)
    ub = concretize_upper(coef, const, lower, upper)
    return -ub[:, k:], ub[:, :k], coef[:, :k]


def network_relu_bounds(
    net: Network, lower: torch.Tensor, upper: torch.Tensor, slopes: dict[int, torch.Tensor] | None = None
) -> tuple[dict[int, tuple[torch.Tensor, torch.Tensor]], dict[int, ActivationLines]]:
    """CROWN pre-activation bounds of every activation of `net` (ReLU or quantizer), each layer bounded by
    back-substitution through the lines of the layers below it.

    Intermediate bounds are intersected with interval bounds. Returns ({i: (l, u)}, {i: ActivationLines}).
    """
    ibp, _, _ = network_intervals(net, lower, upper)
    bounds: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    lines: dict[int, ActivationLines] = {}
    bsz = lower.shape[0]
    for i, layer in enumerate(net.layers):
        if layer.is_affine:
            continue
        if not isinstance(layer, (ReLU, QuantizeActivation)):
            raise UnsupportedOpError(f"crown engine: no rule for {layer.kind} yet")
        shape = net.shapes[i]
        width = int(torch.Size(shape).numel())
        eye = torch.eye(width, dtype=lower.dtype, device=lower.device).reshape(width, *shape)
        lo, hi, _ = _bound_both(net, lines, eye.expand(bsz, *eye.shape), i, lower, upper)
        lo = torch.maximum(lo.reshape(bsz, *shape), ibp[i][0])
        hi = torch.minimum(hi.reshape(bsz, *shape), ibp[i][1])
        bounds[i] = (lo, hi)
        if isinstance(layer, QuantizeActivation):
            lines[i] = quantize_lines(layer, lo, hi)
        else:
            lines[i] = relu_lines(lo, hi, None if slopes is None else slopes.get(i))
    return bounds, lines


def _twin_spec_bounds(twin: Twin, lines_f, lines_g, lower, upper, c1, c2):
    bsz = lower.shape[0]
    k = c1.shape[0]
    a1 = c1.unsqueeze(0).expand(bsz, k, -1)
    a2 = c2.unsqueeze(0).expand(bsz, k, -1)
    cf, kf = backsubstitute(twin.f, lines_f, torch.cat([a1, -a1], 1), len(twin.f.layers))
    cg, kg = backsubstitute(twin.g, lines_g, torch.cat([a2, -a2], 1), len(twin.g.layers))
    coef, const = cf + cg, kf + kg  # the twin graph: one linear function of the shared input
    ub = concretize_upper(coef, const, lower, upper)
    return -ub[:, k:], ub[:, :k], coef[:, :k]


def crown_bounds(twin: Twin, lower: torch.Tensor, upper: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> SpecBounds:
    """CROWN on the twin graph.

    Requires: boxes (B, n) float tensors; c1, c2 (K, m).
    Returns: SpecBounds (B, K) of c1 . f(x) + c2 . g(x), with input coefficients for branching.
    Method: DeepPoly/CROWN lines per ReLU, intermediate bounds by back-substitution; the two networks'
    input-space bounds are summed before concretization (block-diagonal twin graph).
    Guarantee: sound (float64 + outward widening); not complete.
    Reference: Zhang et al. 2018 (CROWN); Singh et al. 2019 (DeepPoly).
    """
    _, lines_f = network_relu_bounds(twin.f, lower, upper)
    _, lines_g = network_relu_bounds(twin.g, lower, upper)
    lo, hi, coef = _twin_spec_bounds(twin, lines_f, lines_g, lower, upper, c1, c2)
    lo, hi = widen(lo, hi)
    return SpecBounds(lo, hi, coef)


@dataclass(frozen=True)
class AlphaOptions:
    steps: int = 20
    lr: float = 0.1


def alpha_crown_bounds(
    twin: Twin,
    lower: torch.Tensor,
    upper: torch.Tensor,
    c1: torch.Tensor,
    c2: torch.Tensor,
    options: AlphaOptions = AlphaOptions(),
) -> SpecBounds:
    """alpha-CROWN on the twin graph: CROWN with the lower ReLU slopes optimized by Adam for each bound.

    Intermediate bounds are CROWN's (not re-optimized); the slopes of the final spec are optimized separately
    for the lower and the upper bound. Every iterate is a valid bound, so the best one seen is kept.
    Reference: Xu et al. 2021 (alpha-CROWN).
    """
    bounds_f, lines_f = network_relu_bounds(twin.f, lower, upper)
    bounds_g, lines_g = network_relu_bounds(twin.g, lower, upper)
    best_lo, best_hi, coef = _twin_spec_bounds(twin, lines_f, lines_g, lower, upper, c1, c2)
    best_lo, best_hi = best_lo.detach(), best_hi.detach()

    def make(net: Network, init_lines):
        return {i: init_lines[i].lower_slope.detach().clone().requires_grad_(True)
                for i in init_lines if isinstance(net.layers[i], ReLU)}

    for direction in ("lower", "upper"):
        with torch.enable_grad():
            af, ag = make(twin.f, lines_f), make(twin.g, lines_g)
            opt = torch.optim.Adam(list(af.values()) + list(ag.values()), lr=options.lr)
            for _ in range(options.steps):
                lf = {**lines_f, **{i: relu_lines(*bounds_f[i], af[i].clamp(0, 1)) for i in af}}
                lg = {**lines_g, **{i: relu_lines(*bounds_g[i], ag[i].clamp(0, 1)) for i in ag}}
                lo, hi, _ = _twin_spec_bounds(twin, lf, lg, lower, upper, c1, c2)
                loss = -lo.sum() if direction == "lower" else hi.sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                with torch.no_grad():
                    best_lo = torch.maximum(best_lo, lo.detach())
                    best_hi = torch.minimum(best_hi, hi.detach())
    lo, hi = widen(best_lo, best_hi)
    return SpecBounds(lo, hi, coef)
