"""Interval bound propagation (IBP) on each network of the twin: the sound, fast, loose baseline."""

from __future__ import annotations

import torch

from ..errors import UnsupportedOpError
from ..network import Network, QuantizeActivation, ReLU
from ..twin import Twin
from .common import SpecBounds, quantizer_interval, widen

__all__ = ["interval_bounds", "network_intervals"]


def network_intervals(net: Network, lower: torch.Tensor, upper: torch.Tensor) -> tuple[list, torch.Tensor, torch.Tensor]:
    """Propagate the boxes (B, n) through `net`: y in [c - r, c + r] with c' = W c + b, r' = |W| r.

    Returns (pre-activation bounds per layer index {i: (l, u)} for non-linear layers, output lower, output upper).
    """
    c = ((upper + lower) / 2).reshape(lower.shape[0], *net.input_shape)
    r = ((upper - lower) / 2).reshape(lower.shape[0], *net.input_shape)
    pre = {}
    for i, layer in enumerate(net.layers):
        if layer.is_affine:
            c, r = layer.forward(c), layer.abs_linear(r)
        elif isinstance(layer, ReLU):
            pre[i] = (c - r, c + r)
            lo, hi = torch.relu(c - r), torch.relu(c + r)
            c, r = (hi + lo) / 2, (hi - lo) / 2
        elif isinstance(layer, QuantizeActivation):
            # y = clamp(x) + e, |e| <= s/2, and y stays on the representable range
            pre[i] = (c - r, c + r)
            lo, hi = quantizer_interval(layer, c - r, c + r)
            c, r = (hi + lo) / 2, (hi - lo) / 2
        else:  # pragma: no cover - guarded by the IR
            raise UnsupportedOpError(f"interval engine: no rule for {layer.kind}")
    b = lower.shape[0]
    return pre, (c - r).reshape(b, -1), (c + r).reshape(b, -1)


def interval_bounds(twin: Twin, lower: torch.Tensor, upper: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> SpecBounds:
    """Bounds of c1 . f + c2 . g from separate output intervals of f and g.

    Requires: boxes (B, n); specs c1 (K, m), c2 (K, m).  Returns: SpecBounds (B, K).
    Guarantee: sound, not complete; ignores all correlation between f and g.
    """
    _, fl, fu = network_intervals(twin.f, lower, upper)
    _, gl, gu = network_intervals(twin.g, lower, upper)

    def spec_range(c: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor):
        cp, cn = c.clamp(min=0), c.clamp(max=0)
        return lo @ cp.T + hi @ cn.T, hi @ cp.T + lo @ cn.T

    l1, u1 = spec_range(c1, fl, fu)
    l2, u2 = spec_range(c2, gl, gu)
    lo, hi = widen(l1 + l2, u1 + u2)
    return SpecBounds(lo, hi)
