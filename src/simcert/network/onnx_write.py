"""ONNX writer for the network IR: `onnx_model` / `onnx_bytes`.

Writing (`onnx_bytes`): Dense -> Gemm (or MatMul(W, x) + Add for unbatched 1-D MLPs), Conv2d -> Conv,
AvgPool2d -> AveragePool, Reshape -> Reshape, ElementwiseAffine -> Mul/Add, QuantizeActivation ->
QuantizeLinear/DequantizeLinear, ReLU -> Relu, `softmax_output` -> a trailing Softmax. Parameters are
stored in `dtype` (float32 by default: exact for float32-representable values; float64 keeps all).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ..errors import InputError
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
from .network import Network
from .onnx_common import _QUANT_TYPES, _onnx

__all__ = ["onnx_model", "onnx_bytes"]


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
