"""Helpers shared by the twin builders: option checks, layer copies, and the twin's metadata.

Every builder returns a new `Network` whose layers are fresh copies (their parameter arrays are copied), so
the input network is never mutated. The twin's `meta["compression"]` lists the steps that produced it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InputError
from ..network import Conv2d, Dense, Layer, Network

__all__ = [
    "check_network",
    "check_bits",
    "check_fraction",
    "check_bool",
    "check_choice",
    "copy_layer",
    "weight_layer_indices",
    "make_twin",
    "half_up",
]


def check_network(net: Any) -> Network:
    if not isinstance(net, Network):
        raise InputError(f"expected a simcert Network, got {type(net).__name__}")
    return net


def check_bits(bits: Any, name: str = "bits", low: int = 2, high: int = 16) -> int:
    """An integer bit width in [low, high] (bools and floats are refused)."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise InputError(f"{name} must be an integer in [{low}, {high}], got {bits!r}")
    if not low <= int(bits) <= high:
        raise InputError(f"{name} must be in [{low}, {high}], got {bits}")
    return int(bits)


def check_fraction(fraction: Any, name: str = "pruning fraction") -> float:
    """A fraction in [0, 1)."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.integer, np.floating)):
        raise InputError(f"{name} must be a number in [0, 1), got {fraction!r}")
    f = float(fraction)
    if not (math.isfinite(f) and 0.0 <= f < 1.0):
        raise InputError(f"{name} must be in [0, 1), got {fraction}")
    return f


def check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_choice(value: Any, choices: Sequence[Any], name: str) -> Any:
    if value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise InputError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def half_up(x: float) -> int:
    """Round a non-negative count to the nearest integer, halves up (2.5 -> 3)."""
    return int(math.floor(x + 0.5))


def copy_layer(layer: Layer, **changes: Any) -> Layer:
    """A fresh layer of the same type (parameters copied, torch caches empty), with some fields replaced."""
    return replace(layer, **changes)


def weight_layer_indices(net: Network) -> list[int]:
    """Indices of the layers that hold weight matrices/kernels (Dense and Conv2d)."""
    return [i for i, layer in enumerate(net.layers) if isinstance(layer, (Dense, Conv2d))]


def make_twin(
    net: Network,
    layers: Sequence[Layer],
    step: dict[str, Any],
    suffix: str,
    meta_update: Callable[[dict[str, Any]], None] | None = None,
    **changes: Any,
) -> Network:
    """The twin network: new layers, a deep copy of the metadata with `step` appended to `meta["compression"]`.

    `meta_update` may edit the copied metadata in place (e.g. add quantization facts) before the twin is built.
    """
    meta = copy.deepcopy(net.meta)
    history = list(meta.get("compression", []))
    if not history:
        step = {**step, "from": net.source or net.name}
    history.append(step)
    meta["compression"] = history
    if meta_update is not None:
        meta_update(meta)
    domain = net.input_domain
    if domain is not None:
        domain = (np.array(domain[0], dtype=np.float64), np.array(domain[1], dtype=np.float64))
    return net.with_layers(
        list(layers),
        name=f"{net.name}-{suffix}",
        meta=meta,
        input_domain=domain,
        **changes,
    )
