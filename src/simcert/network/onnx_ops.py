"""ONNX op handlers for `onnx_read._Reader`: nodes on the dynamic tensor become layers (`_DYNAMIC_OPS`),
nodes on constants only are evaluated with numpy (`_CONST_OPS`). Also used by `onnx_qoperator`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from .layers import AvgPool2d, Conv2d, Dense, ElementwiseAffine, QuantizeActivation, ReLU, Reshape
from .onnx_common import _QUANT_TYPES, _onnx

if TYPE_CHECKING:
    from .onnx_read import _Dyn, _Reader

_MAX_KRON = 20_000_000  # largest dense matrix we build for a matmul over a non-flat tensor


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
    zp_type = r.const_types.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if (zp_type or r.const_types.get(node.input[0]) or _onnx_type_of(q)) == 3 and q.ndim >= 2:
        r.int8_weight_codes.append(q)  # int8 weight codes: the reader warns about int16 saturation (onnx_read)
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
