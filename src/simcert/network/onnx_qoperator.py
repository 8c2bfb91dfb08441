"""Quantized ONNX operators for `onnx_read`'s reader: QOperator graphs and quantizer-made QDQ graphs.

`onnx_read._Reader._node` asks `claims(reader, node)` first and lets `handle(reader, node)` read the nodes
claimed here. A QLinear op is "dequantize the inputs, float op, requantize the output", so it becomes
existing layers. The reader's pending QuantizeLinear (`dyn.quant`: the current tensor holds integers q
with real value scale * (q - zero_point)) is what an integer tensor is:

    QuantizeLinear (ai.onnx or com.microsoft)     -> pending quantization (slack below)
    QLinearMatMul, QGemm (com.microsoft)          -> QuantizeActivation(input), Dense(dequantized W, bias
                                                     C * alpha * a_scale * b_scale), pending(y_scale, y_zp);
                                                     float output when QGemm has no y_scale
    QLinearConv                                   -> QuantizeActivation, Conv2d(dequantized W, B * x_s * w_s),
                                                     pending
    QLinearAdd with one constant operand          -> QuantizeActivation, ElementwiseAffine(1, dequantized B),
                                                     pending
    QLinearAveragePool, QLinearGlobalAveragePool  -> QuantizeActivation, AvgPool2d, pending
    MatMulInteger (static A) -> Cast -> Mul ...   -> QuantizeActivation, ElementwiseAffine(1/a_scale),
                                                     Dense(W - w_zp): the int32 accumulator (q - a_zp) @ (W - w_zp)
    Reshape/Flatten/(Un)Squeeze/Transpose/Identity on a per-tensor quantized tensor: moved before the
                                                     pending quantization (they commute with it)
    DequantizeLinear (ai.onnx or com.microsoft)   -> QuantizeActivation(pending), as in onnx_ops

DynamicQuantizeLinear (run-time scales, `quantize_dynamic`), the other QLinear*/contrib quantized ops and
ConvInteger raise UnsupportedOpError naming the op.

Slack (`QuantizeActivation.slack_steps`, see layers.py). ONNX Runtime does not evaluate the requantization
formula exactly: fused integer kernels compute v = float32(acc) * float32(a_s * b_s / y_s) (about five
float32 roundings, relative error <= 5.01 u, u = 2^-24, acc exact in int32), unfused QDQ graphs evaluate
the float op in float32, and simcert folds a QDQ bias with the float32-rounded bias scale where the kernel
adds the integer bias exactly. Each QuantizeActivation read from a QOperator op, or from a dynamic
QuantizeLinear in a graph with integer (dequantized) weights, gets

    slack_steps = 6 u (2^bits + 1) + 2 gamma_N M / scale + u B / scale,   gamma_N = N u / (1 - N u),

where the first term covers relative float32 errors on the relevant pre-rounding values (|x/scale| <=
2^bits + 1; beyond that both round into the same saturated code), M bounds |affine chain output| from the
previous quantizer's range through |W| and |b| (interval magnitudes; a ReLU in the chain keeps the bound), N is the sum of fan-ins + 2 over
that chain (float32 accumulation, Higham's gamma bound), and B is the largest |bias| of the chain. A Gemm/Conv with dequantized weights but a float bias gets
a_s * max w_s / (2 scale) more: ORT's fusion rounds that bias to int32 on the a_s * w_s grid. When no
quantizer precedes the chain (M unknown) only the first term is used. Graphs written by simcert's own
writer (float weights) get no slack, as before.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import InputError
from .layers import AvgPool2d, Conv2d, Dense, ElementwiseAffine, Layer, QuantizeActivation, ReLU

__all__ = ["claims", "handle", "slack_bound"]

_U = 2.0**-24  # float32 unit roundoff
_MS = "com.microsoft"
_QDQ = ("QuantizeLinear", "DequantizeLinear")
_MOVE = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Transpose", "Identity", "Dropout")
_REJECT = {
    "DynamicQuantizeLinear": "computes the activation scale from each input at run time (dynamic "
                             "quantization): not a fixed quantization grid; quantize statically instead",
    "DynamicQuantizeMatMul": "dynamic quantization is not supported",
    "MatMulIntegerToFloat": "dynamic quantization is not supported",
    "DynamicQuantizeLSTM": "dynamic quantization is not supported",
    "ConvInteger": "integer convolution without requantization is not supported; use QLinearConv (static QOperator)",
    "MatMulNBits": "blocked n-bit weight quantization is not supported",
}
_STATE = "_qop_state"


# ------------------------------------------------------------------------------------------ state


class _State:
    """Per-reader extras: slack of the pending quantization, integer-accumulator tensors, QDQ weights."""

    def __init__(self, r: Any) -> None:
        self.pending_slack = 0.0
        self.int_heads: set[str] = set()  # MatMulInteger outputs (exact integers; a Cast to float is a no-op)
        self.input_shape = tuple(r.dyn.shape) if r.dyn is not None and not r.layers else None
        # made by a quantizer: integer weights (a DequantizeLinear feeding the weight operand of a
        # Gemm/MatMul/Conv: ORT, torch fake-quant export) or QOperator ops
        dq_outputs = {n.output[0] for n in r.graph.node if n.op_type == "DequantizeLinear" and n.output}
        weight_ops = ("Gemm", "MatMul", "Conv")
        self.quantizer_made = any(
            (n.op_type in weight_ops and any(x in dq_outputs for x in n.input[1:])) or n.op_type in _QOPS
            for n in r.graph.node
        )
        # Gemm/Conv with DQ weights and a float bias: ORT's fusion rounds the bias to int32 with scale
        # a_s * w_s (an extra error <= a_s * w_s / 2); output name -> max weight scale
        dq_scale = {n.output[0]: n.input[1] for n in r.graph.node if n.op_type == "DequantizeLinear"
                    and len(n.input) > 1}
        self.float_bias: dict[str, float] = {}
        for n in r.graph.node:
            if (n.op_type in ("Gemm", "Conv") and len(n.input) > 2 and n.input[2] and n.input[2] not in dq_scale
                    and n.input[1] in dq_scale and dq_scale[n.input[1]] in r.consts):
                self.float_bias[n.output[0]] = float(np.max(np.abs(np.asarray(r.consts[dq_scale[n.input[1]]],
                                                                              dtype=np.float64))))


def _emit_pending(r: Any, node: Any, dyn: Any, q_scale: np.ndarray, q_zp: np.ndarray, typ: int) -> None:
    """Emit the pending per-tensor QuantizeLinear as a QuantizeActivation (with its slack) and clear it."""
    bits, signed = _bits(r, node, typ)
    st = _state(r)
    r.emit(QuantizeActivation(np.asarray(q_scale).reshape(()), np.asarray(q_zp).reshape(()), bits=bits,
                              signed=signed, rounding="half_even", slack_steps=st.pending_slack))
    dyn.quant = None
    st.pending_slack = 0.0


def _state(r: Any) -> _State:
    st = r.__dict__.get(_STATE)
    if st is None:
        st = _State(r)
        setattr(r, _STATE, st)
    return st


# ------------------------------------------------------------------------------------------ dispatch


def claims(r: Any, node: Any) -> bool:
    """Whether this module reads `node` (called by onnx_read's reader before its own dispatch)."""
    _state(r)  # created at the first node, while the dynamic tensor is still the network input
    op = node.op_type
    if op in _QOPS or op in _REJECT or (op.startswith("QLinear") and node.domain in ("", "ai.onnx", _MS)):
        return True
    if node.domain == _MS and op in _QDQ:
        return True
    if node.domain not in ("", "ai.onnx"):
        return False
    dynamic = r.head is not None and r.head in node.input
    if not dynamic:
        return False
    if op in _QDQ:
        return True
    dyn = r.dyn
    if op in _MOVE and dyn is not None and dyn.quant is not None:
        return True
    return op == "Cast" and r.head in _state(r).int_heads


def handle(r: Any, node: Any) -> None:
    """Read a claimed node: constant evaluation, or layers for the dynamic tensor (sets `r.head`)."""
    op = node.op_type
    if op in _REJECT:
        raise r.unsupported(node, f"operator {op}: {_REJECT[op]}")
    dyn_ins = [x for x in node.input if x and x not in r.consts]
    if not dyn_ins:
        if op in _QDQ:
            r._const_node(node)
            return
        raise r.unsupported(node, f"quantized operator {op} on constants is not supported")
    for x in dyn_ins:
        if x != r.head:
            if r._is_graph_value(x):
                raise r.unsupported(node, f"tensor '{x}' is used by more than one node (branching graphs are not "
                                          "supported) or both operands depend on the input")
            raise r.bad(node, f"input '{x}' is not defined by any node or initializer")
    if len(dyn_ins) > 1:
        raise r.unsupported(node, "both operands depend on the input (only chains of layers are supported)")
    if r.dyn.softmax and op not in ("Identity", "Dropout"):
        raise r.unsupported(node, "follows a Softmax; only a trailing Softmax is supported")
    fn = _HANDLERS.get(op)
    if fn is None:
        raise r.unsupported(node, f"quantized operator {op} is not supported")
    if len([o for o in node.output if o]) > 1:
        raise r.unsupported(node, "multiple outputs are not supported")
    try:
        fn(r, node, r.dyn)
    except InputError as exc:
        if str(exc).startswith(str(r.path)):
            raise
        raise r.unsupported(node, str(exc)) from None
    r.head = node.output[0]


# ------------------------------------------------------------------------------------------ helpers


def _io() -> Any:
    from . import onnx_ops

    return onnx_ops


def _opt(node: Any, i: int) -> str | None:
    return node.input[i] if len(node.input) > i and node.input[i] else None


def _f64(r: Any, node: Any, i: int, what: str) -> np.ndarray:
    return np.asarray(r.const(node, node.input[i], what), dtype=np.float64)


def _zp(r: Any, node: Any, i: int, default_type: int) -> tuple[np.ndarray, int]:
    """A zero point input (0 of `default_type` when absent) and its ONNX element type."""
    name = _opt(node, i)
    if name is None:
        return np.zeros(()), default_type
    zp = np.asarray(r.const(node, name, "zero point"))
    typ = r.const_types.get(name) or _io()._onnx_type_of(zp)
    return zp.astype(np.float64), typ


def _bits(r: Any, node: Any, typ: int) -> tuple[int, bool]:
    table = _io()._QUANT_TYPES
    if typ not in table:
        raise r.unsupported(node, f"quantization to ONNX element type {typ} is not supported")
    return table[typ]


def slack_bound(bits: int, chain: list[Layer], in_max: np.ndarray | None, scale: np.ndarray) -> float:
    """The slack (in output steps) of a requantization after the affine `chain` (module docstring formula).

    `in_max` bounds |chain input| elementwise (None: unknown); `scale` is the output quantization scale.
    """
    base = 6.0 * _U * (2.0**bits + 1.0)
    if in_max is None or not chain:
        return float(base)
    import torch

    with torch.no_grad():
        m = torch.as_tensor(np.asarray(in_max, dtype=np.float64))[None]
        n_total, b_max = 0, 0.0
        for layer in chain:
            if isinstance(layer, ReLU):
                continue
            bias = layer.forward(torch.zeros_like(m))
            m = layer.abs_linear(m) + bias.abs()
            b_max = max(b_max, float(bias.abs().max()))
            n_total += _fan_in(layer) + 2
    s_min = float(np.min(scale))
    g = n_total * _U / (1.0 - n_total * _U)
    return float(base + 2.0 * g * float(m.max()) / s_min + _U * b_max / s_min)


def _fan_in(layer: Layer) -> int:
    if isinstance(layer, Dense):
        return layer.in_features
    if isinstance(layer, Conv2d):
        return int(np.prod(layer.weight.shape[1:]))
    if isinstance(layer, AvgPool2d):
        return int(np.prod(layer.kernel))
    return 1


def _chain_slack(r: Any, bits: int, scale: np.ndarray) -> float:
    """Slack for a quantization of the current tensor: scan back over affine layers to a quantizer."""
    chain: list[Layer] = []
    in_max = None
    for layer in reversed(r.layers):
        if isinstance(layer, QuantizeActivation):
            in_max = np.maximum(np.abs(layer.real_min), np.abs(layer.real_max))
            break
        if not (layer.is_affine or isinstance(layer, ReLU)):  # |relu(x)| <= |x|, computed exactly
            break
        chain.append(layer)
    chain.reverse()
    if in_max is not None and chain:
        shape = _input_shape_of(r, len(chain))
        in_max = np.broadcast_to(in_max, shape).copy() if shape is not None else None
    return slack_bound(bits, chain, in_max, scale)


def _input_shape_of(r: Any, k: int) -> tuple[int, ...] | None:
    """Per-sample shape of the input of the last `k` layers (recomputed from the network input shape)."""
    shape = _state(r).input_shape
    if shape is None:
        return None
    for layer in r.layers[: len(r.layers) - k]:
        shape = tuple(layer.output_shape(shape))
    return shape


def _materialize(r: Any, node: Any, dyn: Any, scale_i: int, zp_i: int) -> tuple[np.ndarray, int]:
    """Turn the pending quantization into a QuantizeActivation; the op's declared input parameters must match.

    Returns (scale, onnx type) of the input.
    """
    if dyn.quant is None:
        raise r.bad(node, "a quantized operator consumes a float tensor (no QuantizeLinear before it)")
    q_scale, q_zp, q_axis, typ = dyn.quant
    scale = _f64(r, node, scale_i, "scale")
    zp, _ = _zp(r, node, zp_i, typ)
    if not (np.array_equal(q_scale.reshape(-1), scale.reshape(-1)) and np.array_equal(q_zp.reshape(-1),
                                                                                      zp.reshape(-1))):
        raise r.unsupported(node, "input scale/zero point differ from the producer's quantization (requantization)")
    if q_scale.size > 1 or q_zp.size > 1:
        raise r.unsupported(node, "per-channel quantized activations are not supported as QLinear inputs")
    _emit_pending(r, node, dyn, q_scale, q_zp, typ)
    return scale.reshape(()), typ


def _set_pending(r: Any, node: Any, dyn: Any, scale_i: int | None, zp_i: int, default_type: int) -> None:
    """After a QLinear op: the output holds integers with (y_scale, y_zp); slack from the layers just emitted."""
    st = _state(r)
    if scale_i is None or _opt(node, scale_i) is None:
        dyn.quant = None  # float output (QGemm without y_scale)
        st.pending_slack = 0.0
        return
    scale = _f64(r, node, scale_i, "output scale")
    zp, typ = _zp(r, node, zp_i, default_type)
    if scale.size != 1 or zp.size != 1:
        raise r.unsupported(node, "per-channel output quantization is not supported")
    if np.any(scale <= 0):
        raise r.bad(node, "output scale must be positive")
    bits, _ = _bits(r, node, typ)
    dyn.quant = (scale.reshape(()), zp.reshape(()), 1, typ)
    st.pending_slack = _chain_slack(r, bits, scale)


def _dequant_weight(r: Any, node: Any, w_i: int, s_i: int, z_i: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(w - zp) * scale in float64 with per-axis parameters broadcast along `axis`; returns (weight, scale)."""
    w = _f64(r, node, w_i, "weight")
    s = _f64(r, node, s_i, "weight scale")
    zp, _ = _zp(r, node, z_i, 2)
    if s.size > 1 or zp.size > 1:
        a = axis % w.ndim
        shape = [1] * w.ndim
        shape[a] = w.shape[a]
        s = np.broadcast_to(s.reshape(-1), (w.shape[a],)).reshape(shape)
        zp = np.broadcast_to(zp.reshape(-1), (w.shape[a],)).reshape(shape)
    return (w - zp) * s, s


# ------------------------------------------------------------------------------------------ ops


def _op_quantize(r: Any, node: Any, dyn: Any) -> None:
    """QuantizeLinear on the dynamic tensor (onnx_ops' rule) plus the slack of a quantizer-made graph."""
    if dyn.quant is not None:
        raise r.unsupported(node, "quantizes an integer tensor")
    _io()._op_quantize(r, node, dyn)
    st = _state(r)
    st.pending_slack = 0.0
    if st.quantizer_made:
        bits, _ = _bits(r, node, dyn.quant[3])
        st.pending_slack = _chain_slack(r, bits, dyn.quant[0])
        w_scale = st.float_bias.get(node.input[0])
        prev = next((l for l in reversed(r.layers) if isinstance(l, QuantizeActivation)), None)
        if w_scale is not None and prev is not None:  # bias rounded to the a_s * w_s grid by ORT's fusion
            st.pending_slack += 0.5 * float(np.max(prev.scale)) * w_scale / float(np.min(dyn.quant[0])) * (1 + 8 * _U)


def _op_dequantize(r: Any, node: Any, dyn: Any) -> None:
    st = _state(r)
    slack = st.pending_slack
    _io()._op_dequantize(r, node, dyn)
    st.pending_slack = 0.0
    if slack:
        r.layers[-1].slack_steps = slack


def _op_move(r: Any, node: Any, dyn: Any) -> None:
    """Data movement on a per-tensor quantized tensor: done on the real values before the (pending) rounding."""
    quant = dyn.quant
    if quant[0].size > 1 or quant[1].size > 1:
        raise r.unsupported(node, "moves a per-channel quantized tensor")
    dyn.quant = None
    try:
        _io()._DYNAMIC_OPS[node.op_type](r, node, dyn)
    finally:
        dyn.quant = quant


def _op_cast(r: Any, node: Any, dyn: Any) -> None:
    """Cast of an exact integer accumulator to float: the same values (exact below 2^24 in float32)."""
    to = int(r.attrs(node).get("to", 0))
    if to not in (1, 10, 11, 16):
        raise r.unsupported(node, f"cast of an integer accumulator to ONNX type {to}")


def _op_qlinear_matmul(r: Any, node: Any, dyn: Any) -> None:
    """y = requant(dequant(a) @ dequant(b)); inputs a, a_s, a_zp, b, b_s, b_zp, y_s, y_zp."""
    io = _io()
    if node.input[0] == r.head:
        _, typ = _materialize(r, node, dyn, 1, 2)
        w, _ = _dequant_weight(r, node, 3, 4, 5, -1)  # per column of b
        if w.ndim != 2:
            raise r.unsupported(node, f"weight of shape {list(w.shape)} is not a matrix")
        io._right_matmul(r, node, dyn, w)
    else:
        _, typ = _materialize(r, node, dyn, 4, 5)
        w, _ = _dequant_weight(r, node, 0, 1, 2, 0)  # per row of a
        if w.ndim != 2:
            raise r.unsupported(node, f"weight of shape {list(w.shape)} is not a matrix")
        io._left_matmul(r, node, dyn, w)
    _set_pending(r, node, dyn, 6, 7, typ)


def _op_qgemm(r: Any, node: Any, dyn: Any) -> None:
    """com.microsoft QGemm: y = requant(alpha * (A - a_zp)(B' - b_zp) a_s b_s + C a_s b_s alpha) (ORT quant_gemm)."""
    at = r.attrs(node)
    alpha = float(at.get("alpha", 1.0))
    if node.input[0] != r.head or int(at.get("transA", 0)):
        raise r.unsupported(node, "only QGemm(x, W) with transA=0 on the input-dependent operand is supported")
    if dyn.rank != 2:
        raise r.bad(node, f"QGemm needs a 2-D operand, got rank {dyn.rank}")
    a_scale, typ = _materialize(r, node, dyn, 1, 2)
    tb = int(at.get("transB", 0))
    w, b_scale = _dequant_weight(r, node, 3, 4, 5, 0 if tb else 1)  # per output column N
    if w.ndim != 2:
        raise r.unsupported(node, f"weight of shape {list(w.shape)} is not a matrix")
    w = (w.T if tb else w) * alpha
    _io()._right_matmul(r, node, dyn, w)
    c_name = _opt(node, 6)
    if c_name is not None:
        c = np.asarray(r.const(node, c_name, "bias"), dtype=np.float64)
        bias = c * (alpha * a_scale * np.asarray(b_scale).reshape(-1))
        r.emit(ElementwiseAffine(np.ones(()), r.per_sample_const(node, bias, dyn)))
    _set_pending(r, node, dyn, 7, 8, typ)


def _op_qlinear_conv(r: Any, node: Any, dyn: Any) -> None:
    """x, x_s, x_zp, w, w_s, w_zp, y_s, y_zp, B (int32, scale x_s * w_s); per output channel w_s."""
    io = _io()
    r.to_batched(node, dyn)
    x_scale, typ = _materialize(r, node, dyn, 1, 2)
    w, w_scale = _dequant_weight(r, node, 3, 4, 5, 0)
    if w.ndim != 4 or len(dyn.shape) != 3:
        raise r.unsupported(node, f"only 2-D convolutions are supported (weight {list(w.shape)})")
    b_name = _opt(node, 8)
    bias = np.zeros(w.shape[0])
    if b_name is not None:
        b = np.asarray(r.const(node, b_name, "bias"), dtype=np.float64).reshape(-1)
        bias = b * x_scale * np.broadcast_to(np.asarray(w_scale).reshape(-1), b.shape)
    at = r.attrs(node)
    kernel = list(at.get("kernel_shape", w.shape[2:]))
    if list(kernel) != list(w.shape[2:]):
        raise r.bad(node, f"kernel_shape {kernel} does not match the weight {list(w.shape)}")
    strides = list(at.get("strides", [1, 1]))
    dilations = list(at.get("dilations", [1, 1]))
    pad = io._pads(r, node, at, kernel, strides, dilations, dyn.shape[1:])
    r.emit(Conv2d(w, bias, tuple(strides), pad, tuple(dilations), int(at.get("group", 1))))
    _set_pending(r, node, dyn, 6, 7, typ)


def _op_qlinear_add(r: Any, node: Any, dyn: Any) -> None:
    """C = requant(dequant(A) + dequant(B)) with one constant operand (A, A_s, A_zp, B, B_s, B_zp, C_s, C_zp)."""
    if node.input[0] == r.head:
        _, typ = _materialize(r, node, dyn, 1, 2)
        c_i = 3
    else:
        _, typ = _materialize(r, node, dyn, 4, 5)
        c_i = 0
    q = _f64(r, node, c_i, "operand")
    s = _f64(r, node, c_i + 1, "operand scale")
    zp, _ = _zp(r, node, c_i + 2, typ)
    if s.size > 1 or zp.size > 1:
        raise r.unsupported(node, "per-channel constant operand")
    r.emit(ElementwiseAffine(np.ones(()), r.per_sample_const(node, (q - zp) * s, dyn)))
    _set_pending(r, node, dyn, 6, 7, typ)


def _op_qlinear_pool(r: Any, node: Any, dyn: Any) -> None:
    """QLinear(Global)AveragePool: X, x_s, x_zp, y_s, y_zp; channels-first only."""
    if int(r.attrs(node).get("channels_last", 0)):
        raise r.unsupported(node, "channels_last=1 is not supported")
    r.to_batched(node, dyn)
    _, typ = _materialize(r, node, dyn, 1, 2)
    if len(dyn.shape) != 3:
        raise r.unsupported(node, f"only 2-D pooling is supported (tensor {list(dyn.shape)})")
    if node.op_type == "QLinearGlobalAveragePool":
        r.emit(AvgPool2d(dyn.shape[1:], dyn.shape[1:]))
    else:
        _io()._op_avgpool(r, node, dyn)
    _set_pending(r, node, dyn, 3, 4, typ)


def _op_matmul_integer(r: Any, node: Any, dyn: Any) -> None:
    """MatMulInteger(A, B, a_zp, b_zp) -> int32 (A - a_zp) @ (B - b_zp), A the quantized dynamic tensor.

    With x = a_s (A - a_zp) (the QuantizeActivation), the accumulator is (x / a_s) @ (B - b_zp).
    """
    if node.input[0] != r.head:
        raise r.unsupported(node, "MatMulInteger with the input-dependent tensor as B is not supported")
    if dyn.quant is None:
        raise r.bad(node, "MatMulInteger consumes a float tensor (no QuantizeLinear before it)")
    q_scale, q_zp, _, typ = dyn.quant
    a_zp, _ = _zp(r, node, 2, typ)
    if not np.array_equal(a_zp.reshape(-1), np.asarray(q_zp).reshape(-1)):
        raise r.unsupported(node, "a_zero_point differs from the QuantizeLinear zero point")
    _emit_pending(r, node, dyn, q_scale, q_zp, typ)
    b = _f64(r, node, 1, "weight")
    b_zp, _ = _zp(r, node, 3, 3)
    if b.ndim != 2:
        raise r.unsupported(node, f"weight of shape {list(b.shape)} is not a matrix")
    w = b - (b_zp.reshape(1, -1) if b_zp.size > 1 else b_zp.reshape(()))
    r.emit(ElementwiseAffine(np.asarray(1.0 / q_scale).reshape(()), np.zeros(())))
    _io()._right_matmul(r, node, dyn, w)
    _state(r).int_heads.add(node.output[0])


_HANDLERS: dict[str, Callable[[Any, Any, Any], None]] = {
    "QuantizeLinear": _op_quantize,
    "DequantizeLinear": _op_dequantize,
    "QLinearMatMul": _op_qlinear_matmul,
    "QGemm": _op_qgemm,
    "QLinearConv": _op_qlinear_conv,
    "QLinearAdd": _op_qlinear_add,
    "QLinearAveragePool": _op_qlinear_pool,
    "QLinearGlobalAveragePool": _op_qlinear_pool,
    "MatMulInteger": _op_matmul_integer,
    "Cast": _op_cast,
    **{op: _op_move for op in _MOVE},
}
_QOPS = {op for op in _HANDLERS if op.startswith("QLinear") or op in ("QGemm", "MatMulInteger")}
