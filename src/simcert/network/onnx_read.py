"""ONNX reader for the network IR: `load_onnx` and the graph walker `_Reader` (op handlers in `onnx_ops`).

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
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError, ModelFormatError, UnsupportedOpError
from .layers import Identity, Layer, QuantizeActivation, Reshape, Shape
from .network import Network, NnetNormalization
from .onnx_common import _onnx
from .onnx_ops import _CONST_OPS, _DYNAMIC_OPS

__all__ = ["load_onnx"]


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
        self.int8_weight_codes: list[np.ndarray] = []  # int8 codes of dequantized constant weights (see below)
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
        int8 = [a for k, a in self.consts.items() if self.const_types.get(k) == 3] + self.int8_weight_codes
        warning = _saturation_warning(layers, int8)
        if warning:
            meta["warnings"] = [warning]
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


def _saturation_warning(layers: Sequence[Layer], int8_consts: Sequence[np.ndarray]) -> str | None:
    """A warning when ONNX Runtime may not compute this model's ONNX semantics: 8-bit activations (integer
    kernels) and int8 weight codes beyond +-64. ORT's u8s8 kernels on x86 CPUs without VNNI add pairs of
    products in saturating int16, which codes within +-64 (ORT's `reduce_range`) cannot overflow
    (255 * 128 < 32767); see compress/ort_quant.py for the measurement."""
    act8 = any(isinstance(l, QuantizeActivation) and l.bits == 8 for l in layers)
    codes = [int(np.abs(a.astype(np.int64)).max()) for a in int8_consts if a.ndim >= 2 and a.size]
    if not act8 or not codes or max(codes) <= 64:
        return None
    return (f"8-bit activations with int8 weight codes up to {max(codes)}: ONNX Runtime's integer kernels on x86 "
            "CPUs without VNNI may saturate int16 pair sums and differ from this model's ONNX semantics, which "
            "simcert verifies (quantize with 7-bit codes, e.g. onnxruntime's reduce_range, to avoid it)")


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {msg[0][:200]}" if msg else type(exc).__name__


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
