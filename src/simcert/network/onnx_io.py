"""ONNX reader and writer for the network IR.

Reading (`load_onnx`): the graph is pruned to the ancestors of its single output, walked in topological
order, and every node is either *constant* (all inputs are initializers/Constant outputs: evaluated with
numpy in float64, DequantizeLinear exactly as scale * (q - zero_point)) or acts on the one *dynamic*
tensor, which must flow as a chain (no branches, no residual adds). Dynamic ops and the layers they become:

    MatMul (x @ W, or W @ x on a 1-D input), Gemm          -> Dense (bias Add folded in)
    Add/Sub/Mul/Div/Neg by constants, BatchNormalization   -> ElementwiseAffine (folded into a preceding
                                                              Dense/Conv2d when possible)
    Conv (symmetric pads), AveragePool, GlobalAveragePool  -> Conv2d, AvgPool2d
    Flatten, Reshape (constant shape), Squeeze, Unsqueeze,
    Transpose that only moves size-1 axes                  -> Reshape
    Relu                                                   -> ReLU
    QuantizeLinear -> DequantizeLinear on an activation    -> QuantizeActivation (per tensor or per channel)
    Identity, Dropout                                      -> nothing
    Softmax as the very last op                            -> stripped, `softmax_output=True`

Anything else (MaxPool, Softmax elsewhere, Shape/dynamic shapes, two dynamic inputs, ...) raises
`UnsupportedOpError` naming the file, the op and the node.

Batch dimension: the first input dimension is the batch when it is symbolic or 1 and the input has more
than one dimension ([1,1,1,5] -> per-sample (1,1,5); [N,n] -> (n,)); a 1-D input [n] has no batch
dimension (the `W @ x` exports). `net.meta` records the ONNX input name/dims so `onnx_bytes` can write a
compatible model.

Writing (`onnx_bytes`): Dense -> Gemm (or MatMul(W, x) + Add for unbatched 1-D MLPs), Conv2d -> Conv,
AvgPool2d -> AveragePool, Reshape -> Reshape, ElementwiseAffine -> Mul/Add, QuantizeActivation ->
QuantizeLinear/DequantizeLinear, ReLU -> Relu, `softmax_output` -> a trailing Softmax. Parameters are
stored in `dtype` (float32 by default: exact for float32-representable values; float64 keeps all).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InputError, ModelFormatError, UnsupportedOpError
from .layers import (
    AvgPool2d,
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
from .network import Network, NnetNormalization

__all__ = ["load_onnx", "onnx_model", "onnx_bytes"]

# ONNX integer element types usable as a quantization zero point: (bits, signed)
_QUANT_TYPES = {2: (8, False), 3: (8, True), 4: (16, False), 5: (16, True), 21: (4, False), 22: (4, True)}
_MAX_KRON = 20_000_000  # largest dense matrix we build for a matmul over a non-flat tensor


def _onnx() -> Any:
    import onnx

    return onnx


# ================================================================================================ reading


@dataclass
class _Dyn:
    """The dynamic tensor: per-sample shape, whether the ONNX tensor has a leading batch axis."""

    shape: Shape
    batched: bool
    quant: tuple[np.ndarray, np.ndarray, int, int] | None = None  # pending QuantizeLinear: scale, zp, axis, type
    softmax: bool = False  # output of a (so far) trailing Softmax

    @property
    def rank(self) -> int:
        """Rank of the ONNX tensor (per-sample rank plus the batch axis)."""
        return len(self.shape) + int(self.batched)


class _Reader:
    def __init__(self, model: Any, path: str, input_shape: Sequence[int] | None, name: str | None) -> None:
        self.model = model
        self.path = path
        self.user_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.name = name
        self.graph = model.graph
        self.consts: dict[str, np.ndarray] = {}
        self.const_types: dict[str, int] = {}  # ONNX element type of constants (for zero points)
        self.layers: list[Layer] = []
        self.head: str | None = None  # name of the current dynamic tensor
        self.dyn: _Dyn | None = None
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)

    # -------------------------------------------------------------------------------- errors
    def _where(self, node: Any) -> str:
        label = f" '{node.name}'" if node.name else ""
        return f"{self.path}: {node.op_type} node{label}"

    def unsupported(self, node: Any, why: str) -> UnsupportedOpError:
        return UnsupportedOpError(f"{self._where(node)}: {why}")

    def bad(self, node: Any, why: str) -> ModelFormatError:
        return ModelFormatError(f"{self._where(node)}: {why}")

    # -------------------------------------------------------------------------------- setup
    def read(self) -> Network:
        onnx = _onnx()
        g = self.graph
        if len(g.output) != 1:
            raise UnsupportedOpError(f"{self.path}: model has {len(g.output)} outputs; exactly one is supported")
        out_name = g.output[0].name
        init_names = {t.name for t in g.initializer}
        inputs = [i for i in g.input if i.name not in init_names]
        if len(inputs) != 1:
            raise UnsupportedOpError(f"{self.path}: model has {len(inputs)} inputs; exactly one is supported")
        inp = inputs[0]
        nodes = self._prune(out_name)
        used = {n for node in nodes for n in node.input}
        for t in g.initializer:
            if t.name not in used:
                continue
            try:
                arr = onnx.numpy_helper.to_array(t)
            except Exception as exc:  # truncated raw data, unknown type, missing external data ...
                raise ModelFormatError(f"{self.path}: initializer '{t.name}' cannot be read ({_short(exc)})") from None
            self._set_const(t.name, arr, t.data_type)
        in_dims, self.dyn = self._input(inp)
        self.head = inp.name
        meta = {
            "format": "onnx",
            "onnx_input_name": inp.name,
            "onnx_input_dims": in_dims,
            "onnx_batched": self.dyn.batched,
            "onnx_output_name": out_name,
            "onnx_opset": self.opset,
        }
        input_shape = self.dyn.shape
        for node in nodes:
            self._node(node)
        if out_name in self.consts:
            raise UnsupportedOpError(f"{self.path}: the model output '{out_name}' does not depend on the input")
        if self.head != out_name:
            raise ModelFormatError(f"{self.path}: the model output '{out_name}' is not computed by the graph")
        dyn = self.dyn
        if dyn.quant is not None:
            raise UnsupportedOpError(f"{self.path}: the model output is an integer QuantizeLinear result")
        if len(dyn.shape) != 1:
            meta["onnx_output_shape"] = list(dyn.shape)
            self.layers.append(Reshape((-1,)))
        from .io import fold_affine

        layers = fold_affine(self.layers, input_shape) or [Identity()]
        props = {p.key: p.value for p in self.model.metadata_props}
        domain, nnet = _read_meta_props(props)
        name = self.name or Path(self.path).stem
        try:
            return Network(
                layers,
                input_shape,
                name=name or "network",
                softmax_output=dyn.softmax,
                input_domain=domain,
                nnet=nnet,
                source=str(self.path),
                meta=meta,
            )
        except InputError as exc:
            raise InputError(f"{self.path}: {exc}") from None

    def _prune(self, out_name: str) -> list[Any]:
        """The nodes the output depends on, in topological order (Kahn; ties keep file order)."""
        producers: dict[str, int] = {}
        for i, node in enumerate(self.graph.node):
            for o in node.output:
                if o:
                    producers[o] = i
        needed: set[int] = set()
        stack = [out_name]
        while stack:
            t = stack.pop()
            i = producers.get(t)
            if i is None or i in needed:
                continue
            needed.add(i)
            stack.extend(x for x in self.graph.node[i].input if x)
            for a in self.graph.node[i].attribute:
                if a.type == a.GRAPH or a.type == a.GRAPHS:
                    raise self.unsupported(self.graph.node[i], "control flow with subgraphs is not supported")
        order: list[Any] = []
        done: set[str] = set()
        pending = sorted(needed)
        while pending:
            progressed = []
            for i in pending:
                node = self.graph.node[i]
                if all((not x) or x not in producers or producers[x] not in needed or x in done for x in node.input):
                    order.append(node)
                    done.update(o for o in node.output if o)
                    progressed.append(i)
            if not progressed:
                raise ModelFormatError(f"{self.path}: the graph has a cycle")
            pending = [i for i in pending if i not in set(progressed)]
        return order

    def _set_const(self, name: str, arr: np.ndarray, onnx_type: int | None = None) -> None:
        if arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
            consumer = next((n for n in self.graph.node if name in n.input), None)
            user = f" (input of {consumer.op_type} node '{consumer.name}')" if consumer is not None else ""
            raise ModelFormatError(f"{self.path}: constant '{name}'{user} contains NaN or infinite values")
        self.consts[name] = arr
        if onnx_type is not None:
            self.const_types[name] = onnx_type

    def _input(self, inp: Any) -> tuple[list[int | str], _Dyn]:
        tt = inp.type.tensor_type
        if not inp.type.HasField("tensor_type") or not tt.HasField("shape"):
            if self.user_shape is None:
                raise UnsupportedOpError(f"{self.path}: input '{inp.name}' has no static shape; pass input_shape")
            return [], _Dyn(self.user_shape, batched=True)
        dims: list[int | str] = []
        for d in tt.shape.dim:
            if d.HasField("dim_value") and d.dim_value > 0:
                dims.append(int(d.dim_value))
            else:
                dims.append(d.dim_param or "?")
        if not dims:
            raise UnsupportedOpError(f"{self.path}: input '{inp.name}' is a scalar")
        batched = len(dims) > 1 and (isinstance(dims[0], str) or dims[0] == 1)
        rest = dims[1:] if batched else dims
        if self.user_shape is not None:
            if len(self.user_shape) != len(rest) or any(
                isinstance(d, int) and d != u for d, u in zip(rest, self.user_shape)
            ):
                raise InputError(
                    f"{self.path}: input_shape {self.user_shape} does not match the model input {dims}"
                )
            return dims, _Dyn(self.user_shape, batched)
        if any(isinstance(d, str) for d in rest):
            raise UnsupportedOpError(
                f"{self.path}: input '{inp.name}' has dynamic dimensions {dims}; pass input_shape to fix them"
            )
        return dims, _Dyn(tuple(int(d) for d in rest), batched)

    # -------------------------------------------------------------------------------- dispatch
    def _node(self, node: Any) -> None:
        from . import onnx_qoperator  # quantized ops (QOperator, contrib Q/DQ, slack): see that module

        if onnx_qoperator.claims(self, node):
            onnx_qoperator.handle(self, node)
            return
        ins = list(node.input)
        if node.domain not in ("", "ai.onnx"):
            raise self.unsupported(node, f"custom op domain '{node.domain}' is not supported")
        missing = [x for x in ins if x and x not in self.consts and x != self.head]
        dyn_ins = [x for x in ins if x and x not in self.consts]
        if not dyn_ins:
            self._const_node(node)
            return
        if missing:
            x = missing[0]
            if self._is_graph_value(x):
                raise self.unsupported(
                    node, f"tensor '{x}' is used by more than one node (branching graphs are not supported)"
                )
            raise self.bad(node, f"input '{x}' is not defined by any node or initializer")
        if len(dyn_ins) > 1:
            raise self.unsupported(node, "both operands depend on the input (only chains of layers are supported)")
        dyn = self.dyn
        assert dyn is not None
        if dyn.quant is not None and node.op_type != "DequantizeLinear":
            raise self.unsupported(node, "consumes an integer QuantizeLinear output (only Q->DQ pairs are supported)")
        if dyn.softmax and node.op_type not in ("Identity", "Dropout"):
            raise UnsupportedOpError(
                f"{self.path}: Softmax in the middle of the network (before {node.op_type} node '{node.name}'); "
                "only a trailing Softmax is supported"
            )
        handler = _DYNAMIC_OPS.get(node.op_type)
        if handler is None:
            raise self.unsupported(node, f"operator {node.op_type} is not supported")
        extra = [o for o in node.output[1:] if o]
        if extra and node.op_type not in ("Dropout", "BatchNormalization"):
            raise self.unsupported(node, "multiple outputs are not supported")
        try:
            handler(self, node, dyn)
        except InputError as exc:
            if str(exc).startswith(str(self.path)):
                raise
            raise self.unsupported(node, str(exc)) from None
        self.head = node.output[0]

    def _is_graph_value(self, name: str) -> bool:
        return any(name in n.output for n in self.graph.node) or any(name == i.name for i in self.graph.input)

    def _const_node(self, node: Any) -> None:
        fn = _CONST_OPS.get(node.op_type)
        if fn is None:
            raise self.unsupported(node, f"operator {node.op_type} on constants is not supported")
        try:
            values = fn(self, node)
        except (InputError, NotImplementedError):
            raise
        except Exception as exc:
            raise self.bad(node, f"cannot evaluate on its constant inputs ({_short(exc)})") from None
        if not isinstance(values, tuple):
            values = (values,)
        for name, val in zip(node.output, values):
            if name:
                arr, typ = val if isinstance(val, tuple) else (val, None)
                self._set_const(name, np.asarray(arr), typ)

    # -------------------------------------------------------------------------------- helpers
    def attrs(self, node: Any) -> dict[str, Any]:
        onnx = _onnx()
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node: Any, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.unsupported(node, f"{what} '{name}' must be a constant")
        return self.consts[name]

    def emit(self, layer: Layer) -> None:
        dyn = self.dyn
        assert dyn is not None
        self.layers.append(layer)
        dyn.shape = tuple(layer.output_shape(dyn.shape))

    def per_sample_const(self, node: Any, c: np.ndarray, dyn: _Dyn) -> np.ndarray:
        """A constant operand of an elementwise op, as an array broadcastable to the per-sample shape."""
        c = np.asarray(c, dtype=np.float64)
        if c.ndim > dyn.rank:
            raise self.unsupported(node, f"constant of shape {c.shape} would broadcast the tensor to a higher rank")
        if dyn.batched and c.ndim == dyn.rank:
            if c.shape[0] != 1:
                raise self.unsupported(node, f"constant of shape {c.shape} varies along the batch axis")
            c = c.reshape(c.shape[1:])
        try:
            b = np.broadcast_shapes(c.shape, dyn.shape)
        except ValueError:
            raise self.bad(node, f"constant of shape {c.shape} does not broadcast to {dyn.shape}") from None
        if tuple(b) != dyn.shape:
            raise self.unsupported(node, f"constant of shape {c.shape} would change the tensor shape {dyn.shape}")
        return c

    def to_batched(self, node: Any, dyn: _Dyn) -> None:
        """Ops that need a batch axis: an unbatched tensor with leading dim 1 is read as batch 1."""
        if dyn.batched:
            return
        if len(dyn.shape) >= 2 and dyn.shape[0] == 1:
            self.emit(Reshape(dyn.shape[1:]))
            dyn.batched = True
            return
        raise self.unsupported(node, f"needs a leading batch axis; the tensor has shape {list(dyn.shape)}")

    def reshape_to(self, node: Any, dyn: _Dyn, full: Sequence[int], keep_batch: bool) -> None:
        """Reshape to the ONNX-level shape `full` (with the batch axis first when `keep_batch`)."""
        target = tuple(int(s) for s in (full[1:] if keep_batch else full))
        if int(np.prod(target)) != int(np.prod(dyn.shape)):
            raise self.bad(node, f"cannot reshape {list(dyn.shape)} to {list(target)}")
        if target != dyn.shape:
            self.emit(Reshape(target))
        dyn.batched = keep_batch

    def axis(self, node: Any, axis: int, rank: int) -> int:
        a = axis + rank if axis < 0 else axis
        if not 0 <= a < rank:
            raise self.bad(node, f"axis {axis} out of range for rank {rank}")
        return a


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0][:200]}" if msg else type(exc).__name__


def _pads(r: _Reader, node: Any, at: dict[str, Any], kernel: Sequence[int], strides: Sequence[int],
          dilations: Sequence[int], hw: Sequence[int]) -> tuple[int, int]:
    """Symmetric (pad_h, pad_w) from `pads` / `auto_pad`; asymmetric padding is unsupported."""
    auto = at.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else str(auto)
    if auto in ("NOTSET", ""):
        pads = list(at.get("pads", [0, 0, 0, 0]))
        if len(pads) != 4:
            raise r.unsupported(node, f"pads {pads} are not 2-D")
    elif auto == "VALID":
        pads = [0, 0, 0, 0]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0, 0, 0, 0]
        for i in range(2):
            eff = (kernel[i] - 1) * dilations[i] + 1
            out = -(-hw[i] // strides[i])
            total = max((out - 1) * strides[i] + eff - hw[i], 0)
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads[i], pads[i + 2] = lo, total - lo
    else:
        raise r.unsupported(node, f"auto_pad={auto} is not supported")
    if pads[0] != pads[2] or pads[1] != pads[3]:
        raise r.unsupported(node, f"asymmetric padding {pads} is not supported")
    return int(pads[0]), int(pads[1])


# ------------------------------------------------------------------------------------------ dynamic ops


def _op_identity(r: _Reader, node: Any, dyn: _Dyn) -> None:
    if node.op_type == "Dropout" and len(node.input) > 2 and node.input[2]:
        training = r.const(node, node.input[2], "training_mode")
        if bool(np.asarray(training).reshape(-1)[0]):
            raise r.unsupported(node, "training_mode=1 (inference only)")


def _op_relu(r: _Reader, node: Any, dyn: _Dyn) -> None:
    r.emit(ReLU())


def _right_matmul(r: _Reader, node: Any, dyn: _Dyn, w: np.ndarray) -> None:
    """x @ W on the last axis: Dense(W^T) for a flat tensor, kron(I_k, W^T) on the flattened tensor else."""
    n, m = w.shape
    if not dyn.shape or dyn.shape[-1] != n:
        raise r.bad(node, f"cannot multiply a tensor of shape {list(dyn.shape)} by a {n}x{m} matrix")
    if len(dyn.shape) == 1:
        r.emit(Dense(np.ascontiguousarray(w.T), np.zeros(m)))
        return
    lead = dyn.shape[:-1]
    k = int(np.prod(lead))
    if (k * n) * (k * m) > _MAX_KRON:
        raise r.unsupported(node, f"MatMul over a tensor of shape {list(dyn.shape)} is too large to flatten")
    r.emit(Reshape((-1,)))
    r.emit(Dense(np.kron(np.eye(k), w.T), np.zeros(k * m)))
    r.emit(Reshape(tuple(lead) + (m,)))


def _left_matmul(r: _Reader, node: Any, dyn: _Dyn, w: np.ndarray) -> None:
    """W @ x: on a 1-D unbatched x it is Dense(W); on (..., n, k) it is kron(I, W, I_k) when flattened."""
    m, n = w.shape
    if not dyn.batched and len(dyn.shape) == 1:
        if dyn.shape[0] != n:
            raise r.bad(node, f"cannot multiply a {m}x{n} matrix by a vector of length {dyn.shape[0]}")
        r.emit(Dense(np.ascontiguousarray(w), np.zeros(m)))
        return
    if len(dyn.shape) < 2:
        raise r.unsupported(node, "W @ x with x batched and 1-D contracts over the batch axis")
    lead, (n2, k) = dyn.shape[:-2], dyn.shape[-2:]
    if n2 != n:
        raise r.bad(node, f"cannot multiply a {m}x{n} matrix by a tensor of shape {list(dyn.shape)}")
    j = int(np.prod(lead)) if lead else 1
    if (j * n * k) * (j * m * k) > _MAX_KRON:
        raise r.unsupported(node, f"MatMul over a tensor of shape {list(dyn.shape)} is too large to flatten")
    big = np.kron(np.eye(j), np.kron(w, np.eye(k)))
    r.emit(Reshape((-1,)))
    r.emit(Dense(big, np.zeros(big.shape[0])))
    r.emit(Reshape(tuple(lead) + (m, k)))


def _op_matmul(r: _Reader, node: Any, dyn: _Dyn) -> None:
    a, b = node.input[0], node.input[1]
    if a == r.head:
        w = np.asarray(r.const(node, b, "weight"), dtype=np.float64)
        if w.ndim != 2:
            raise r.unsupported(node, f"weight of shape {list(w.shape)} is not a matrix")
        _right_matmul(r, node, dyn, w)
    else:
        w = np.asarray(r.const(node, a, "weight"), dtype=np.float64)
        if w.ndim != 2:
            raise r.unsupported(node, f"weight of shape {list(w.shape)} is not a matrix")
        _left_matmul(r, node, dyn, w)


def _op_gemm(r: _Reader, node: Any, dyn: _Dyn) -> None:
    """Y = alpha * A' B' + beta * C (A' = A^T if transA, B' = B^T if transB)."""
    at = r.attrs(node)
    alpha, beta = float(at.get("alpha", 1.0)), float(at.get("beta", 1.0))
    ta, tb = int(at.get("transA", 0)), int(at.get("transB", 0))
    if node.input[0] == r.head:
        if ta:
            raise r.unsupported(node, "transA=1 on the input-dependent operand")
        if dyn.rank != 2:
            raise r.bad(node, f"Gemm needs a 2-D operand, got rank {dyn.rank}")
        b = np.asarray(r.const(node, node.input[1], "weight"), dtype=np.float64)
        w = (b.T if tb else b) * alpha
        if w.ndim != 2:
            raise r.bad(node, f"weight of shape {list(b.shape)} is not a matrix")
        _right_matmul(r, node, dyn, w)
    else:
        if tb:
            raise r.unsupported(node, "transB=1 on the input-dependent operand")
        if dyn.rank != 2 or dyn.batched:
            raise r.unsupported(node, "A @ x with x batched contracts over the batch axis")
        a = np.asarray(r.const(node, node.input[0], "weight"), dtype=np.float64)
        _left_matmul(r, node, dyn, (a.T if ta else a) * alpha)
    if len(node.input) > 2 and node.input[2]:
        c = np.asarray(r.const(node, node.input[2], "bias"), dtype=np.float64) * beta
        c = r.per_sample_const(node, c, dyn)
        r.emit(ElementwiseAffine(np.ones(()), c))


def _op_arith(r: _Reader, node: Any, dyn: _Dyn) -> None:
    op = node.op_type
    if op == "Neg":
        r.emit(ElementwiseAffine(-np.ones(()), np.zeros(())))
        return
    x_first = node.input[0] == r.head
    c = r.per_sample_const(node, r.const(node, node.input[1 if x_first else 0], "operand"), dyn)
    one, zero = np.ones(()), np.zeros(())
    if op == "Add":
        layer = ElementwiseAffine(one, c)
    elif op == "Sub":
        layer = ElementwiseAffine(one, -c) if x_first else ElementwiseAffine(-one, c)
    elif op == "Mul":
        layer = ElementwiseAffine(c, zero)
    else:  # Div
        if not x_first:
            raise r.unsupported(node, "division by an input-dependent tensor is not linear")
        if np.any(c == 0):
            raise r.bad(node, "division by zero")
        layer = ElementwiseAffine(1.0 / c, zero)
    r.emit(layer)


def _op_batchnorm(r: _Reader, node: Any, dyn: _Dyn) -> None:
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per channel (ONNX axis 1); eval statistics."""
    at = r.attrs(node)
    if int(at.get("training_mode", 0)):
        raise r.unsupported(node, "training_mode=1 (inference statistics only)")
    if any(o for o in node.output[1:]):
        raise r.unsupported(node, "running statistics outputs (training mode) are not supported")
    gamma, beta, mean, var = (np.asarray(r.const(node, x, "parameter"), dtype=np.float64).reshape(-1)
                              for x in node.input[1:5])
    eps = float(at.get("epsilon", 1e-5))
    if np.any(var + eps <= 0):
        raise r.bad(node, "variance + epsilon is not positive")
    scale = gamma / np.sqrt(var + eps)
    shift = beta - mean * scale
    ch_axis = 1 - int(dyn.batched)
    if len(dyn.shape) <= ch_axis:
        raise r.unsupported(node, f"no channel axis in a tensor of shape {list(dyn.shape)}")
    c = dyn.shape[ch_axis]
    if scale.size != c:
        raise r.bad(node, f"{scale.size} parameters for {c} channels")
    bshape = [1] * len(dyn.shape)
    bshape[ch_axis] = c
    r.emit(ElementwiseAffine(scale.reshape(bshape), shift.reshape(bshape)))


