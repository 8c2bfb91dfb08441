"""`Network`: a sequence of IR layers with its input shape and metadata.

Coordinates: a network maps inputs in *its own* coordinates (for .nnet models that is the normalized space,
as in the ACAS Xu ONNX exports). `NnetNormalization` keeps the .nnet min/max/mean/range so regions can be
given in raw units (`Network.normalize`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Sequence

import numpy as np
import torch

from ..errors import InputError
from .layers import (
    Conv2d,
    Dense,
    ElementwiseAffine,
    Identity,
    Layer,
    QuantizeActivation,
    ReLU,
    Reshape,
    Shape,
)

__all__ = ["Network", "NnetNormalization"]


@dataclass(frozen=True)
class NnetNormalization:
    """Input/output normalization of the Stanford .nnet format: x_hat = (clip(x, min, max) - mean) / range."""

    input_min: np.ndarray
    input_max: np.ndarray
    input_mean: np.ndarray
    input_range: np.ndarray
    output_mean: float = 0.0
    output_range: float = 1.0

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        return (np.clip(raw, self.input_min, self.input_max) - self.input_mean) / self.input_range

    def denormalize_output(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y) * self.output_range + self.output_mean

    @property
    def normalized_domain(self) -> tuple[np.ndarray, np.ndarray]:
        return self.normalize(self.input_min), self.normalize(self.input_max)


@dataclass(eq=False)
class Network:
    """A feed-forward network: `layers` applied in order to an input of per-sample shape `input_shape`.

    `softmax_output` records a trailing Softmax that was stripped at load time (properties are on logits).
    `input_domain` is the valid input box in network coordinates, when the format states one.
    """

    layers: list[Layer]
    input_shape: Shape
    name: str = "network"
    softmax_output: bool = False
    input_domain: tuple[np.ndarray, np.ndarray] | None = None
    nnet: NnetNormalization | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    shapes: list[Shape] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(s) for s in self.input_shape)
        self.layers = list(self.layers)
        if not self.layers:
            raise InputError(f"{self.name}: network has no layers")
        shapes = [self.input_shape]
        for i, layer in enumerate(self.layers):
            try:
                shapes.append(tuple(layer.output_shape(shapes[-1])))
            except InputError as exc:
                raise InputError(f"{self.name}: layer {i} ({layer.describe()}): {exc}") from None
        self.shapes = shapes
        if len(self.output_shape) != 1:
            raise InputError(f"{self.name}: output must be a flat vector, got shape {self.output_shape}")

    # ------------------------------------------------------------------ shapes
    @property
    def output_shape(self) -> Shape:
        return self.shapes[-1]

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output_shape))

    # ------------------------------------------------------------------ evaluation
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Batch forward pass in torch. `x` is (B, *input_shape) or (B, input_size); returns (B, output_size)."""
        if x.dim() == 1:
            x = x.unsqueeze(0)
        if tuple(x.shape[1:]) != self.input_shape:
            if int(np.prod(x.shape[1:])) != self.input_size:
                raise InputError(
                    f"{self.name}: input of shape {tuple(x.shape[1:])} does not match the model's {self.input_shape}"
                )
            x = x.reshape(x.shape[0], *self.input_shape)
        for layer in self.layers:
            x = layer.forward(x)
        return x.flatten(1) if x.dim() > 1 else x.reshape(-1, 1)

    def __call__(self, x: Any, dtype: torch.dtype | None = None) -> Any:
        """Forward pass: numpy in -> numpy out (float64 by default), torch in -> torch out."""
        if isinstance(x, torch.Tensor):
            return self.forward(x if dtype is None else x.to(dtype))
        arr = np.asarray(x, dtype=np.float64)
        single = arr.ndim == 1
        t = torch.as_tensor(arr, dtype=dtype or torch.float64)
        with torch.no_grad():
            y = self.forward(t).cpu().numpy()
        return y[0] if single else y

    def normalize(self, raw: np.ndarray) -> np.ndarray:
        """Map raw-unit inputs to network coordinates (.nnet normalization; identity otherwise)."""
        return raw if self.nnet is None else self.nnet.normalize(raw)

    # ------------------------------------------------------------------ structure
    def relu_count(self) -> int:
        return sum(isinstance(layer, ReLU) for layer in self.layers)

    def parameter_count(self) -> int:
        total = 0
        for layer in self.layers:
            for name in ("weight", "bias", "scale", "shift"):
                if hasattr(layer, name) and not isinstance(layer, QuantizeActivation):
                    total += int(np.asarray(getattr(layer, name)).size)
        return total

    def summary(self) -> dict[str, Any]:
        """A JSON-friendly description (used by `simcert info` and certificates)."""
        weights = [np.asarray(l.weight) for l in self.layers if isinstance(l, (Dense, Conv2d))]
        flat = np.concatenate([w.ravel() for w in weights]) if weights else np.zeros(0)
        return {
            "name": self.name,
            "input_shape": list(self.input_shape),
            "output_size": self.output_size,
            "layers": [l.describe() for l in self.layers],
            "parameters": self.parameter_count(),
            "relus": sum(int(np.prod(self.shapes[i])) for i, l in enumerate(self.layers) if isinstance(l, ReLU)),
            "weight_sparsity": float(np.mean(flat == 0)) if flat.size else 0.0,
            "distinct_weight_values": int(np.unique(flat).size),
            "float16_exact": bool(flat.size and np.array_equal(flat.astype(np.float16).astype(np.float64), flat)),
            "activation_quantized": any(isinstance(l, QuantizeActivation) for l in self.layers),
            "softmax_output": self.softmax_output,
            **({"warnings": list(self.meta["warnings"])} if self.meta.get("warnings") else {}),
        }

    def with_layers(self, layers: Sequence[Layer], **changes: Any) -> "Network":
        """A copy with other layers (and optionally other metadata)."""
        return replace(self, layers=list(layers), **changes)

    def simplified(self) -> "Network":
        """An equivalent network that is easier to bound: fewer, merged affine layers.

        Identities are dropped; an elementwise normalization before a reshape is moved after it; a leading
        reshape of the input is absorbed into a flat input shape; runs of affine layers on flat vectors
        (normalization, Dense) are merged into one Dense. Convolutions are kept as convolutions.
        """
        layers = [l for l in self.layers if not isinstance(l, Identity)]
        shapes = _shapes(self.input_shape, layers)
        # move ElementwiseAffine past a following Reshape (its constants reshaped with it)
        i = 0
        while i + 1 < len(layers):
            a, b = layers[i], layers[i + 1]
            if isinstance(a, ElementwiseAffine) and isinstance(b, Reshape):
                in_shape, out_shape = shapes[i], shapes[i + 2]
                layers[i] = b
                layers[i + 1] = ElementwiseAffine(
                    np.broadcast_to(a.scale, in_shape).reshape(out_shape),
                    np.broadcast_to(a.shift, in_shape).reshape(out_shape),
                )
                shapes = _shapes(self.input_shape, layers)
                i = max(i - 1, 0)
                continue
            i += 1
        # merge consecutive reshapes, absorb a leading reshape into the input shape
        input_shape = self.input_shape
        merged: list[Layer] = []
        for layer, in_shape in zip(layers, shapes[:-1]):
            if isinstance(layer, Reshape):
                out_shape = layer.output_shape(in_shape)
                if merged and isinstance(merged[-1], Reshape):
                    merged[-1] = Reshape(out_shape)
                    continue
                if not merged:
                    input_shape = out_shape
                    continue
                if out_shape == in_shape:
                    continue
                merged.append(Reshape(out_shape))
                continue
            merged.append(layer)
        layers, shapes = merged, _shapes(input_shape, merged)
        # merge runs of flat affine layers into one Dense
        out: list[Layer] = []
        out_in_shapes: list[Shape] = []
        for layer, in_shape in zip(layers, shapes[:-1]):
            dense = _as_dense(layer, in_shape)
            if dense is not None and out:
                prev = _as_dense(out[-1], out_in_shapes[-1])
                if prev is not None:
                    out[-1] = Dense(dense.weight @ prev.weight, dense.weight @ prev.bias + dense.bias)
                    continue
            out.append(dense if dense is not None else layer)
            out_in_shapes.append(in_shape)
        return self.with_layers(out, input_shape=input_shape)


def _shapes(input_shape: Shape, layers: Sequence[Layer]) -> list[Shape]:
    shapes = [tuple(input_shape)]
    for layer in layers:
        shapes.append(tuple(layer.output_shape(shapes[-1])))
    return shapes


def _as_dense(layer: Layer, in_shape: Shape) -> Dense | None:
    """The layer as an explicit Dense when it acts on a flat vector (None otherwise)."""
    if len(in_shape) != 1:
        return None
    n = in_shape[0]
    if isinstance(layer, Dense):
        return layer
    if isinstance(layer, ElementwiseAffine):
        scale = np.broadcast_to(layer.scale, (n,))
        shift = np.broadcast_to(layer.shift, (n,))
        return Dense(np.diag(scale), shift.copy())
    if isinstance(layer, Identity):
        return Dense(np.eye(n), np.zeros(n))
    return None

