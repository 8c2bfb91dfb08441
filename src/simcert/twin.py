"""The twin pair: reference f and compressed g, checked and prepared once.

`Twin(f, g)` simplifies both networks (merging affine runs), checks that they read the same input and produce
outputs of the same size, and, when the two have the same layer structure, pairs their layers for the
differential engine: each `LayerPair` holds f's layer, g's layer and the *difference layer* (g's parameters
minus f's: W' - W, b' - b), or `None` when the two are identical ("no difference"). Structurally pruned twins
(narrower hidden layers) are aligned by zero padding: a removed neuron becomes a row/column of zeros, which is
exactly the pruned network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .network import AvgPool2d, Conv2d, Dense, ElementwiseAffine, Layer, Network, QuantizeActivation, ReLU, Reshape

__all__ = ["Twin", "LayerPair"]


@dataclass(eq=False)
class LayerPair:
    """One aligned layer of the twin graph: f's layer, g's layer and their difference (None = identical)."""

    f: Layer
    g: Layer
    diff: Layer | None


@dataclass(eq=False)
class Twin:
    """A reference network f and its compressed twin g on one shared input."""

    f: Network
    g: Network
    pairs: list[LayerPair] | None = field(init=False)
    alignment_note: str = field(init=False, default="")

    def __post_init__(self) -> None:
        if self.f.input_size != self.g.input_size:
            raise InputError(
                f"the twins read different inputs: {self.f.name} has {self.f.input_size} inputs, "
                f"{self.g.name} has {self.g.input_size}"
            )
        if self.f.output_size != self.g.output_size:
            raise InputError(
                f"the twins have different output sizes: {self.f.output_size} ({self.f.name}) vs "
                f"{self.g.output_size} ({self.g.name})"
            )
        self.f = self.f.simplified()
        self.g = self.g.simplified()
        try:
            self.pairs = _align(self.f, self.g)
        except _NotAligned as exc:
            self.pairs = None
            self.alignment_note = str(exc)

    @property
    def input_size(self) -> int:
        return self.f.input_size

    @property
    def output_size(self) -> int:
        return self.f.output_size

    @property
    def aligned(self) -> bool:
        return self.pairs is not None

    def shapes(self) -> list[tuple[int, ...]]:
        """Per-layer shapes of the aligned twin graph (f's shapes after padding)."""
        return self.f.shapes


class _NotAligned(Exception):
    pass


def _align(f: Network, g: Network) -> list[LayerPair]:
    """Pair the layers of f and g, zero-padding g's narrower hidden layers to f's widths (or vice versa)."""
    if len(f.layers) != len(g.layers):
        raise _NotAligned(f"different depths ({len(f.layers)} vs {len(g.layers)} layers)")
    if f.input_shape != g.input_shape:
        raise _NotAligned(f"different input shapes {f.input_shape} vs {g.input_shape}")
    kinds_f = [type(l) for l in f.layers]
    kinds_g = [type(l) for l in g.layers]
    if kinds_f != kinds_g:
        raise _NotAligned("different layer types")
    if any(isinstance(l, QuantizeActivation) for l in f.layers + g.layers):
        raise _NotAligned("activation quantization is not handled by the differential engine yet")
    # widths after each layer: use the wider of the two, and pad.
    f_layers, g_layers = list(f.layers), list(g.layers)
    for i, (lf, lg) in enumerate(zip(f_layers, g_layers)):
        if isinstance(lf, Dense):
            out = max(lf.out_features, lg.out_features)
            inp = max(lf.in_features, lg.in_features)
            f_layers[i] = _pad_dense(lf, out, inp)
            g_layers[i] = _pad_dense(lg, out, inp)
        elif isinstance(lf, Conv2d):
            if (lf.stride, lf.padding, lf.dilation, lf.groups, lf.weight.shape[2:]) != (
                lg.stride, lg.padding, lg.dilation, lg.groups, lg.weight.shape[2:]
            ):
                raise _NotAligned(f"layer {i}: convolutions with different hyper-parameters")
            if lf.weight.shape != lg.weight.shape:
                raise _NotAligned(f"layer {i}: convolutions with different channel counts")
    out_f = Network(f_layers, f.input_shape, name=f.name)
    out_g = Network(g_layers, g.input_shape, name=g.name)
    if out_f.shapes != out_g.shapes:
        raise _NotAligned("layer shapes differ after padding")
    pairs = []
    for lf, lg in zip(out_f.layers, out_g.layers):
        pairs.append(LayerPair(lf, lg, _difference(lf, lg)))
    return pairs


def _pad_dense(layer: Dense, out: int, inp: int) -> Dense:
    if layer.weight.shape == (out, inp):
        return layer
    w = np.zeros((out, inp))
    w[: layer.out_features, : layer.in_features] = layer.weight
    b = np.zeros(out)
    b[: layer.out_features] = layer.bias
    return Dense(w, b)


def _difference(lf: Layer, lg: Layer) -> Layer | None:
    """The layer computing g's affine map minus f's (None when they are identical)."""
    if isinstance(lf, Dense):
        dw, db = lg.weight - lf.weight, lg.bias - lf.bias  # type: ignore[attr-defined]
        return None if not dw.any() and not db.any() else Dense(dw, db)
    if isinstance(lf, Conv2d):
        dw, db = lg.weight - lf.weight, lg.bias - lf.bias  # type: ignore[attr-defined]
        if not dw.any() and not db.any():
            return None
        return Conv2d(dw, db, lf.stride, lf.padding, lf.dilation, lf.groups)
    if isinstance(lf, ElementwiseAffine):
        ds, dh = lg.scale - lf.scale, lg.shift - lf.shift  # type: ignore[attr-defined]
        return None if not np.any(ds) and not np.any(dh) else ElementwiseAffine(ds, dh)
    if isinstance(lf, (Reshape, AvgPool2d, ReLU)):
        if isinstance(lf, AvgPool2d) and (lf.kernel, lf.stride, lf.padding) != (
            lg.kernel, lg.stride, lg.padding  # type: ignore[attr-defined]
        ):
            raise _NotAligned("average pools with different hyper-parameters")
        return None
    raise _NotAligned(f"no differential rule for {lf.kind}")
