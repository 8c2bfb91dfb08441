"""`compress`: the one entry point `simcert compress` calls, composing the twin builders.

Order: pruning (unstructured or structured), then weight quantization or float rounding, then activation
quantization (calibrated on the pruned, weight-rounded network). Every option is checked before any work.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import InputError
from ..network import Network
from ._common import check_bits, check_bool, check_choice, check_fraction, check_network
from .activations import calibration_batch, quantize_activations
from .floats import to_bfloat16, to_float16
from .pruning import prune_magnitude
from .structured import prune_structured
from .weights import quantize_weights

__all__ = ["compress", "TARGETS"]

Target = Literal["float16", "bfloat16", "int16", "int8", "int4"]
TARGETS: tuple[str, ...] = ("float16", "bfloat16", "int16", "int8", "int4")


def compress(
    net: Network,
    to: Target | None = None,
    per_channel: bool = False,
    symmetric: bool = True,
    activations: int | None = None,
    calibration: np.ndarray | None = None,
    prune: float | None = None,
    structured: bool = False,
    prune_scope: Literal["global", "layer"] = "global",
    activations_symmetric: bool = False,
) -> Network:
    """The compressed twin of `net`.

    - `prune`: fraction in [0, 1) of weights zeroed by magnitude (`prune_scope` "global" or "layer"), or with
      `structured=True` of hidden neurons/channels removed per layer (smallest L1 norm; always per layer);
    - `to`: "float16"/"bfloat16" rounding, or "int16"/"int8"/"int4" weight quantization (`symmetric`,
      `per_channel` apply to these only; biases stay float);
    - `activations`: bit width of activation quantization after every ReLU, calibrated on `calibration`
      (asymmetric unless `activations_symmetric`, per tensor).
    """
    net = check_network(net)
    if to is not None:
        check_choice(to, TARGETS, "target format")
    per_channel = check_bool(per_channel, "per_channel")
    symmetric = check_bool(symmetric, "symmetric")
    structured = check_bool(structured, "structured")
    activations_symmetric = check_bool(activations_symmetric, "activations_symmetric")
    check_choice(prune_scope, ("global", "layer"), "pruning scope")
    is_int = to is not None and to.startswith("int")
    if per_channel and not is_int:
        raise InputError("per-channel quantization needs an integer target (--to int16/int8/int4)")
    if not symmetric and not is_int:
        raise InputError("asymmetric quantization needs an integer target (--to int16/int8/int4)")
    if prune is not None:
        prune = check_fraction(prune)
    elif structured:
        raise InputError("structured pruning needs a pruning fraction (--prune)")
    if activations is not None:
        activations = check_bits(activations, "activation bit width")
        calibration_batch(net, calibration)
    if to is None and prune is None and activations is None:
        raise InputError("nothing to do: give a target format, a pruning fraction or an activation bit width")

    twin = net
    if prune is not None:
        twin = prune_structured(twin, prune) if structured else prune_magnitude(twin, prune, prune_scope)
    if to == "float16":
        twin = to_float16(twin)
    elif to == "bfloat16":
        twin = to_bfloat16(twin)
    elif is_int:
        assert to is not None
        twin = quantize_weights(twin, int(to[3:]), symmetric=symmetric, per_channel=per_channel)
    if activations is not None:
        twin = quantize_activations(twin, activations, calibration, symmetric=activations_symmetric)
    return twin

