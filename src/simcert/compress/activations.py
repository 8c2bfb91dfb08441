"""Activation quantization: a `QuantizeActivation` (fake-quantize) layer after every ReLU, calibrated on data.

Ranges come from the min/max of each activation over the calibration inputs, evaluated on the network as
given (post-training static calibration):

- asymmetric (uint8-like, the default): lo = min(min a, 0), hi = max(max a, 0), scale = (hi - lo) / (2^b - 1),
  zero_point = round(-lo / scale), grid q in [0, 2^b - 1];
- symmetric (int8-like): scale = max|a| / (2^(b-1) - 1), zero_point = 0, grid q in [-2^(b-1), 2^(b-1) - 1].

A zero range gets scale 1 and zero point 0 (ONNX Runtime's convention). Per channel means per neuron of a
flat activation and per channel (axis 0) of a (C, H, W) activation. The inserted layer computes
y = scale * (clamp(round(a / scale) + zero_point, qmin, qmax) - zero_point) with round-half-to-even.

Inserting layers shifts layer indices: the `layer` fields of `meta["quantization"]` and
`meta["structured_pruning"]` are renumbered to the twin's layers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..network import Layer, Network, QuantizeActivation, ReLU
from ._common import check_bits, check_bool, check_network, copy_layer, make_twin

__all__ = ["quantize_activations", "activation_quantizer"]

_INDEXED_META = ("quantization", "structured_pruning")


def activation_quantizer(
    activations: np.ndarray, bits: int = 8, symmetric: bool = False, per_channel: bool = False
) -> QuantizeActivation:
    """The fake-quantize layer for activations of shape (N, *shape), from their min/max (see module docstring).

    >>> q = activation_quantizer(np.array([[-1.0], [126.5]]), bits=8)   # scale = 127.5 / 255
    >>> float(q.scale), float(q.zero_point), q.signed
    (0.5, 2.0, False)
    """
    a = np.asarray(activations, dtype=np.float64)
    # per tensor: reduce over everything; per channel: over the batch and the spatial dims (keep axis 1)
    reduce_axes = (0, *range(2, a.ndim)) if per_channel else tuple(range(a.ndim))
    lo = np.min(a, axis=reduce_axes)
    hi = np.max(a, axis=reduce_axes)
    if symmetric:
        scale = np.maximum(np.abs(lo), np.abs(hi)) / (2 ** (bits - 1) - 1)
        scale = np.where(scale > 0, scale, 1.0)
        zero_point = np.zeros_like(scale)
    else:
        qmax = 2**bits - 1
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
        scale = (hi - lo) / qmax
        scale = np.where(scale > 0, scale, 1.0)
        zero_point = np.clip(np.rint(-lo / scale), 0, qmax) + 0.0  # + 0.0: no -0.0
    if per_channel and a.ndim > 2:
        # per channel of (C, H, W): parameters of shape (C, 1, 1) broadcast over the spatial dims
        extra = (1,) * (a.ndim - 2)
        scale, zero_point = scale.reshape(-1, *extra), zero_point.reshape(-1, *extra)
    return QuantizeActivation(scale, zero_point, bits=bits, signed=symmetric, rounding="half_even")


def calibration_batch(net: Network, calibration: Any) -> torch.Tensor:
    """The calibration inputs as a float64 batch of shape (N, *input_shape); InputError when unusable."""
    if calibration is None:
        raise InputError("activation quantization needs calibration inputs")
    try:
        x = np.asarray(calibration, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"calibration inputs are not numeric: {exc}") from None
    if x.ndim == len(net.input_shape):
        x = x[None]
    if x.shape[0] == 0 or x[0].size != net.input_size:
        raise InputError(
            f"calibration inputs of shape {x.shape} do not match the model input shape {net.input_shape}"
        )
    if not np.all(np.isfinite(x)):
        raise InputError("calibration inputs contain NaN or infinite values")
    return torch.as_tensor(x.reshape(x.shape[0], *net.input_shape), dtype=torch.float64)


def quantize_activations(
    net: Network,
    bits: int = 8,
    calibration: np.ndarray | None = None,
    symmetric: bool = False,
    per_channel: bool = False,
    quantize_input: bool = False,
) -> Network:
    """The activation-quantized twin: a calibrated `QuantizeActivation` after every ReLU (and in front of the
    first layer when `quantize_input`). `calibration` is an (N, *input_shape) or (N, input_size) array."""
    net = check_network(net)
    bits = check_bits(bits, "activation bit width")
    symmetric = check_bool(symmetric, "symmetric")
    per_channel = check_bool(per_channel, "per_channel")
    quantize_input = check_bool(quantize_input, "quantize_input")
    for i, layer in enumerate(net.layers):
        if isinstance(layer, QuantizeActivation):
            raise InputError(f"{net.name}: layer {i} already quantizes activations; quantize the float network")
    if not quantize_input and not any(isinstance(layer, ReLU) for layer in net.layers):
        raise InputError(f"{net.name}: no ReLU layer to quantize after")
    x = calibration_batch(net, calibration)

    def quantizer(values: torch.Tensor) -> QuantizeActivation:
        return activation_quantizer(values.numpy(), bits, symmetric, per_channel)

    layers: list[Layer] = []
    new_index: list[int] = []
    if quantize_input:
        layers.append(quantizer(x))
    with torch.no_grad():
        for layer in net.layers:
            x = layer.forward(x)
            new_index.append(len(layers))
            layers.append(copy_layer(layer))
            if isinstance(layer, ReLU):
                layers.append(quantizer(x))

    def update(meta: dict[str, Any]) -> None:
        for key in _INDEXED_META:
            for entry in meta.get(key, []):
                entry["layer"] = new_index[entry["layer"]]

    step = {"method": "quantize_activations", "bits": bits, "symmetric": symmetric, "per_channel": per_channel,
            "quantize_input": quantize_input}
    return make_twin(net, layers, step, f"a{bits}", update)
