"""Interval gradient of a twin spec h(x) = c1 . f(x) + c2 . g(x) over a box, from its intermediate bounds.

Used by the search to find inputs in which h is monotone on a box (METHODS.md 3.4, after ReluDiff): such an
input can be fixed to one endpoint instead of bisected.

Differential form (ReluDiff's gradient of the difference). Back-propagate the sensitivity of h to f's layer
values, lam_f, and the sum rho = lam_f + lam_g of the sensitivities to f's and g's values; for an eps row
(c2 = -c1) rho starts at 0 and stays small where the twins agree, while lam_f and lam_g separately would
not. With W, W' the two affine maps and s, s' the two ReLU derivatives:
    affine:  lam_f <- W^T lam_f,      rho <- W'^T rho - (W' - W)^T lam_f
    ReLU:    lam_f <- s lam_f,        rho <- s' rho + (s - s') lam_f
and at the input the gradient of h is rho. lam_g (<- W'^T lam_g, <- s' lam_g) is carried too and rho is
intersected with lam_f + lam_g after every ReLU: for a row of one network only (top-1 margins) that sum is
the tighter one. s is 1 where f's pre-activation lower bound is > 0, 0 where its upper bound is < 0, and
[0, 1] elsewhere (s' likewise from g's bounds); every quantity is an interval and the products are interval
products, so the result contains every element of Clarke's generalized gradient of h at every point of the
box (chain-rule inclusion for piecewise-linear maps).
By Lebourg's mean-value theorem, a component whose interval lies above (below) 0 makes h non-decreasing
(non-increasing) in that input on the box.

Only ReLU activations qualify: a quantizer's output jumps, so no gradient bounds its variation.
"""

from __future__ import annotations

import torch

from ..network import Dense, ReLU, Shape
from ..twin import Twin
from .diff import DiffIntermediate

__all__ = ["diff_gradient", "monotone_signs"]


def _interval_mul(a_lo: torch.Tensor, a_hi: torch.Tensor, b_lo: torch.Tensor, b_hi: torch.Tensor):
    """[a] * [b] elementwise: the min and max of the four corner products."""
    p = torch.stack([a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi])
    return p.min(0).values, p.max(0).values


def _transpose(layer, a: torch.Tensor, in_shape: Shape, absolute: bool) -> torch.Tensor:
    """W^T a, or |W|^T a with `absolute`, for an affine layer; a: (N, *out_shape) -> (N, *in_shape)."""
    if not absolute:
        return layer.vjp(a, in_shape)
    if isinstance(layer, Dense):
        return a @ layer._tensor("weight", a).abs()
    with torch.enable_grad():  # the transpose of the linear map x -> |W| x, by autograd
        x = torch.zeros(a.shape[0], *in_shape, dtype=a.dtype, device=a.device, requires_grad=True)
        (grad,) = torch.autograd.grad(layer.abs_linear(x), x, grad_outputs=a)
    return grad


def supports_gradient(twin: Twin) -> bool:
    """Aligned twins whose every activation pair is ReLU facing ReLU."""
    return twin.aligned and all(
        isinstance(p.f, ReLU) and isinstance(p.g, ReLU) for p in twin.pairs if p.is_activation  # type: ignore[union-attr]
    )


