"""Convert a `torch.nn.Module` into the network IR (inference semantics).

Supported modules: nn.Linear, nn.Conv2d (zero padding, symmetric), nn.ReLU, nn.Flatten, nn.BatchNorm1d/2d
(running statistics, folded into the preceding Linear/Conv2d when there is one), nn.AvgPool2d, nn.Identity,
nn.Dropout (identity at inference) and nn.Sequential, also nested. Any other module raises
`UnsupportedOpError` naming its class.

A module that is not an nn.Sequential is traced with `torch.fx.symbolic_trace`; its graph must be a chain
of the modules above plus `torch.relu`/`F.relu`, `torch.flatten`/`.flatten()`, `.view`/`.reshape` keeping
the batch axis (`x.size(0)`/`-1` first), and `+ - * /` by Python or tensor constants. Modules that cannot
be traced raise `UnsupportedOpError` (we never guess the order of children from attribute order).
Parameters are copied to float64 exactly.
"""

from __future__ import annotations

import operator
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import InputError, UnsupportedOpError
from .layers import AvgPool2d, Conv2d, Dense, ElementwiseAffine, Identity, Layer, ReLU, Reshape, Shape
from .network import Network

__all__ = ["from_torch"]


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().to(torch.float64).numpy().copy()


class _Builder:
    def __init__(self, input_shape: Shape) -> None:
        self.layers: list[Layer] = []
        self.shape = tuple(input_shape)

    def emit(self, layer: Layer, where: str) -> None:
        try:
            self.shape = tuple(layer.output_shape(self.shape))
        except InputError as exc:
            raise InputError(f"{where}: {exc}") from None
        self.layers.append(layer)

    # ---------------------------------------------------------------------------- modules
    def module(self, m: nn.Module, where: str) -> None:
        """Append the layers of module `m` (named `where` in error messages)."""
        try:
            self._module(m, where)
        except InputError as exc:
            if isinstance(exc, UnsupportedOpError) or str(exc).startswith(where):
                raise
            raise InputError(f"{where} ({type(m).__name__}): {exc}") from None

    def _module(self, m: nn.Module, where: str) -> None:
        if isinstance(m, nn.Sequential):
            for name, child in m.named_children():
                self.module(child, f"{where}.{name}")
            return
        if isinstance(m, nn.Linear):
            w = _np(m.weight)
            b = _np(m.bias) if m.bias is not None else np.zeros(m.out_features)
            self.emit(Dense(w, b), where)
        elif isinstance(m, nn.Conv2d):
            self.emit(self.conv(m, where), where)
        elif isinstance(m, nn.ReLU):
            self.emit(ReLU(), where)
        elif isinstance(m, (nn.Identity, nn.Dropout)):
            return
        elif isinstance(m, nn.Flatten):
            self.flatten(m.start_dim, m.end_dim, where)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self.emit(self.batchnorm(m, where), where)
        elif isinstance(m, nn.AvgPool2d):
            self.emit(self.avgpool(m, where), where)
        elif _is_plain_container(m):
            raise UnsupportedOpError(f"{where}: {type(m).__name__} is not supported")
        else:
            self.traced(m, where)

    def conv(self, m: nn.Conv2d, where: str) -> Conv2d:
        if m.padding_mode != "zeros":
            raise UnsupportedOpError(f"{where}: Conv2d padding_mode={m.padding_mode!r} is not supported")
        pad: Any = m.padding
        if isinstance(pad, str):
            if pad == "valid":
                pad = (0, 0)
            else:  # "same" (stride 1): symmetric only when the effective kernel size is odd
                eff = [d * (k - 1) for k, d in zip(m.kernel_size, m.dilation)]
                if any(e % 2 for e in eff):
                    raise UnsupportedOpError(f"{where}: padding='same' would be asymmetric")
                pad = tuple(e // 2 for e in eff)
        b = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels)
        return Conv2d(_np(m.weight), b, tuple(m.stride), tuple(pad), tuple(m.dilation), m.groups)

    def batchnorm(self, m: nn.modules.batchnorm._BatchNorm, where: str) -> ElementwiseAffine:
        """y = gamma (x - running_mean) / sqrt(running_var + eps) + beta, per channel (axis 0 per sample)."""
        if m.running_mean is None or m.running_var is None:
            raise UnsupportedOpError(f"{where}: {type(m).__name__} without running statistics")
        c = m.num_features
        gamma = _np(m.weight) if m.weight is not None else np.ones(c)
        beta = _np(m.bias) if m.bias is not None else np.zeros(c)
        scale = gamma / np.sqrt(_np(m.running_var) + m.eps)
        shift = beta - _np(m.running_mean) * scale
        bshape = (c,) + (1,) * (len(self.shape) - 1)
        return ElementwiseAffine(scale.reshape(bshape), shift.reshape(bshape))

    def avgpool(self, m: nn.AvgPool2d, where: str) -> AvgPool2d:
        if m.ceil_mode or m.divisor_override is not None:
            raise UnsupportedOpError(f"{where}: AvgPool2d with ceil_mode/divisor_override")
        stride = m.stride if m.stride is not None else m.kernel_size
        layer = AvgPool2d(m.kernel_size, stride, m.padding)
        if any(layer.padding) and not m.count_include_pad:
            raise UnsupportedOpError(f"{where}: padded AvgPool2d with count_include_pad=False")
        return layer

    def flatten(self, start: int, end: int, where: str) -> None:
        """torch.flatten(x, start, end) on (B, *shape): per-sample axes start-1 .. end-1 are merged."""
        rank = len(self.shape) + 1
        s, e = start % rank, end % rank
        if s == 0:
            raise UnsupportedOpError(f"{where}: flattening the batch axis is not supported")
        shp = self.shape
        new = shp[: s - 1] + (int(np.prod(shp[s - 1 : e])),) + shp[e:]
        if new != shp:
            self.emit(Reshape(new), where)

    # ---------------------------------------------------------------------------- fx tracing
    def traced(self, m: nn.Module, where: str) -> None:
        import torch.fx as fx

        try:
            gm = fx.symbolic_trace(m)
        except Exception as exc:
            raise UnsupportedOpError(
                f"{where}: cannot trace {type(m).__name__}.forward with torch.fx ({type(exc).__name__}); "
                "use nn.Sequential of supported modules"
            ) from None
        modules = dict(gm.named_modules())
        head = None
        values: dict[Any, Any] = {}
        for node in gm.graph.nodes:
            if node.op == "placeholder":
                if head is not None:
                    raise UnsupportedOpError(f"{where}: forward takes more than one input")
                head = node
                continue
            if node.op == "get_attr":
                values[node] = _attr(gm, node.target)
                continue
            if node.op == "output":
                if node.args[0] is not head:
                    raise UnsupportedOpError(f"{where}: forward must return the single chained tensor")
                return
            dyn_args = [a for a in _flat_args(node) if a is head]
            other_nodes = [a for a in _flat_args(node) if isinstance(a, fx.Node) and a is not head and a not in values]
            label = f"{where}.{node.target}" if node.op == "call_module" else f"{where}:{node.name}"
            if _shape_query(node, head, values):
                continue
            if not dyn_args or other_nodes:
                raise UnsupportedOpError(
                    f"{label}: {node.op} {node.target} is not a chain step on the input "
                    "(branches, skip connections and shape arithmetic are not supported)"
                )
            if node.op == "call_module":
                self.module(modules[node.target], label)
            else:
                self.function(node, head, values, label)
            head = node
        raise UnsupportedOpError(f"{where}: traced graph has no output")  # pragma: no cover

    def function(self, node: Any, head: Any, values: dict[Any, Any], label: str) -> None:
        t, args, kw = node.target, node.args, node.kwargs
        name = getattr(t, "__name__", str(t))
        if t in (torch.relu, F.relu) or (node.op == "call_method" and t in ("relu", "relu_")):
            self.emit(ReLU(), label)
            return
        if t is torch.flatten or (node.op == "call_method" and t == "flatten"):
            start = args[1] if len(args) > 1 else kw.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kw.get("end_dim", -1)
            self.flatten(start, end, label)
            return
        if node.op == "call_method" and t in ("view", "reshape") or t is torch.reshape:
            dims = list(args[1:]) if node.op == "call_method" else list(args[1])
            if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
                dims = list(dims[0])
            dims = [values.get(d, d) if not isinstance(d, int) else d for d in dims]
            if not dims or dims[0] not in ("batch", -1) or any(not isinstance(d, int) for d in dims[1:]):
                raise UnsupportedOpError(f"{label}: {t} must keep the batch axis first ({dims})")
            rest = tuple(int(d) for d in dims[1:])
            if dims[0] == -1 and (-1 in rest or int(np.prod(rest)) != int(np.prod(self.shape))):
                raise UnsupportedOpError(f"{label}: {t}{tuple(dims)} mixes the batch axis")
            self.emit(Reshape(rest), label)
            return
        if t in (operator.add, operator.sub, operator.mul, operator.truediv, torch.add, torch.sub, torch.mul,
                 torch.div) or (node.op == "call_method" and t in ("add", "sub", "mul", "div")):
            op = {operator.add: "add", torch.add: "add", operator.sub: "sub", torch.sub: "sub",
                  operator.mul: "mul", torch.mul: "mul", operator.truediv: "div", torch.div: "div"}.get(t, t)
            x_first = args[0] is head
            other = args[1] if x_first else args[0]
            c = values.get(other, other) if not isinstance(other, (int, float)) else other
            if isinstance(c, torch.Tensor):
                c = _np(c)
            if not isinstance(c, (int, float, np.ndarray)) or len(args) != 2 or kw:
                raise UnsupportedOpError(f"{label}: {name} needs a constant operand")
            c = np.asarray(c, dtype=np.float64)
            if c.ndim == len(self.shape) + 1:
                c = c.reshape(c.shape[1:]) if c.shape[0] == 1 else c
            one, zero = np.ones(()), np.zeros(())
            if op == "add":
                layer = ElementwiseAffine(one, c)
            elif op == "sub":
                layer = ElementwiseAffine(one, -c) if x_first else ElementwiseAffine(-one, c)
            elif op == "mul":
                layer = ElementwiseAffine(c, zero)
            else:
                if not x_first or np.any(c == 0):
                    raise UnsupportedOpError(f"{label}: division must be by a non-zero constant")
                layer = ElementwiseAffine(1.0 / c, zero)
            self.emit(layer, label)
            return
        if t in (F.dropout,) or (node.op == "call_method" and t in ("contiguous",)):
            return
        raise UnsupportedOpError(f"{label}: function {name} is not supported")


