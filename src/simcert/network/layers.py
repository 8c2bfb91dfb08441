"""The layers of simcert's network IR.

A network is a plain sequence of these layers (see `network.py`). Parameters are stored as float64 numpy
arrays (the exact values of the model, so a float16 or int8 twin is represented exactly); torch copies in
the dtype/device an engine asks for are made on demand and cached on the layer.

Every layer is either *affine* (`is_affine = True`: Dense, Conv2d, AvgPool2d, Reshape, ElementwiseAffine,
Identity) or a non-linearity (ReLU, QuantizeActivation). Affine layers expose the four maps every bound
engine needs, all batched over a leading dimension and shaped `(batch, *shape)`:

    forward(x)     = W x + b
    linear(x)      = W x            (no bias)
    abs_linear(x)  = |W| x          (interval radius propagation)
    vjp(a, in_shape) = a^T W        (back-substitution: maps output-space coefficients to input space)

and the bias is `forward(0)`,
so engines treat all affine layers generically and only non-linear ops need rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import InputError

__all__ = [
    "Layer",
    "Dense",
    "Conv2d",
    "AvgPool2d",
    "Reshape",
    "ElementwiseAffine",
    "Identity",
    "ReLU",
    "QuantizeActivation",
    "Shape",
]

Shape = tuple[int, ...]


def _as_f64(a: Any, name: str) -> np.ndarray:
    arr = np.array(a, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite values")
    return arr


@dataclass(eq=False)
class Layer:
    """Base class. Subclasses are small dataclasses; `_cache` holds torch copies of the parameters."""

    is_affine: ClassVar[bool] = False
    kind: ClassVar[str] = "layer"
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _tensor(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The parameter `name` as a torch tensor with the dtype/device of `like` (cached)."""
        key = (name, like.dtype, like.device)
        t = self._cache.get(key)
        if t is None:
            t = torch.as_tensor(getattr(self, name), dtype=like.dtype, device=like.device)
            self._cache[key] = t
        return t

    def describe(self) -> str:
        return self.kind


# ----------------------------------------------------------------------------------------------- affine


@dataclass(eq=False)
class Dense(Layer):
    """y = W x + b with W of shape (out, in). Input must be flat."""

    weight: np.ndarray
    bias: np.ndarray
    is_affine: ClassVar[bool] = True
    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        self.weight = _as_f64(self.weight, "dense weight")
        self.bias = _as_f64(self.bias, "dense bias")
        if self.weight.ndim != 2 or self.bias.shape != (self.weight.shape[0],):
            raise InputError(
                f"dense layer: weight {self.weight.shape} and bias {self.bias.shape} are inconsistent"
            )

    @property
    def in_features(self) -> int:
        return self.weight.shape[1]

    @property
    def out_features(self) -> int:
        return self.weight.shape[0]

    def output_shape(self, input_shape: Shape) -> Shape:
        if tuple(input_shape) != (self.in_features,):
            raise InputError(f"dense layer expects input shape ({self.in_features},), got {tuple(input_shape)}")
        return (self.out_features,)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self._tensor("weight", x).T + self._tensor("bias", x)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self._tensor("weight", x).T

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        key = ("absW", x.dtype, x.device)
        if key not in self._cache:
            self._cache[key] = self._tensor("weight", x).abs()
        return x @ self._cache[key].T

    def vjp(self, a: torch.Tensor, input_shape: Shape | None = None) -> torch.Tensor:
        return a @ self._tensor("weight", a)

    def describe(self) -> str:
        return f"dense {self.in_features}->{self.out_features}"


def _pair(v: Any) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    t = tuple(int(e) for e in v)
    if len(t) != 2:
        raise InputError(f"expected an int or a pair, got {v!r}")
    return t  # type: ignore[return-value]