def _op_conv(r: _Reader, node: Any, dyn: _Dyn) -> None:
    r.to_batched(node, dyn)
    at = r.attrs(node)
    w = np.asarray(r.const(node, node.input[1], "weight"), dtype=np.float64)
    if w.ndim != 4 or len(dyn.shape) != 3:
        raise r.unsupported(node, f"only 2-D convolutions are supported (weight {list(w.shape)})")
    bias = (np.asarray(r.const(node, node.input[2], "bias"), dtype=np.float64)
            if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0]))
    kernel = list(at.get("kernel_shape", w.shape[2:]))
    if list(kernel) != list(w.shape[2:]):
        raise r.bad(node, f"kernel_shape {kernel} does not match the weight {list(w.shape)}")
    strides = list(at.get("strides", [1, 1]))
    dilations = list(at.get("dilations", [1, 1]))
    pad = _pads(r, node, at, kernel, strides, dilations, dyn.shape[1:])
    r.emit(Conv2d(w, bias, tuple(strides), pad, tuple(dilations), int(at.get("group", 1))))


def _op_avgpool(r: _Reader, node: Any, dyn: _Dyn) -> None:
    r.to_batched(node, dyn)
    if len(dyn.shape) != 3:
        raise r.unsupported(node, f"only 2-D pooling is supported (tensor {list(dyn.shape)})")
    if node.op_type == "GlobalAveragePool":
        r.emit(AvgPool2d(dyn.shape[1:], dyn.shape[1:]))
        return
    at = r.attrs(node)
    kernel = list(at["kernel_shape"])
    strides = list(at.get("strides", [1, 1]))
    if any(d != 1 for d in at.get("dilations", [1, 1])):
        raise r.unsupported(node, "dilated pooling is not supported")
    pad = _pads(r, node, at, kernel, strides, [1, 1], dyn.shape[1:])
    if any(pad) and not int(at.get("count_include_pad", 0)):
        raise r.unsupported(node, "padded average pooling with count_include_pad=0 is not supported")
    layer = AvgPool2d(tuple(kernel), tuple(strides), pad)
    if int(at.get("ceil_mode", 0)):
        h, w = dyn.shape[1:]
        ceil = [-(-(n + 2 * p - k) // s) + 1 for n, p, k, s in zip((h, w), pad, kernel, strides)]
        if tuple(ceil) != layer.output_shape(dyn.shape)[1:]:
            raise r.unsupported(node, "ceil_mode=1 changes the output size; not supported")
    r.emit(layer)


def _op_flatten(r: _Reader, node: Any, dyn: _Dyn) -> None:
    a = r.axis(node, int(r.attrs(node).get("axis", 1)), dyn.rank + 1)
    if dyn.batched:
        if a == 0 or int(np.prod(dyn.shape[: a - 1])) != 1:
            raise r.unsupported(node, f"Flatten(axis={a}) merges the batch axis into the features")
        r.reshape_to(node, dyn, [0, int(np.prod(dyn.shape))], keep_batch=True)
    else:
        full = dyn.shape
        r.reshape_to(node, dyn, [int(np.prod(full[:a])), int(np.prod(full[a:]))], keep_batch=False)


def _op_reshape(r: _Reader, node: Any, dyn: _Dyn) -> None:
    """Reshape to a constant shape; 0 copies a dimension (unless allowzero), -1 is inferred.

    On a batched tensor the first target entry must keep the batch axis (0, -1 or 1); any other first
    entry folds the batch axis into the features, which is only valid for a batch of one, so the result
    is read as unbatched.
    """
    raw = [int(v) for v in np.asarray(r.const(node, node.input[1], "shape")).reshape(-1)]
    allowzero = int(r.attrs(node).get("allowzero", 0))
    if allowzero and 0 in raw:
        raise r.unsupported(node, "reshape to an empty tensor")
    full = ((1,) if dyn.batched else ()) + tuple(dyn.shape)  # a batch of one stands in for the batch axis
    target = [full[i] if v == 0 and i < len(full) else v for i, v in enumerate(raw)]
    total = int(np.prod(dyn.shape))
    if dyn.batched and raw and raw[0] in (0, 1, -1):
        rest = target[1:]
        if raw[0] == -1 and (-1 in rest or int(np.prod(rest)) != total):
            raise r.unsupported(node, f"reshape to {raw} moves features into the batch axis")
        shape = Reshape(tuple(rest)).output_shape(dyn.shape)
        r.reshape_to(node, dyn, [0, *shape], keep_batch=True)
        return
    shape = Reshape(tuple(target)).output_shape(full)
    r.reshape_to(node, dyn, list(shape), keep_batch=False)


def _axes_input(r: _Reader, node: Any) -> list[int] | None:
    at = r.attrs(node)
    if "axes" in at:
        return [int(a) for a in at["axes"]]
    if len(node.input) > 1 and node.input[1]:
        return [int(a) for a in np.asarray(r.const(node, node.input[1], "axes")).reshape(-1)]
    return None


def _op_squeeze(r: _Reader, node: Any, dyn: _Dyn) -> None:
    axes = _axes_input(r, node)
    full = ((1,) if dyn.batched else ()) + tuple(dyn.shape)
    if node.op_type == "Squeeze":
        if axes is None:
            if dyn.batched:
                raise r.unsupported(node, "Squeeze without axes may remove the batch axis")
            axes = [i for i, d in enumerate(full) if d == 1]
        axes = [r.axis(node, a, len(full)) for a in axes]
        if dyn.batched and 0 in axes:
            raise r.unsupported(node, "squeezes the batch axis")
        if any(full[a] != 1 for a in axes):
            raise r.bad(node, f"cannot squeeze axes {axes} of shape {list(full)}")
        new = [d for i, d in enumerate(full) if i not in axes]
    else:
        if axes is None:
            raise r.bad(node, "Unsqueeze needs axes")
        rank = len(full) + len(axes)
        axes = sorted(r.axis(node, a, rank) for a in axes)
        if dyn.batched and 0 in axes:
            raise r.unsupported(node, "inserts an axis before the batch axis")
        it = iter(full)
        new = [1 if i in axes else next(it) for i in range(rank)]
    r.reshape_to(node, dyn, new, keep_batch=dyn.batched)


def _op_transpose(r: _Reader, node: Any, dyn: _Dyn) -> None:
    full = ((1,) if dyn.batched else ()) + tuple(dyn.shape)
    perm = list(r.attrs(node).get("perm", list(range(len(full)))[::-1]))
    if sorted(perm) != list(range(len(full))):
        raise r.bad(node, f"perm {perm} is not a permutation of rank {len(full)}")
    if dyn.batched and perm[0] != 0:
        raise r.unsupported(node, "moves the batch axis")
    big = [p for p in perm if full[p] != 1]
    if big != sorted(big):
        raise r.unsupported(node, f"a transpose that reorders data (perm {perm}) is not supported")
    r.reshape_to(node, dyn, [full[p] for p in perm], keep_batch=dyn.batched)


def _op_softmax(r: _Reader, node: Any, dyn: _Dyn) -> None:
    at = r.attrs(node)
    default = -1 if r.opset >= 13 else 1
    axis = r.axis(node, int(at.get("axis", default)), dyn.rank)
    if len(dyn.shape) != 1 or axis != dyn.rank - 1:
        raise r.unsupported(node, f"Softmax over axis {axis} of a tensor of shape {list(dyn.shape)}")
    dyn.softmax = True


def _quant_params(r: _Reader, node: Any, dyn: _Dyn) -> tuple[np.ndarray, np.ndarray, int, int]:
    at = r.attrs(node)
    if int(at.get("block_size", 0)):
        raise r.unsupported(node, "blocked quantization is not supported")
    scale = np.asarray(r.const(node, node.input[1], "scale"), dtype=np.float64)
    if len(node.input) > 2 and node.input[2]:
        zp_name = node.input[2]
        zp = np.asarray(r.const(node, zp_name, "zero point"))
        typ = r.const_types.get(zp_name) or _onnx_type_of(zp)
    else:
        zp = np.zeros(scale.shape)
        typ = int(at.get("output_dtype", 0)) or 2  # uint8 by default
    if typ not in _QUANT_TYPES:
        raise r.unsupported(node, f"quantization to ONNX element type {typ} is not supported")
    axis = int(at.get("axis", 1))
    return scale, np.asarray(zp, dtype=np.float64), axis, typ


def _onnx_type_of(a: np.ndarray) -> int:
    return {np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.uint16): 4, np.dtype(np.int16): 5}.get(a.dtype, 0)


def _op_quantize(r: _Reader, node: Any, dyn: _Dyn) -> None:
    dyn.quant = _quant_params(r, node, dyn)


def _op_dequantize(r: _Reader, node: Any, dyn: _Dyn) -> None:
    """Q then DQ with the same parameters = fake quantization of the activation."""
    if dyn.quant is None:
        raise r.unsupported(node, "dequantizes an input-dependent tensor that is not a QuantizeLinear output")
    q_scale, q_zp, q_axis, typ = dyn.quant
    scale, zp, axis, _ = _quant_params(r, node, dyn)
    if not (np.array_equal(q_scale, scale) and np.array_equal(q_zp, zp)) or (scale.size > 1 and axis != q_axis):
        raise r.unsupported(node, "QuantizeLinear and DequantizeLinear use different parameters (requantization)")
    dyn.quant = None
    bits, signed = _QUANT_TYPES[typ]
    if scale.size > 1 or zp.size > 1:
        a = r.axis(node, axis, dyn.rank) - int(dyn.batched)
        if a < 0:
            raise r.unsupported(node, "quantization parameters along the batch axis")
        c = dyn.shape[a]
        shape = [1] * len(dyn.shape)
        shape[a] = c
        scale = np.broadcast_to(scale.reshape(-1), (c,)).reshape(shape)
        zp = np.broadcast_to(zp.reshape(-1), (c,)).reshape(shape)
    else:
        scale, zp = scale.reshape(()), zp.reshape(())
    r.emit(QuantizeActivation(scale, zp, bits=bits, signed=signed, rounding="half_even"))


_DYNAMIC_OPS: dict[str, Callable[[_Reader, Any, _Dyn], None]] = {
    "Identity": _op_identity,
    "Dropout": _op_identity,
    "Relu": _op_relu,
    "MatMul": _op_matmul,
    "Gemm": _op_gemm,
    "Add": _op_arith,
    "Sub": _op_arith,
    "Mul": _op_arith,
    "Div": _op_arith,
    "Neg": _op_arith,
    "BatchNormalization": _op_batchnorm,
    "Conv": _op_conv,
    "AveragePool": _op_avgpool,
    "GlobalAveragePool": _op_avgpool,
    "Flatten": _op_flatten,
    "Reshape": _op_reshape,
    "Squeeze": _op_squeeze,
    "Unsqueeze": _op_squeeze,
    "Transpose": _op_transpose,
    "Softmax": _op_softmax,
    "QuantizeLinear": _op_quantize,
    "DequantizeLinear": _op_dequantize,
}


# ------------------------------------------------------------------------------------------ constant ops


def _c(r: _Reader, node: Any, i: int) -> np.ndarray:
    return r.consts[node.input[i]]


def _const_constant(r: _Reader, node: Any) -> Any:
    onnx = _onnx()
    for a in node.attribute:
        if a.name == "value":
            return onnx.numpy_helper.to_array(a.t), a.t.data_type
        if a.name in ("value_float", "value_floats"):
            return np.asarray(onnx.helper.get_attribute_value(a), dtype=np.float32)
        if a.name in ("value_int", "value_ints"):
            return np.asarray(onnx.helper.get_attribute_value(a), dtype=np.int64)
    raise r.unsupported(node, "Constant without a tensor value")


def _const_dequantize(r: _Reader, node: Any) -> np.ndarray:
    """y = scale * (q - zero_point) in float64: exact for 8-bit q and float32 scales."""
    q = np.asarray(_c(r, node, 0))
    at = r.attrs(node)
    if int(at.get("block_size", 0)):
        raise r.unsupported(node, "blocked quantization is not supported")
    scale = np.asarray(_c(r, node, 1), dtype=np.float64)
    zp = np.asarray(_c(r, node, 2), dtype=np.float64) if len(node.input) > 2 and node.input[2] else np.zeros(())
    if scale.size > 1 or zp.size > 1:
        a = r.axis(node, int(at.get("axis", 1)), q.ndim)
        shape = [1] * q.ndim
        shape[a] = q.shape[a]
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    return (q.astype(np.float64) - zp) * scale


def _const_quantize(r: _Reader, node: Any) -> Any:
    """q = saturate(round_half_even(x / scale) + zero_point), computed in the precision of x (as ONNX)."""
    x = np.asarray(_c(r, node, 0))
    at = r.attrs(node)
    scale = np.asarray(_c(r, node, 1)).astype(x.dtype if x.dtype.kind == "f" else np.float32)
    if len(node.input) > 2 and node.input[2]:
        zp = np.asarray(_c(r, node, 2))
        typ = r.const_types.get(node.input[2]) or _onnx_type_of(zp)
    else:
        typ = int(at.get("output_dtype", 0)) or 2
        zp = np.zeros((), dtype=np.uint8)
    if typ not in _QUANT_TYPES:
        raise r.unsupported(node, f"quantization to ONNX element type {typ} is not supported")
    if scale.size > 1 or zp.size > 1:
        a = r.axis(node, int(at.get("axis", 1)), x.ndim)
        shape = [1] * x.ndim
        shape[a] = x.shape[a]
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    bits, signed = _QUANT_TYPES[typ]
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    q = np.clip(np.round(x / scale) + zp.astype(np.float64), lo, hi)
    return q.astype(np.int64), typ


def _const_reshape(r: _Reader, node: Any) -> np.ndarray:
    x = _c(r, node, 0)
    shape = [int(v) for v in np.asarray(_c(r, node, 1)).reshape(-1)]
    if not int(r.attrs(node).get("allowzero", 0)):
        shape = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return x.reshape(shape)


def _const_squeeze(r: _Reader, node: Any) -> np.ndarray:
    x = _c(r, node, 0)
    axes = _axes_input(r, node)
    if node.op_type == "Squeeze":
        return np.squeeze(x) if axes is None else np.squeeze(x, axis=tuple(axes))
    rank = x.ndim + len(axes or [])
    for a in sorted(r.axis(node, a, rank) for a in axes or []):
        x = np.expand_dims(x, a)
    return x


def _const_flatten(r: _Reader, node: Any) -> np.ndarray:
    x = _c(r, node, 0)
    a = r.axis(node, int(r.attrs(node).get("axis", 1)), x.ndim + 1)
    return x.reshape(int(np.prod(x.shape[:a])), -1)


def _const_binary(fn: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[_Reader, Any], np.ndarray]:
    return lambda r, node: fn(_c(r, node, 0), _c(r, node, 1))


def _const_cast(r: _Reader, node: Any) -> Any:
    onnx = _onnx()
    to = int(r.attrs(node)["to"])
    dtype = onnx.helper.tensor_dtype_to_np_dtype(to)
    return _c(r, node, 0).astype(dtype), to


_CONST_OPS: dict[str, Callable[[_Reader, Any], Any]] = {
    "Constant": _const_constant,
    "Identity": lambda r, n: _c(r, n, 0),
    "Cast": _const_cast,
    "Transpose": lambda r, n: np.transpose(_c(r, n, 0), r.attrs(n).get("perm")),
    "Reshape": _const_reshape,
    "Flatten": _const_flatten,
    "Squeeze": _const_squeeze,
    "Unsqueeze": _const_squeeze,
    "Concat": lambda r, n: np.concatenate([r.consts[i] for i in n.input], axis=int(r.attrs(n)["axis"])),
    "Add": _const_binary(np.add),
    "Sub": _const_binary(np.subtract),
    "Mul": _const_binary(np.multiply),
    "Div": _const_binary(np.divide),
    "Neg": lambda r, n: -_c(r, n, 0),
    "DequantizeLinear": _const_dequantize,
    "QuantizeLinear": _const_quantize,
}


def _read_meta_props(props: dict[str, str]) -> tuple[tuple[np.ndarray, np.ndarray] | None, NnetNormalization | None]:
    """The input domain and .nnet normalization simcert stores in `metadata_props` (None when absent)."""
    domain = nnet = None
    try:
        if "simcert.input_domain" in props:
            lo, hi = json.loads(props["simcert.input_domain"])
            domain = (np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))
        if "simcert.nnet" in props:
            d = json.loads(props["simcert.nnet"])
            nnet = NnetNormalization(
                *(np.asarray(d[k], dtype=np.float64) for k in ("input_min", "input_max", "input_mean", "input_range")),
                output_mean=float(d["output_mean"]),
                output_range=float(d["output_range"]),
            )
    except (ValueError, KeyError, TypeError):
        return None, None
    return domain, nnet


