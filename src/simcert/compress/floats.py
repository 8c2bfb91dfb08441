"""Float16 and bfloat16 twins: every parameter rounded to the narrow format, stored back exactly as float64.

Rounded parameters: Dense/Conv2d weights and biases, ElementwiseAffine (normalization) scales and shifts.
QuantizeActivation parameters are quantization grids, not stored floats, and are kept. The .nnet raw-unit
normalization (`Network.nnet`) lies outside the network and is kept too.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import InputError
from ..network import Layer, Network, QuantizeActivation
from ._common import check_network, copy_layer, make_twin

__all__ = ["round_float16", "round_bfloat16", "to_float16", "to_bfloat16"]

_PARAMS = ("weight", "bias", "scale", "shift")


def round_float16(values: np.ndarray) -> np.ndarray:
    """IEEE binary16 round-to-nearest-even of the float64 values, returned as float64 (exact).

    >>> round_float16(np.array([0.1, 1.0 + 2.0**-11])).tolist()
    [0.0999755859375, 1.0]
    """
    arr = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        return arr.astype(np.float16).astype(np.float64)


def round_bfloat16(values: np.ndarray) -> np.ndarray:
    """bfloat16 value of each float64, as float64: round to float32, then round-to-nearest-even to the top
    16 bits of the float32 pattern (what `torch.tensor(x, dtype=float64).to(torch.bfloat16)` computes).

    Rule on the float32 bit pattern u: u' = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000 (inputs are finite).

    >>> round_bfloat16(np.array([1.0 + 2.0**-8, 1.0 + 3 * 2.0**-8])).tolist()
    [1.0, 1.015625]
    """
    arr = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore"):
        f32 = np.ascontiguousarray(arr, dtype=np.float32)
    u = f32.view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) & 0xFFFF0000
    return u.astype(np.uint32).view(np.float32).astype(np.float64).reshape(arr.shape)


def _round_network(net: Network, rounder: Callable[[np.ndarray], np.ndarray], fmt: str) -> Network:
    net = check_network(net)
    layers: list[Layer] = []
    for i, layer in enumerate(net.layers):
        changes = {}
        if not isinstance(layer, QuantizeActivation):
            for name in _PARAMS:
                value = getattr(layer, name, None)
                if isinstance(value, np.ndarray):
                    rounded = rounder(value)
                    if not np.all(np.isfinite(rounded)):
                        worst = float(np.max(np.abs(value)))
                        raise InputError(
                            f"{net.name}: layer {i} ({layer.describe()}) {name} overflows {fmt} (|value| = {worst:g})"
                        )
                    changes[name] = rounded
        layers.append(copy_layer(layer, **changes))
    return make_twin(net, layers, {"method": fmt}, fmt)


def to_float16(net: Network) -> Network:
    """The float16 twin: every weight, bias and normalization constant c replaced by float16(c) (as float64)."""
    return _round_network(net, round_float16, "float16")


def to_bfloat16(net: Network) -> Network:
    """The bfloat16 twin: every weight, bias and normalization constant c replaced by bfloat16(float32(c))."""
    return _round_network(net, round_bfloat16, "bfloat16")
