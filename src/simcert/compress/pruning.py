"""Unstructured magnitude pruning: zero the smallest-magnitude weights.

Rule: with n weights in scope, the k = round(fraction * n) weights of smallest |w| are set to 0 (ties broken
by position, so exactly k entries are zeroed; weights that are already 0 count among the smallest). The scope
is all Dense/Conv2d weights together ("global") or each layer on its own ("layer"). Biases are never pruned.
When the network carries weight-quantization facts, the pruned entries get q = zero_point, so
w = scale * (q - zero_point) keeps holding.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..errors import InputError
from ..network import Layer, Network
from ._common import check_choice, check_fraction, check_network, copy_layer, half_up, make_twin, weight_layer_indices

__all__ = ["prune_magnitude"]


def _smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the k smallest entries of |values| (stable: earlier positions first among ties)."""
    mask = np.zeros(values.size, dtype=bool)
    if k > 0:
        mask[np.argsort(np.abs(values.ravel()), kind="stable")[:k]] = True
    return mask.reshape(values.shape)


def prune_magnitude(net: Network, fraction: float, scope: Literal["global", "layer"] = "global") -> Network:
    """The pruned twin: the `fraction` smallest-|w| weights set to 0, over all weights (`global`) or per layer."""
    net = check_network(net)
    fraction = check_fraction(fraction)
    scope = check_choice(scope, ("global", "layer"), "pruning scope")
    idx = weight_layer_indices(net)
    if not idx:
        raise InputError(f"{net.name}: no Dense/Conv layer with weights to prune")
    weights = [np.asarray(net.layers[i].weight) for i in idx]  # type: ignore[attr-defined]
    if scope == "global":
        flat = np.concatenate([w.ravel() for w in weights])
        mask = _smallest(flat, half_up(fraction * flat.size))
        bounds = np.cumsum([0] + [w.size for w in weights])
        masks = [mask[a:b].reshape(w.shape) for a, b, w in zip(bounds[:-1], bounds[1:], weights)]
    else:
        masks = [_smallest(w, half_up(fraction * w.size)) for w in weights]
    layers: list[Layer] = [copy_layer(layer) for layer in net.layers]
    for i, w, m in zip(idx, weights, masks):
        layers[i] = copy_layer(net.layers[i], weight=np.where(m, 0.0, w))
    masks_by_layer = dict(zip(idx, masks))

    def update(meta: dict[str, Any]) -> None:
        for entry in meta.get("quantization", []):
            m = masks_by_layer.get(entry["layer"])
            if m is None:
                continue
            zp = np.broadcast_to(
                entry["zero_point"].reshape((-1,) + (1,) * (m.ndim - 1)) if entry["per_channel"] else entry["zero_point"],
                m.shape,
            )
            entry["q"] = np.where(m, zp, entry["q"]).astype(entry["q"].dtype)

    sparsity = float(np.mean(np.concatenate([m.ravel() for m in masks]))) if masks else 0.0
    step = {"method": "prune_magnitude", "fraction": fraction, "scope": scope, "pruned_fraction": sparsity}
    return make_twin(net, layers, step, f"pruned{round(100 * fraction)}", update)