@dataclass(eq=False)
class Conv2d(Layer):
    """2-D convolution, weight (C_out, C_in/groups, kH, kW), symmetric zero padding; input (C, H, W)."""

    weight: np.ndarray
    bias: np.ndarray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    is_affine: ClassVar[bool] = True
    kind: ClassVar[str] = "conv2d"

    def __post_init__(self) -> None:
        self.weight = _as_f64(self.weight, "conv weight")
        self.bias = _as_f64(self.bias, "conv bias")
        self.stride, self.padding, self.dilation = _pair(self.stride), _pair(self.padding), _pair(self.dilation)
        if self.weight.ndim != 4 or self.bias.shape != (self.weight.shape[0],):
            raise InputError(f"conv layer: weight {self.weight.shape} and bias {self.bias.shape} are inconsistent")

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3 or input_shape[0] != self.weight.shape[1] * self.groups:
            raise InputError(f"conv layer expects (C={self.weight.shape[1] * self.groups}, H, W), got {input_shape}")
        _, h, w = input_shape
        kh, kw = self.weight.shape[2:]
        oh = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        if oh <= 0 or ow <= 0:
            raise InputError(f"conv layer: input {input_shape} too small for kernel {(kh, kw)}")
        return (self.weight.shape[0], oh, ow)

    def _conv(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, None, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self._tensor("weight", x)) + self._tensor("bias", x)[:, None, None]

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self._tensor("weight", x))

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv(x, self._tensor("weight", x).abs())

    def vjp(self, a: torch.Tensor, input_shape: Shape | None = None) -> torch.Tensor:
        """a: (B, C_out, OH, OW) -> (B, C_in, H, W) = a^T W, via the transposed convolution."""
        if input_shape is None:
            raise ValueError("Conv2d.vjp needs the layer's input shape")
        w = self._tensor("weight", a)
        out = F.conv_transpose2d(a, w, None, self.stride, self.padding, 0, self.groups, self.dilation)
        # conv_transpose may produce a smaller map when stride does not divide the input: pad with zeros.
        h, wd = input_shape[1], input_shape[2]
        if out.shape[-2] != h or out.shape[-1] != wd:
            out = F.pad(out, (0, wd - out.shape[-1], 0, h - out.shape[-2]))
        return out


    def describe(self) -> str:
        co, ci, kh, kw = self.weight.shape
        return f"conv2d {ci * self.groups}->{co} k{kh}x{kw} s{self.stride[0]} p{self.padding[0]}"