def load_onnx(path: str | os.PathLike, input_shape: Sequence[int] | None = None, name: str | None = None) -> Network:
    """Read an ONNX model into a `Network` (see the module docstring for the supported ops and shapes).

    Raises `ModelFormatError` for unreadable/truncated files and NaN/inf constants, `UnsupportedOpError`
    naming the node for anything the IR cannot represent exactly.
    """
    from .io import read_model_bytes

    onnx = _onnx()
    p = Path(path)
    data = read_model_bytes(p)
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:
        raise ModelFormatError(f"{p}: not a valid ONNX file ({_short(exc)})") from None
    if not model.HasField("graph") or not model.graph.node or not model.graph.output:
        raise ModelFormatError(f"{p}: not a valid ONNX model (no graph, nodes or outputs)")
    if any(t.data_location == t.EXTERNAL for t in model.graph.initializer):
        try:
            from onnx.external_data_helper import load_external_data_for_model

            load_external_data_for_model(model, str(p.parent))
        except Exception as exc:
            raise ModelFormatError(f"{p}: cannot read external weight data ({_short(exc)})") from None
    return _Reader(model, str(p), input_shape, name).read()


# ================================================================================================ writing


class _Writer:
    def __init__(self, net: Network, dtype: Any) -> None:
        onnx = _onnx()
        self.onnx = onnx
        self.net = net
        self.np_dtype = np.dtype(dtype)
        if self.np_dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise InputError(f"ONNX export supports dtype float32 or float64, not {self.np_dtype}")
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(self.np_dtype)
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self.count = 0
        self.opset = 13

    def const(self, arr: Any, hint: str, dtype: Any = None) -> str:
        name = f"{hint}_{len(self.inits)}"
        a = np.asarray(arr, dtype=dtype or self.np_dtype)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            raise InputError(f"{self.net.name}: a parameter overflows {a.dtype}; write with dtype=float64")
        self.inits.append(self.onnx.numpy_helper.from_array(a, name))
        return name

    def node(self, op: str, inputs: list[str], **attrs: Any) -> str:
        self.count += 1
        out = f"{op.lower()}_{self.count}"
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=f"{op}_{self.count}", **attrs))
        return out

    def build(self) -> Any:
        helper = self.onnx.helper
        net = self.net
        meta = net.meta if net.meta.get("format") == "onnx" else {}
        in_name = str(meta.get("onnx_input_name", "input"))
        batched = bool(meta.get("onnx_batched", True))
        dims = meta.get("onnx_input_dims")
        shapes = net.shapes
        flat_mlp = len(net.input_shape) == 1 and all(
            isinstance(l, (Dense, ReLU, Identity, ElementwiseAffine, QuantizeActivation)) for l in net.layers
        )
        # keep the original input dims when they still describe the same number of inputs
        features = list(dims[int(batched):]) if dims else []
        same_size = all(isinstance(d, int) for d in features) and int(np.prod(features)) == net.input_size
        orig = list(dims) if features and same_size else None
        x = in_name
        if not batched and flat_mlp:
            in_dims = orig or [net.input_size]
            if len(in_dims) != 1:
                x = self.node("Reshape", [x, self.const([net.input_size], "shape", np.int64)])
            for layer, s in zip(net.layers, shapes[:-1]):
                if isinstance(layer, Dense):
                    x = self.node("MatMul", [self.const(layer.weight, "W"), x])
                    x = self.node("Add", [x, self.const(layer.bias, "B")])
                else:
                    x = self.layer(layer, s, x, batched=False)
            if net.softmax_output:
                x = self.node("Softmax", [x], axis=-1)
            out_dims: list[Any] = [net.output_size]
        else:
            if batched:
                in_dims = orig or ["N", *net.input_shape]
                if in_dims[1:] != list(net.input_shape):
                    x = self.node("Reshape", [x, self.const([0, *net.input_shape], "shape", np.int64)])
            else:
                in_dims = orig or list(net.input_shape)
                x = self.node("Reshape", [x, self.const([1, *net.input_shape], "shape", np.int64)])
            for layer, s in zip(net.layers, shapes[:-1]):
                x = self.layer(layer, s, x, batched=True)
            if net.softmax_output:
                x = self.node("Softmax", [x], axis=-1)
            if not batched:
                x = self.node("Reshape", [x, self.const([net.output_size], "shape", np.int64)])
                out_dims = [net.output_size]
            else:
                out_dims = [in_dims[0], net.output_size]
        out_name = str(meta.get("onnx_output_name", "output"))
        if out_name == in_name:
            out_name = in_name + "_out"
        self.nodes.append(helper.make_node("Identity", [x], [out_name], name="output"))
        graph = helper.make_graph(
            self.nodes,
            net.name or "network",
            [helper.make_tensor_value_info(in_name, self.elem, in_dims)],
            [helper.make_tensor_value_info(out_name, self.elem, out_dims)],
            self.inits,
        )
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", self.opset)],
            producer_name="simcert",
            ir_version=8 if self.opset <= 15 else 10,
        )
        props = {}
        if net.input_domain is not None:
            props["simcert.input_domain"] = json.dumps([np.asarray(b).tolist() for b in net.input_domain])
        if net.nnet is not None:
            n = net.nnet
            props["simcert.nnet"] = json.dumps({
                "input_min": np.asarray(n.input_min).tolist(), "input_max": np.asarray(n.input_max).tolist(),
                "input_mean": np.asarray(n.input_mean).tolist(), "input_range": np.asarray(n.input_range).tolist(),
                "output_mean": float(n.output_mean), "output_range": float(n.output_range),
            })
        if props:
            helper.set_model_props(model, props)
        return model

    def layer(self, layer: Layer, shape: Shape, x: str, batched: bool) -> str:
        if isinstance(layer, Dense):
            return self.node("Gemm", [x, self.const(layer.weight, "W"), self.const(layer.bias, "B")], transB=1)
        if isinstance(layer, Conv2d):
            ph, pw = layer.padding
            return self.node(
                "Conv", [x, self.const(layer.weight, "W"), self.const(layer.bias, "B")],
                strides=list(layer.stride), pads=[ph, pw, ph, pw], dilations=list(layer.dilation),
                group=int(layer.groups), kernel_shape=list(layer.weight.shape[2:]),
            )
        if isinstance(layer, AvgPool2d):
            ph, pw = layer.padding
            return self.node("AveragePool", [x], kernel_shape=list(layer.kernel), strides=list(layer.stride),
                             pads=[ph, pw, ph, pw], count_include_pad=1)
        if isinstance(layer, Reshape):
            target = list(layer.output_shape(shape))
            return self.node("Reshape", [x, self.const([0, *target] if batched else target, "shape", np.int64)])
        if isinstance(layer, ElementwiseAffine):
            if not np.all(layer.scale == 1.0):
                x = self.node("Mul", [x, self.const(layer.scale, "scale")])
            if not np.all(layer.shift == 0.0):
                x = self.node("Add", [x, self.const(layer.shift, "shift")])
            return x
        if isinstance(layer, Identity):
            return x
        if isinstance(layer, ReLU):
            return self.node("Relu", [x])
        if isinstance(layer, QuantizeActivation):
            return self.quantize(layer, shape, x, batched)
        raise InputError(f"cannot write layer {layer.describe()} to ONNX")

    def quantize(self, layer: QuantizeActivation, shape: Shape, x: str, batched: bool) -> str:
        if self.np_dtype != np.dtype(np.float32):
            raise InputError("activation quantization can only be written with dtype=float32 (ONNX QuantizeLinear)")
        if layer.rounding != "half_even":
            raise InputError("ONNX QuantizeLinear rounds half to even; a half_up quantizer cannot be written")
        key = (layer.bits, layer.signed)
        typ = next((t for t, v in _QUANT_TYPES.items() if v == key), None)
        if typ is None:
            raise InputError(f"no ONNX integer type for {layer.bits}-bit activations")
        if layer.bits != 8:
            self.opset = max(self.opset, 21)
        zp = np.asarray(layer.zero_point)
        if not np.array_equal(zp, np.round(zp)) or np.any(zp < layer.qmin) or np.any(zp > layer.qmax):
            raise InputError(f"activation zero point is not an integer in [{layer.qmin}, {layer.qmax}]")
        scale = np.asarray(layer.scale)  # rounded to float32, the only scale type ONNX QuantizeLinear takes here
        attrs: dict[str, Any] = {}
        if scale.size == 1 and zp.size == 1:
            scale, zp = scale.reshape(()), zp.reshape(())
        if scale.size > 1 or zp.size > 1:
            full = tuple(np.broadcast_shapes(scale.shape, zp.shape, tuple(shape)))
            sc, zf = np.broadcast_to(scale, full), np.broadcast_to(zp, full)
            varying = [i for i in range(len(full)) if full[i] > 1 and (
                np.ptp(sc, axis=i).any() or np.ptp(zf, axis=i).any())]
            if len(varying) > 1:
                raise InputError("activation quantization parameters vary along more than one axis")
            a = varying[0] if varying else 0
            idx = tuple(slice(None) if i == a else 0 for i in range(len(full)))
            scale, zp = sc[idx].copy(), zf[idx].copy()
            attrs["axis"] = a + int(batched)
        s_name = self.const(scale.astype(np.float32), "q_scale", np.float32)
        z_name = f"q_zero_point_{len(self.inits)}"
        flat_zp = zp.astype(np.int64).reshape(-1).tolist()
        self.inits.append(self.onnx.helper.make_tensor(z_name, typ, list(zp.shape), flat_zp))
        q = self.node("QuantizeLinear", [x, s_name, z_name], **attrs)
        return self.node("DequantizeLinear", [q, s_name, z_name], **attrs)


def onnx_model(net: Network, dtype: Any = np.float32) -> Any:
    """`net` as an `onnx.ModelProto` (parameters in `dtype`; see the module docstring for the op mapping)."""
    return _Writer(net, dtype).build()


def onnx_bytes(net: Network, dtype: Any = np.float32) -> bytes:
    """The serialized ONNX model of `net` (what `simcert.network.io.save` writes for `.onnx`)."""
    return onnx_model(net, dtype).SerializeToString()
