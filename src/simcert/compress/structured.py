"""Structured pruning: remove whole hidden neurons / conv channels, giving a narrower network.

Rule (L1-norm pruning, Li et al., "Pruning Filters for Efficient ConvNets", ICLR 2017): in every hidden
Dense/Conv2d layer (one followed, later, by another Dense/Conv2d), the r = round(fraction * width) outputs
(rows of W, or output channels of the kernel) with the smallest L1 norm of their incoming weights in the
original network are removed, keeping at least one (ties: lower index removed first). The removed outputs'
weights and bias go, and so do the matching inputs of the next weight layer: its columns (Dense), its input
channels (Conv2d) or, across a flatten of a (C, H, W) map, the block of H*W dense columns of each channel.
Input and output sizes are unchanged. The twin equals the original with the removed neurons' incoming and
outgoing weights zeroed (the padding by which engines align the two).

Between two weight layers the chain may hold ReLU, Identity, AvgPool2d (channel-wise), a flatten of (C, H, W)
to a vector, a shape-preserving Reshape, and ElementwiseAffine / QuantizeActivation layers, whose per-channel
parameters are sliced with the channels. Anything else (grouped convolutions, other reshapes) is an InputError.

`twin.meta["structured_pruning"]` gets one record per pruned layer: ``{"layer": i, "kept": [...], "width": n}``
with `i` the index of the Dense/Conv2d layer in `twin.layers`, `kept` the sorted output indices of the
*original* network that remain, and `n` the original width. Pruning a pruned twin composes the records.
Weight-quantization facts in `meta["quantization"]` are sliced along with the weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError
from ..network import (
    AvgPool2d,
    Conv2d,
    Dense,
    ElementwiseAffine,
    Identity,
    Layer,
    Network,
    QuantizeActivation,
    ReLU,
    Reshape,
    Shape,
)
from ._common import check_fraction, check_network, copy_layer, half_up, make_twin, weight_layer_indices

__all__ = ["prune_structured", "l1_kept_outputs"]


def l1_kept_outputs(weight: np.ndarray, fraction: float) -> np.ndarray:
    """Sorted indices of the outputs kept when the round(fraction * width) smallest-L1 rows/channels go.

    >>> l1_kept_outputs(np.array([[3.0, 0.0], [0.5, -0.5], [1.0, 1.0], [-0.1, 0.0]]), 0.5).tolist()
    [0, 2]
    """
    width = weight.shape[0]
    norms = np.abs(weight).reshape(width, -1).sum(axis=1)
    removed = min(half_up(fraction * width), width - 1)
    return np.sort(np.argsort(norms, kind="stable")[removed:])


def _slice_param(p: np.ndarray, sel: np.ndarray, act_shape: Shape) -> np.ndarray:
    """Slice a parameter that broadcasts against an activation of shape `act_shape` along the activation's
    axis 0 (channels, or the flat index): only when it varies along that axis."""
    axis = p.ndim - len(act_shape)
    if axis < 0 or p.shape[axis] == 1:
        return p
    return np.take(p, sel, axis=axis)


def _check_groups(layer: Layer, i: int, net: Network) -> None:
    if isinstance(layer, Conv2d) and layer.groups != 1:
        raise InputError(f"{net.name}: layer {i} ({layer.describe()}): structured pruning of grouped convolutions is not supported")


def _slice_chain(net: Network, start: int, stop: int, kept: np.ndarray, layers: list[Layer]) -> np.ndarray:
    """Slice the layers strictly between weight layers `start` and `stop` for the kept outputs of `start`;
    return the kept indices along axis 0 of the input of layer `stop`."""
    sel = kept
    for k in range(start + 1, stop):
        layer, in_shape, out_shape = net.layers[k], net.shapes[k], net.shapes[k + 1]
        if isinstance(layer, (ReLU, Identity, AvgPool2d)):
            continue
        if isinstance(layer, QuantizeActivation):
            layers[k] = copy_layer(
                layer,
                scale=_slice_param(layer.scale, sel, in_shape),
                zero_point=_slice_param(layer.zero_point, sel, in_shape),
            )
        elif isinstance(layer, ElementwiseAffine):
            layers[k] = copy_layer(
                layer,
                scale=_slice_param(layer.scale, sel, in_shape),
                shift=_slice_param(layer.shift, sel, in_shape),
            )
        elif isinstance(layer, Reshape) and tuple(out_shape) == tuple(in_shape):
            layers[k] = copy_layer(layer, shape=(-1, *in_shape[1:]))  # a no-op reshape, now of fewer channels
        elif isinstance(layer, Reshape) and len(in_shape) >= 2 and len(out_shape) == 1:
            block = int(np.prod(in_shape[1:]))  # flatten of (C, H, W): channel c owns columns c*H*W ... +H*W-1
            sel = (sel[:, None] * block + np.arange(block)[None, :]).ravel()
            layers[k] = copy_layer(layer, shape=(-1,))
        else:
            raise InputError(
                f"{net.name}: layer {k} ({layer.describe()}) between layers {start} and {stop}: "
                "structured pruning cannot remove neurons across it"
            )
    return sel


def _slice_meta(
    meta: dict[str, Any], records: list[dict[str, Any]], out_kept: dict[int, np.ndarray], in_kept: dict[int, np.ndarray]
) -> None:
    old = {r["layer"]: r for r in meta.get("structured_pruning", [])}
    composed = []
    for r in records:
        prev = old.pop(r["layer"], None)
        if prev is not None:
            r = {"layer": r["layer"], "kept": [prev["kept"][j] for j in r["kept"]], "width": prev["width"]}
        composed.append(r)
    composed += list(old.values())
    meta["structured_pruning"] = sorted(composed, key=lambda r: r["layer"])
    for entry in meta.get("quantization", []):
        i = entry["layer"]
        if i in in_kept:
            entry["q"] = np.take(entry["q"], in_kept[i], axis=1)
        if i in out_kept:
            entry["q"] = np.take(entry["q"], out_kept[i], axis=0)
            if entry["per_channel"]:
                entry["scale"] = entry["scale"][out_kept[i]]
                entry["zero_point"] = entry["zero_point"][out_kept[i]]
            if entry.get("bias") is not None:
                entry["bias"]["q"] = entry["bias"]["q"][out_kept[i]]


def prune_structured(net: Network, fraction: float) -> Network:
    """The narrower twin: round(fraction * width) smallest-L1 neurons/channels removed from every hidden layer
    (see the module docstring for the rule, the supported layer chains and the metadata)."""
    net = check_network(net)
    fraction = check_fraction(fraction)
    idx = weight_layer_indices(net)
    if len(idx) < 2:
        raise InputError(f"{net.name}: no hidden Dense/Conv layer to prune (structured pruning needs two or more)")
    layers: list[Layer] = [copy_layer(layer) for layer in net.layers]
    records: list[dict[str, Any]] = []
    out_kept: dict[int, np.ndarray] = {}
    in_kept: dict[int, np.ndarray] = {}
    for a, b in zip(idx[:-1], idx[1:]):
        producer, consumer = net.layers[a], net.layers[b]
        assert isinstance(producer, (Dense, Conv2d)) and isinstance(consumer, (Dense, Conv2d))
        _check_groups(producer, a, net)
        _check_groups(consumer, b, net)
        kept = l1_kept_outputs(producer.weight, fraction)
        current = layers[a]
        assert isinstance(current, (Dense, Conv2d))
        layers[a] = copy_layer(current, weight=current.weight[kept], bias=current.bias[kept])
        sel = _slice_chain(net, a, b, kept, layers)
        current = layers[b]
        assert isinstance(current, (Dense, Conv2d))
        layers[b] = copy_layer(current, weight=np.take(current.weight, sel, axis=1))
        out_kept[a], in_kept[b] = kept, sel
        records.append({"layer": a, "kept": [int(j) for j in kept], "width": int(producer.weight.shape[0])})

    def update(meta: dict[str, Any]) -> None:
        _slice_meta(meta, records, out_kept, in_kept)

    step = {"method": "prune_structured", "fraction": fraction}
    return make_twin(net, layers, step, f"narrow{round(100 * fraction)}", update)