@dataclass(eq=False)
class AvgPool2d(Layer):
    """Average pooling (count_include_pad semantics of ONNX AveragePool with zero pads)."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    is_affine: ClassVar[bool] = True
    kind: ClassVar[str] = "avgpool2d"

    def __post_init__(self) -> None:
        self.kernel, self.stride, self.padding = _pair(self.kernel), _pair(self.stride), _pair(self.padding)

    def output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 3:
            raise InputError(f"average pooling expects (C, H, W), got {input_shape}")
        c, h, w = input_shape
        oh = (h + 2 * self.padding[0] - self.kernel[0]) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.kernel[1]) // self.stride[1] + 1
        return (c, oh, ow)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, self.kernel, self.stride, self.padding, count_include_pad=True)

    linear = forward
    abs_linear = forward

    def vjp(self, a: torch.Tensor, input_shape: Shape | None = None) -> torch.Tensor:
        if input_shape is None:
            raise ValueError("AvgPool2d.vjp needs the layer's input shape")
        c = input_shape[0]
        w = torch.full((c, 1, *self.kernel), 1.0 / (self.kernel[0] * self.kernel[1]), dtype=a.dtype, device=a.device)
        out = F.conv_transpose2d(a, w, None, self.stride, self.padding, 0, c)
        h, wd = input_shape[1], input_shape[2]
        if out.shape[-2] != h or out.shape[-1] != wd:
            out = F.pad(out, (0, wd - out.shape[-1], 0, h - out.shape[-2]))
        return out


    def describe(self) -> str:
        return f"avgpool2d k{self.kernel[0]}x{self.kernel[1]} s{self.stride[0]}"


@dataclass(eq=False)
class Reshape(Layer):
    """Reshape (and Flatten, `shape=(-1,)`) of the per-sample tensor; row-major like ONNX/torch."""

    shape: tuple[int, ...] = (-1,)
    is_affine: ClassVar[bool] = True
    kind: ClassVar[str] = "reshape"

    def __post_init__(self) -> None:
        self.shape = tuple(int(s) for s in self.shape)

    def output_shape(self, input_shape: Shape) -> Shape:
        n = int(np.prod(input_shape))
        shape = list(self.shape)
        if shape.count(-1) > 1:
            raise InputError(f"reshape target {self.shape} has more than one -1")
        if -1 in shape:
            rest = int(np.prod([s for s in shape if s != -1]))
            if rest == 0 or n % rest:
                raise InputError(f"cannot reshape {input_shape} to {self.shape}")
            shape[shape.index(-1)] = n // rest
        if int(np.prod(shape)) != n:
            raise InputError(f"cannot reshape {input_shape} to {self.shape}")
        return tuple(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)

    linear = forward
    abs_linear = forward

    def vjp(self, a: torch.Tensor, input_shape: Shape | None = None) -> torch.Tensor:
        if input_shape is None:
            raise ValueError("Reshape.vjp needs the layer's input shape")
        return a.reshape(a.shape[0], *input_shape)


    def describe(self) -> str:
        return "flatten" if self.shape == (-1,) else f"reshape {self.shape}"


@dataclass(eq=False)
class ElementwiseAffine(Layer):
    """y = scale * x + shift, elementwise with numpy broadcasting over the per-sample shape.

    Represents input normalization ((x - mean) / range, ONNX Sub/Div/Mul/Add by constants) and a batch
    normalization that could not be folded into a preceding affine layer.
    """

    scale: np.ndarray
    shift: np.ndarray
    is_affine: ClassVar[bool] = True
    kind: ClassVar[str] = "elementwise_affine"

    def __post_init__(self) -> None:
        self.scale = _as_f64(self.scale, "normalization scale")
        self.shift = _as_f64(self.shift, "normalization shift")

    def output_shape(self, input_shape: Shape) -> Shape:
        try:
            out = np.broadcast_shapes(tuple(input_shape), self.scale.shape, self.shift.shape)
        except ValueError as exc:
            raise InputError(f"normalization constants do not broadcast to input shape {input_shape}") from exc
        if tuple(out) != tuple(input_shape):
            raise InputError(f"normalization constants would change the input shape {input_shape} to {out}")
        return tuple(input_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._tensor("scale", x) + self._tensor("shift", x)

    def linear(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._tensor("scale", x)

    def abs_linear(self, x: torch.Tensor) -> torch.Tensor:
        return x * self._tensor("scale", x).abs()

    def vjp(self, a: torch.Tensor, input_shape: Shape | None = None) -> torch.Tensor:
        return a * self._tensor("scale", a)

    def full_shift(self, shape: Shape) -> np.ndarray:
        return np.broadcast_to(self.shift, shape).copy()

    def describe(self) -> str:
        return "normalize"


@dataclass(eq=False)
class Identity(Layer):
    """y = x (kept only where a loader wants to mark a no-op; `Network.simplified` drops it)."""

    is_affine: ClassVar[bool] = True
    kind: ClassVar[str] = "identity"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    linear = forward
    abs_linear = forward

    def vjp(self, a: torch.Tensor, input_shape: Shape | None = None) -> torch.Tensor:
        return a


# ------------------------------------------------------------------------------------------- non-linear


@dataclass(eq=False)
class ReLU(Layer):
    kind: ClassVar[str] = "relu"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


@dataclass(eq=False)
class QuantizeActivation(Layer):
    """Fake-quantize an activation: y = scale * (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point).

    `scale` and `zero_point` are scalars (per tensor) or arrays broadcastable to the activation shape (per
    channel). `rounding` is "half_even" (ONNX QuantizeLinear, numpy/torch round) or "half_up".
    Sound treatment in the engines: y = clamp(x) + e with |e| <= scale/2 (METHODS.md section 4).

    `slack_steps` (>= 0, default 0) models a runtime whose requantization is not exactly this formula
    (ONNX Runtime's fused integer kernels compute x / scale as float32(acc) * float32(multiplier); float32
    accumulation): the runtime output is y = scale * (clamp(round(x / scale + d) + zero_point, qmin, qmax)
    - zero_point) for SOME |d| <= slack_steps, possibly different per element and per input. Hence
    |y - clamp(x)| <= scale * (1/2 + slack_steps), y stays on the grid in [real_min, real_max], and y is not
    a function of x (no monotonicity). `forward` computes the exact formula (d = 0).
    """

    scale: np.ndarray
    zero_point: np.ndarray
    bits: int = 8
    signed: bool = True
    rounding: Literal["half_even", "half_up"] = "half_even"
    slack_steps: float = 0.0
    kind: ClassVar[str] = "quantize_activation"

    def __post_init__(self) -> None:
        self.scale = _as_f64(self.scale, "activation scale")
        self.zero_point = _as_f64(self.zero_point, "activation zero point")
        if np.any(self.scale <= 0):
            raise InputError("activation quantization scale must be positive")
        if not 2 <= int(self.bits) <= 32:
            raise InputError(f"activation quantization bit width must be in [2, 32], got {self.bits}")
        if self.rounding not in ("half_even", "half_up"):
            raise InputError(f"unknown rounding mode {self.rounding!r}")
        self.slack_steps = float(self.slack_steps)
        if not (np.isfinite(self.slack_steps) and self.slack_steps >= 0.0):
            raise InputError(f"activation quantization slack must be a finite number >= 0, got {self.slack_steps}")

    @property
    def qmin(self) -> int:
        return -(2 ** (self.bits - 1)) if self.signed else 0

    @property
    def qmax(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    @property
    def real_min(self) -> np.ndarray:
        """Smallest representable real value, per element of the broadcast parameters."""
        return self.scale * (self.qmin - self.zero_point)

    @property
    def real_max(self) -> np.ndarray:
        return self.scale * (self.qmax - self.zero_point)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s, z = self._tensor("scale", x), self._tensor("zero_point", x)
        v = x / s
        q = torch.round(v) if self.rounding == "half_even" else torch.floor(v + 0.5)
        q = torch.clamp(q + z, self.qmin, self.qmax)
        return s * (q - z)

    def describe(self) -> str:
        per = "per-tensor" if self.scale.size == 1 else "per-channel"
        return f"quantize-activation int{self.bits} {per}"