def diff_gradient(twin: Twin, state: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor):
    """(lower, upper, magnitude), each (B, K, n): bounds of the gradient of c1[k] . f + c2[k] . g over each box
    whose packed intermediate bounds are `state` (B, P) (`DiffIntermediate.pack`), and a bound on the sum of
    the absolute values of the terms summed into each component (it sizes the rounding margin).
    None when the twin is not supported."""
    if not supports_gradient(twin):
        return None
    assert twin.pairs is not None
    inter = DiffIntermediate.unpack(state, twin)
    shapes = twin.shapes()
    bsz, k = state.shape[0], c1.shape[0]
    start = lambda c: c.to(state).expand(bsz, k, *shapes[-1]).clone()  # noqa: E731
    # each interval as (lower, upper), (B, K, *shape); m_* bound the summed |terms| of each (rounding margin)
    lf = (start(c1), start(c1))
    lg = (start(c2), start(c2))
    rho = (start(c1 + c2), start(c1 + c2))
    m_f, m_g, m_rho = lf[0].abs(), lg[0].abs(), rho[0].abs()
    for i in reversed(range(len(twin.pairs))):
        pair = twin.pairs[i]
        in_shape, out_shape = shapes[i], shapes[i + 1]
        if pair.is_activation:
            zl, zu, gl, gu = (t.unsqueeze(1) for t in inter[i][:4])
            one, zero = torch.ones_like(zl), torch.zeros_like(zl)
            s_f = (torch.where(zl > 0, one, zero), torch.where(zu < 0, zero, one))  # f's ReLU derivative
            s_g = (torch.where(gl > 0, one, zero), torch.where(gu < 0, zero, one))  # g's
            a = _interval_mul(*s_g, *rho)
            b = _interval_mul(s_f[0] - s_g[1], s_f[1] - s_g[0], *lf)
            lf, lg = _interval_mul(*s_f, *lf), _interval_mul(*s_g, *lg)
            rho = _intersect((a[0] + b[0], a[1] + b[1]), (lf[0] + lg[0], lf[1] + lg[1]))
            m_rho = torch.maximum(m_rho + m_f, m_f + m_g)  # |s'| <= 1 and |s - s'| <= 1
            continue
        t = lambda layer, v, absolute, s=(in_shape, out_shape): _rows_transpose(layer, v, *s, absolute)  # noqa: E731
        affine = lambda layer, iv, s=(in_shape, out_shape): _affine_interval(layer, iv, *s)  # noqa: E731
        new_rho, new_m_rho = affine(pair.g, rho), t(pair.g, m_rho, True)
        if pair.diff is not None:  # rho <- W'^T rho - (W' - W)^T lam_f
            d = affine(pair.diff, lf)
            new_rho, new_m_rho = (new_rho[0] - d[1], new_rho[1] - d[0]), new_m_rho + t(pair.diff, m_f, True)
        lf, lg, rho = affine(pair.f, lf), affine(pair.g, lg), new_rho
        m_f, m_g, m_rho = t(pair.f, m_f, True), t(pair.g, m_g, True), new_m_rho
    flat = lambda v: v.reshape(bsz, k, -1)  # noqa: E731
    lower, upper = _intersect(rho, (lf[0] + lg[0], lf[1] + lg[1]))
    return flat(lower), flat(upper), flat(torch.maximum(m_rho, m_f + m_g))


def _rows_transpose(layer, v: torch.Tensor, in_shape: Shape, out_shape: Shape, absolute: bool) -> torch.Tensor:
    """`_transpose` on (B, K, *out_shape) -> (B, K, *in_shape)."""
    b, k = v.shape[:2]
    return _transpose(layer, v.reshape(b * k, *out_shape), in_shape, absolute).reshape(b, k, *in_shape)


def _affine_interval(layer, iv: tuple[torch.Tensor, torch.Tensor], in_shape: Shape, out_shape: Shape):
    """W^T [iv] as an interval: W^T centre -+ |W|^T radius."""
    centre = _rows_transpose(layer, (iv[0] + iv[1]) / 2, in_shape, out_shape, False)
    radius = _rows_transpose(layer, (iv[1] - iv[0]) / 2, in_shape, out_shape, True)
    return centre - radius, centre + radius


def _intersect(a, b):
    """[a] n [b] (both contain the true value)."""
    return torch.maximum(a[0], b[0]), torch.minimum(a[1], b[1])


def monotone_signs(twin: Twin, state: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor,
                   rel: float = 1e-9) -> torch.Tensor | None:
    """(B, K, n) int8: +1 where row k is non-decreasing in input j on box b, -1 where non-increasing, 0 where
    unknown; a component counts only if its gradient interval clears 0 by `rel` times the magnitudes summed
    into it (a margin far above float64 rounding). None when the twin is not supported."""
    grad = diff_gradient(twin, state, c1, c2)
    if grad is None:
        return None
    lo, hi, mag = grad
    margin = rel * mag + 1e-300
    return (lo > margin).to(torch.int8) - (hi < -margin).to(torch.int8)
