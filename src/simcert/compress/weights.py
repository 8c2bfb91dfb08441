"""Integer weight quantization (int16, int8, int4, ... per tensor or per output channel).

Affine quantization, real = scale * (q - zero_point) (METHODS.md section 4):

- symmetric:  scale = max|w| / (2^(b-1) - 1), zero_point = 0, q = clip(round(w / scale), -(2^(b-1)-1), 2^(b-1)-1)
  (the TFLite int8 weight convention: [-127, 127]);
- asymmetric: the range is widened to contain 0 (lo = min(min w, 0), hi = max(max w, 0)), scale = (hi - lo) /
  (2^b - 1), zero_point = round(-lo / scale), q = clip(round(w / scale) + zero_point, 0, 2^b - 1).

round is round-half-to-even. An all-zero tensor/channel gets scale 1 and q = zero_point (its weights stay 0).
Every weight then satisfies |w - scale * (q - zero_point)| <= scale / 2 (up to float64 rounding), and the
twin's weights are exactly the float64 values scale * (q - zero_point). Per channel means per output row of
a Dense weight (out, in) or per output channel of a Conv2d kernel (C_out, C_in, kH, kW).

The quantization facts are kept in `twin.meta["quantization"]`, one dict per quantized layer:
``{"layer": i, "kind", "bits", "symmetric", "per_channel", "scale", "zero_point", "q", "bias"}`` where
`scale`/`zero_point` have shape (C_out,) per channel or () per tensor, `q` is an int32 array shaped like the
weight, and `bias` is None (bias kept in float, like the int32 biases of TFLite/ONNX Runtime) or a dict of the
same form (the bias is always quantized per tensor, with its own scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..network import Conv2d, Dense, Layer, Network
from ._common import check_bits, check_bool, check_choice, check_network, copy_layer, make_twin, weight_layer_indices

__all__ = ["QuantizedTensor", "quantize_tensor", "quantize_weights"]

Scope = Literal["weights", "weights+bias"]


@dataclass(frozen=True)
class QuantizedTensor:
    """w ~ scale * (q - zero_point); `scale`/`zero_point` broadcast along `axis` (None: per tensor)."""

    q: np.ndarray
    scale: np.ndarray
    zero_point: np.ndarray
    bits: int
    symmetric: bool
    axis: int | None

    def _broadcast(self, a: np.ndarray) -> np.ndarray:
        if self.axis is None:
            return a
        shape = [1] * self.q.ndim
        shape[self.axis] = -1
        return a.reshape(shape)

    def dequantize(self) -> np.ndarray:
        """scale * (q - zero_point) in float64."""
        return self._broadcast(self.scale) * (self.q - self._broadcast(self.zero_point)).astype(np.float64)

    def as_meta(self) -> dict[str, Any]:
        return {
            "bits": self.bits,
            "symmetric": self.symmetric,
            "per_channel": self.axis is not None,
            "scale": self.scale.copy(),
            "zero_point": self.zero_point.copy(),
            "q": self.q.copy(),
        }


def quantize_tensor(w: np.ndarray, bits: int, symmetric: bool = True, per_channel: bool = False) -> QuantizedTensor:
    """Quantize `w` to `bits`-bit integers (per tensor, or per slice along axis 0 when `per_channel`).

    >>> t = quantize_tensor(np.array([0.5, -1.0, 0.26]), bits=3)   # scale = 1/3, q in [-3, 3]
    >>> t.q.tolist(), t.dequantize().tolist()
    ([2, -3, 1], [0.6666666666666666, -1.0, 0.3333333333333333])
    """
    w = np.asarray(w, dtype=np.float64)
    axis = 0 if per_channel else None
    flat = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        scale = np.max(np.abs(flat), axis=1) / qmax
        scale = np.where(scale > 0, scale, 1.0)
        zero_point = np.zeros(scale.shape, dtype=np.int32)
        q = np.clip(np.rint(flat / scale[:, None]), -qmax, qmax)
    else:
        qmax = 2**bits - 1
        lo = np.minimum(np.min(flat, axis=1), 0.0)
        hi = np.maximum(np.max(flat, axis=1), 0.0)
        scale = (hi - lo) / qmax
        scale = np.where(scale > 0, scale, 1.0)
        zero_point = np.clip(np.rint(-lo / scale), 0, qmax).astype(np.int32)
        q = np.clip(np.rint(flat / scale[:, None]) + zero_point[:, None], 0, qmax)
    q = q.astype(np.int32).reshape(w.shape)
    if not per_channel:
        scale, zero_point = scale.reshape(()), zero_point.reshape(())
    return QuantizedTensor(q, scale.astype(np.float64), zero_point.astype(np.int32), bits, symmetric, axis)


def quantize_weights(
    net: Network,
    bits: int,
    symmetric: bool = True,
    per_channel: bool = False,
    scope: Scope = "weights",
) -> Network:
    """The integer-weight twin: every Dense/Conv2d weight w replaced by scale * (q - zero_point) (see the module
    docstring for the rule). Biases stay float unless `scope="weights+bias"` (then per tensor, same bits)."""
    net = check_network(net)
    bits = check_bits(bits, "weight bit width")
    symmetric = check_bool(symmetric, "symmetric")
    per_channel = check_bool(per_channel, "per_channel")
    scope = check_choice(scope, ("weights", "weights+bias"), "quantization scope")
    layers: list[Layer] = [copy_layer(layer) for layer in net.layers]
    facts: list[dict[str, Any]] = []
    for i in weight_layer_indices(net):
        layer = net.layers[i]
        assert isinstance(layer, (Dense, Conv2d))
        wq = quantize_tensor(layer.weight, bits, symmetric, per_channel)
        changes: dict[str, np.ndarray] = {"weight": wq.dequantize()}
        entry = {"layer": i, "kind": layer.kind, **wq.as_meta(), "bias": None}
        if scope == "weights+bias":
            bq = quantize_tensor(layer.bias, bits, symmetric, per_channel=False)
            changes["bias"] = bq.dequantize()
            entry["bias"] = bq.as_meta()
        layers[i] = copy_layer(layer, **changes)
        facts.append(entry)

    def update(meta: dict[str, Any]) -> None:
        meta["quantization"] = facts

    name = f"int{bits}" + ("" if symmetric else "-asym") + ("-pc" if per_channel else "")
    step = {"method": "quantize_weights", "bits": bits, "symmetric": symmetric, "per_channel": per_channel,
            "scope": scope}
    return make_twin(net, layers, step, name, update)