def _shape_query(node: Any, head: Any, values: dict[Any, Any]) -> bool:
    """Record `x.size(0)`, `x.shape[0]` (the batch size) and `x.shape`; True when `node` is one of them."""
    t, args = node.target, node.args
    if node.op == "call_method" and t == "size" and args and args[0] is head:
        dim = args[1] if len(args) > 1 else node.kwargs.get("dim")
        values[node] = "batch" if dim == 0 else "shape" if dim is None else ("dim", dim)
        return True
    if node.op == "call_function" and t is getattr and args[0] is head and args[1] == "shape":
        values[node] = "shape"
        return True
    if node.op == "call_function" and t is operator.getitem and values.get(args[0]) == "shape":
        values[node] = "batch" if args[1] == 0 else ("dim", args[1])
        return True
    return False


def _attr(gm: Any, target: str) -> Any:
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def _flat_args(node: Any) -> list[Any]:
    out: list[Any] = []

    def walk(a: Any) -> None:
        if isinstance(a, (list, tuple)):
            for b in a:
                walk(b)
        elif isinstance(a, dict):
            for b in a.values():
                walk(b)
        else:
            out.append(a)

    walk(node.args)
    walk(node.kwargs)
    return out


_SUPPORTED = (nn.Linear, nn.Conv2d, nn.ReLU, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d,
              nn.Identity, nn.Dropout, nn.Sequential)


def _is_plain_container(m: nn.Module) -> bool:
    """A torch built-in module we do not support (traced modules must be user-defined)."""
    return type(m).__module__.startswith("torch.nn") and not isinstance(m, _SUPPORTED)


def from_torch(module: nn.Module, input_shape: Sequence[int], name: str | None = None) -> Network:
    """The IR of `module` for per-sample inputs of shape `input_shape` (inference semantics).

    BatchNorm uses the running statistics and Dropout is the identity, whatever `module.training` is.
    """
    if not isinstance(module, nn.Module):
        raise InputError(f"expected a torch.nn.Module, got {type(module).__name__}")
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise InputError(f"input_shape must be a tuple of positive sizes, got {tuple(input_shape)}")
    root = name or type(module).__name__
    b = _Builder(shape)
    b.module(module, root)
    from .io import fold_affine

    layers = fold_affine(b.layers, shape) or [Identity()]
    try:
        return Network(layers, shape, name=root, source=f"torch:{type(module).__name__}", meta={"format": "torch"})
    except InputError as exc:
        raise InputError(f"{root}: {exc}") from None
