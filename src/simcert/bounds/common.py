"""Shared pieces of the bound engines: the result record, concretization, sound widening."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..network import Layer, Shape

__all__ = ["SpecBounds", "batch_dot", "concretize_upper", "concretize_lower", "widen", "layer_bias", "apply_flat", "quantizer_interval"]


@dataclass(frozen=True)
class SpecBounds:
    """Certified bounds of K linear specs on B boxes.

    lower, upper: (B, K). input_coeffs: (B, K, n) linear coefficients of the final upper bound in the input
    (for branching heuristics), or None. state: (B, P) the engine's intermediate bounds, valid on every sub-box
    of each box, which an engine accepting `prior=` reuses on the sub-boxes (warm start), or None.
    """

    lower: torch.Tensor
    upper: torch.Tensor
    input_coeffs: torch.Tensor | None = None
    state: torch.Tensor | None = None


def batch_dot(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-box dot products: out[b, k] = a[b, k, :] . v[b, :].   a: (B, K, n), v: (B, n) -> (B, K).

    One batched matrix product; `torch.einsum` computes the same with about 20 us more dispatch per call,
    which a search step on one box pays hundreds of times.
    """
    return torch.bmm(a, v.unsqueeze(-1)).squeeze(-1)


def concretize_upper(a: torch.Tensor, const: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """max over the box of a . x + const:  const + a . center + |a| . radius.   a: (B, K, n), box: (B, n)."""
    center, radius = (upper + lower) / 2, (upper - lower) / 2
    return const + batch_dot(a, center) + batch_dot(a.abs(), radius)


def concretize_lower(a: torch.Tensor, const: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """min over the box of a . x + const."""
    center, radius = (upper + lower) / 2, (upper - lower) / 2
    return const + batch_dot(a, center) - batch_dot(a.abs(), radius)


def widen(lower: torch.Tensor, upper: torch.Tensor, rel: float = 1e-9, abs_: float = 1e-12):
    """Widen bounds outward to cover floating-point rounding of the float64 computation that produced them.

    The engines run O(depth) matrix products in float64 (unit roundoff 1.1e-16); the accumulated error is far
    below rel * (1 + |bound|) for the network sizes we handle, so the widened interval contains the exact value.
    """
    return lower - (rel * (1 + lower.abs()) + abs_), upper + (rel * (1 + upper.abs()) + abs_)


def layer_bias(layer: Layer, in_shape: Shape, like: torch.Tensor) -> torch.Tensor:
    """The bias of an affine layer, b = layer(0), shaped (1, *out_shape)."""
    key = ("bias_map", tuple(in_shape), like.dtype, like.device)
    cached = layer._cache.get(key)
    if cached is None:
        cached = layer.forward(torch.zeros(1, *in_shape, dtype=like.dtype, device=like.device))
        layer._cache[key] = cached
    return cached


def apply_flat(fn, x: torch.Tensor, lead: int, in_shape: Shape) -> torch.Tensor:
    """Apply a per-sample map `fn` to x of shape (*lead_dims, *in_shape), merging the `lead` leading dims."""
    lead_dims = x.shape[:lead]
    y = fn(x.reshape(-1, *in_shape))
    return y.reshape(*lead_dims, *y.shape[1:])


def quantizer_interval(layer, lo: torch.Tensor, hi: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sound output range of a quantizer (`QuantizeActivation`) on inputs in [lo, hi].

    The runtime computes Q(x + d s) for some |d| <= slack_steps (exactly Q when the slack is 0), and Q is
    monotone, so the output lies in [Q(lo - slack s), Q(hi + slack s)]; a nudge of 1e-6 steps more covers
    runtimes that divide by the scale in lower precision.
    """
    s = torch.as_tensor(layer.scale, dtype=lo.dtype, device=lo.device)
    reach = s * (float(getattr(layer, "slack_steps", 0.0)) + 1e-6)
    return layer.forward(lo - reach), layer.forward(hi + reach)
