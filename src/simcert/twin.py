"""The twin pair: reference f and compressed g, checked and prepared once.

`Twin(f, g)` simplifies both networks (merging affine runs), checks that they read the same input and produce
outputs of the same size, and, when the two have the same layer structure, pairs their layers for the
differential engine: each `LayerPair` holds f's layer, g's layer and the *difference layer* (g's parameters
minus f's: W' - W, b' - b), or `None` when the two are identical ("no difference"). Structurally pruned twins
(narrower hidden layers) are aligned by zero padding: a removed neuron becomes a row/column of zeros, which is
exactly the pruned network. Activation-quantized twins (a quantizer after some activations of one network and
not the other, or with other grids) are aligned by pairing each quantizer with an `Identity` placeholder on
the side that has none, so the differential engine sees a (quantizer, identity) activation pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import InputError
from .network import (
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
)

__all__ = ["Twin", "LayerPair"]


@dataclass(eq=False)
class LayerPair:
    """One aligned layer of the twin graph: f's layer, g's layer and their difference (None = identical)."""

    f: Layer
    g: Layer
    diff: Layer | None

    @property
    def is_activation(self) -> bool:
        """A non-linear pair (ReLU, or a quantizer facing a quantizer or an identity placeholder)."""
        return not (self.f.is_affine and self.g.is_affine)


@dataclass(eq=False)
class Twin:
    """A reference network f and its compressed twin g on one shared input."""

    f: Network
    g: Network
    pairs: list[LayerPair] | None = field(init=False)
    pair_shapes: list[tuple[int, ...]] | None = field(init=False, default=None)
    aligned_g: Network | None = field(init=False, default=None)  # g's layers as paired (padded, placeholders)
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
            self.pairs, self.pair_shapes, self.aligned_g = _align(self.f, self.g)
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
        """Per-pair shapes of the aligned twin graph (after padding and placeholders)."""
        if self.pair_shapes is None:
            raise InputError(f"the twins are not aligned: {self.alignment_note}")
        return self.pair_shapes


class _NotAligned(Exception):
    pass


def _interleave_quantizers(f: list[Layer], g: list[Layer]) -> tuple[list[Layer], list[Layer]]:
    """Insert an `Identity` placeholder opposite every quantizer the other network lacks at that point.

    A quantizer whose range starts at 0 computes Q(x) = Q(relu(x)) (its clamp is the ReLU), which is how
    ONNX Runtime's quantizer drops a Relu before an unsigned activation quantizer; facing a ReLU of the other
    network, it gets that ReLU back so the two stay aligned.
    """
    f, g = list(f), list(g)
    out_f: list[Layer] = []
    out_g: list[Layer] = []
    i = j = 0
    while i < len(f) or j < len(g):
        if i < len(f) and j < len(g):
            if isinstance(f[i], ReLU) and _absorbs_relu(g[j]):
                g.insert(j, ReLU())
            elif isinstance(g[j], ReLU) and _absorbs_relu(f[i]):
                f.insert(i, ReLU())
        qf = i < len(f) and isinstance(f[i], QuantizeActivation)
        qg = j < len(g) and isinstance(g[j], QuantizeActivation)
        if qf and qg or not (qf or qg):
            if i >= len(f) or j >= len(g):
                raise _NotAligned(f"different depths ({len(f)} vs {len(g)} layers)")
            out_f.append(f[i])
            out_g.append(g[j])
            i, j = i + 1, j + 1
        elif qg:
            out_f.append(Identity())
            out_g.append(g[j])
            j += 1
        else:
            out_f.append(f[i])
            out_g.append(Identity())
            i += 1
    return out_f, out_g


def _absorbs_relu(layer: Layer) -> bool:
    return isinstance(layer, QuantizeActivation) and bool(np.all(layer.real_min == 0))


def _align(f: Network, g: Network) -> tuple[list[LayerPair], list[tuple[int, ...]], Network]:
    """Pair the layers of f and g, zero-padding g's narrower hidden layers to f's widths (or vice versa)."""
    if f.input_shape != g.input_shape:
        raise _NotAligned(f"different input shapes {f.input_shape} vs {g.input_shape}")
    f_layers, g_layers = _interleave_quantizers(list(f.layers), list(g.layers))
    kinds_f = [type(l) for l in f_layers]
    kinds_g = [type(l) for l in g_layers]
    placeholder = {(Identity, QuantizeActivation), (QuantizeActivation, Identity)}
    if any(a is not b and (a, b) not in placeholder for a, b in zip(kinds_f, kinds_g)):
        raise _NotAligned("different layer types")
    # widths after each layer: use the wider of the two, and pad.
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
    try:
        out_f = Network(f_layers, f.input_shape, name=f.name)
        out_g = Network(g_layers, g.input_shape, name=g.name)
    except Exception as exc:  # e.g. a per-channel quantizer on a layer that padding widened
        raise _NotAligned(f"layer shapes differ after padding ({exc})") from None
    if out_f.shapes != out_g.shapes:
        raise _NotAligned("layer shapes differ after padding")
    for net in (out_f, out_g):
        for layer, shape in zip(net.layers, net.shapes):
            if isinstance(layer, QuantizeActivation):
                try:
                    ok = np.broadcast_shapes(layer.scale.shape, layer.zero_point.shape, tuple(shape)) == tuple(shape)
                except ValueError:
                    ok = False
                if not ok:
                    raise _NotAligned("a per-channel quantizer sits on a layer that padding widened")
    pairs = []
    for lf, lg in zip(out_f.layers, out_g.layers):
        pairs.append(LayerPair(lf, lg, _difference(lf, lg)))
    return pairs, [tuple(s) for s in out_f.shapes], out_g


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
    if isinstance(lf, (QuantizeActivation, Identity)) or isinstance(lg, QuantizeActivation):
        return None  # activation pairs carry no difference layer
    if isinstance(lf, (Reshape, AvgPool2d, ReLU)):
        if isinstance(lf, AvgPool2d) and (lf.kernel, lf.stride, lf.padding) != (
            lg.kernel, lg.stride, lg.padding  # type: ignore[attr-defined]
        ):
            raise _NotAligned("average pools with different hyper-parameters")
        return None
    raise _NotAligned(f"no differential rule for {lf.kind}")
