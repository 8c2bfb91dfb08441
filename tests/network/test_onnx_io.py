"""ONNX reader/writer: every benchmark model against onnxruntime, op-by-op graphs, QDQ, round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from simcert.errors import UnsupportedOpError
from simcert.network import AvgPool2d, Conv2d, Dense, ElementwiseAffine, Network, QuantizeActivation, ReLU, Reshape
from simcert.network.io import load, save
from simcert.network.onnx_io import load_onnx, onnx_bytes
from simcert.paths import benchmarks_dir

_BENCH = benchmarks_dir()
_ONNX_FILES = sorted(_BENCH.glob("**/*.onnx")) if _BENCH else []


def _session(model: onnx.ModelProto | str | Path, optimize: bool = True) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    if not optimize:
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def _as_float64(model: onnx.ModelProto) -> onnx.ModelProto:
    """A float64 copy of a float32 model, with a fixed batch of 1 made symbolic (an independent oracle)."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    for t in g.initializer:
        if t.data_type == TensorProto.FLOAT:
            t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(t).astype(np.float64), t.name))
    for vi in list(g.input) + list(g.output):
        tt = vi.type.tensor_type
        if tt.elem_type == TensorProto.FLOAT:
            tt.elem_type = TensorProto.DOUBLE
        dims = tt.shape.dim
        if len(dims) > 1 and dims[0].HasField("dim_value") and dims[0].dim_value == 1:
            dims[0].dim_param = "N"
    for node in g.node:
        for a in node.attribute:
            if node.op_type == "Constant" and a.name == "value" and a.t.data_type == TensorProto.FLOAT:
                a.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(a.t).astype(np.float64)))
            if node.op_type == "Cast" and a.name == "to" and a.i == TensorProto.FLOAT:
                a.i = TensorProto.DOUBLE
    del g.value_info[:]
    return m


def _run(sess: ort.InferenceSession, net: Network, x: np.ndarray, dtype: type = np.float64) -> np.ndarray:
    """onnxruntime outputs for a batch x (B, *net.input_shape), one sample at a time for 1-D models."""
    inp = sess.get_inputs()[0]
    batched = net.meta["onnx_batched"]
    if batched and inp.shape[0] != 1:  # symbolic batch axis: one call
        return sess.run(None, {inp.name: x.astype(dtype)})[0].reshape(len(x), -1)
    rows = [xi[None] if batched else xi for xi in x.astype(dtype)]
    return np.stack([sess.run(None, {inp.name: xi})[0].reshape(-1) for xi in rows])


def _softmax(y: np.ndarray) -> np.ndarray:
    e = np.exp(y - y.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _assert_close(y: np.ndarray, ref: np.ndarray, rtol: float = 1e-5, atol_frac: float = 1e-6) -> None:
    np.testing.assert_allclose(y, ref, rtol=rtol, atol=atol_frac * max(np.abs(ref).max(), 1e-12))


# ------------------------------------------------------------------------------------ all benchmark models


@pytest.mark.parametrize("path", _ONNX_FILES, ids=lambda p: str(p.relative_to(_BENCH)) if _BENCH else str(p))
def test_benchmark_model_matches_onnxruntime_and_round_trips(path: Path, tmp_path: Path) -> None:
    """simcert float64 forward = onnxruntime (float64 copy of the model) on 1,000 inputs in [-1, 1];
    save + reload gives bit-identical outputs; the written float32 model runs in onnxruntime like the original."""
    net = load_onnx(path)
    x = np.random.default_rng(7).uniform(-1.0, 1.0, size=(1000, *net.input_shape))
    y = net(x)
    ref = _run(_session(_as_float64(onnx.load(path))), net, x)
    _assert_close(_softmax(y) if net.softmax_output else y, ref)

    out = save(net, tmp_path / "model.onnx")
    back = load(out)
    assert back.input_shape == net.input_shape and back.softmax_output == net.softmax_output
    np.testing.assert_array_equal(back(x), y)
    written = onnx.load(out)
    dims = [d.dim_value or d.dim_param for d in written.graph.input[0].type.tensor_type.shape.dim]
    assert dims == net.meta["onnx_input_dims"]  # a compatible model: same input name and dims
    xs = x[:20]
    orig32, new32 = _run(_session(path), net, xs, np.float32), _run(_session(out), back, xs, np.float32)
    _assert_close(new32, orig32, rtol=1e-4, atol_frac=1e-5)


def test_benchmark_set_is_complete(bench: Path) -> None:
    assert len(_ONNX_FILES) >= 90  # the README lists 92 ONNX files


def test_input_shapes_and_layers_of_each_export_style(bench: Path) -> None:
    acas = load_onnx(bench / "vnncomp2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx")
    assert acas.input_shape == (1, 1, 5) and acas.meta["onnx_input_dims"] == [1, 1, 1, 5]
    assert [l.kind for l in acas.layers[:3]] == ["reshape", "dense", "relu"]  # Sub(zeros) dropped
    np.testing.assert_array_equal(acas(np.zeros((2, 5))), acas(np.zeros((2, 1, 1, 5))))
    verydiff = load_onnx(bench / "verydiff-release/nets/ACASXU_run2a_1_1_batch_2000.onnx")
    assert verydiff.input_shape == (5,) and verydiff.meta["onnx_batched"] is False
    keras = load_onnx(bench / "nnequiv-experiments/benchmarks/mnist784_36_10.onnx")
    assert keras.input_shape == (784,) and keras.meta["onnx_input_dims"][0] == "N"
    lhc = load_onnx(bench / "verydiff-release/nets/2_80-1.onnx")
    assert lhc.softmax_output and lhc.input_shape == (16,) and lhc.layers[-1].kind == "dense"
    fc = load_onnx(bench / "vnncomp2021/mnistfc/mnist-net_256x2.onnx")
    assert fc.input_shape == (784, 1)


def test_one_d_model_is_written_back_in_w_at_x_orientation(bench: Path, tmp_path: Path) -> None:
    net = load_onnx(bench / "verydiff-release/nets/ACASXU_run2a_1_1_batch_2000.onnx")
    m = onnx.load(save(net, tmp_path / "v.onnx"))
    assert [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim] == [5]
    first = m.graph.node[0]
    assert first.op_type == "MatMul" and first.input[1] == "X"


# ------------------------------------------------------------------------------------ op-by-op graphs


def _model(nodes, inits, in_shape, out_shape, opset=13, in_name="x") -> onnx.ModelProto:
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(in_name, TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.normal(size=shape).astype(np.float32)


def _check(m: onnx.ModelProto, tmp_path: Path, x: np.ndarray) -> Network:
    """Load the model from disk and compare with onnxruntime (float32 oracle, so a float32 tolerance)."""
    p = tmp_path / "m.onnx"
    p.write_bytes(m.SerializeToString())
    net = load_onnx(p)
    ref = _run(_session(m), net, x, np.float32)
    y = net(x)
    _assert_close(_softmax(y) if net.softmax_output else y, ref, rtol=1e-4, atol_frac=1e-5)
    return net


def test_matmul_orientations_gemm_and_constant_arithmetic(tmp_path: Path, rng: np.random.Generator) -> None:
    w, b, mean, std = _f32(rng, 4, 3), _f32(rng, 3), _f32(rng, 4), np.abs(_f32(rng, 4)) + 0.5
    m = _model(
        [
            helper.make_node("Sub", ["x", "mean"], ["a"]),
            helper.make_node("Div", ["a", "std"], ["a2"]),
            helper.make_node("MatMul", ["a2", "W"], ["h"]),
            helper.make_node("Add", ["b", "h"], ["h2"]),  # bias first
            helper.make_node("Relu", ["h2"], ["r"]),
            helper.make_node("Mul", ["r", "two"], ["r2"]),
            helper.make_node("Gemm", ["r2", "G", "c"], ["y"], alpha=0.5, beta=2.0, transB=1),
        ],
        {"W": w, "b": b, "mean": mean, "std": std, "two": np.float32(2.0), "G": _f32(rng, 2, 3), "c": _f32(rng, 2)},
        ["N", 4],
        ["N", 2],
    )
    net = _check(m, tmp_path, rng.uniform(-1, 1, (50, 4)))
    assert [l.kind for l in net.layers] == ["elementwise_affine", "dense", "relu", "elementwise_affine", "dense"]
    np.testing.assert_array_equal(net.layers[1].weight, w.T.astype(np.float64))  # bias add is exact

    w2 = _f32(rng, 3, 4)  # W @ x on a 1-D input
    m = _model([helper.make_node("MatMul", ["W", "x"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
               {"W": w2, "b": b}, [4], [3])
    net = _check(m, tmp_path, rng.uniform(-1, 1, (20, 4)))
    assert net.input_shape == (4,) and not net.meta["onnx_batched"]
    np.testing.assert_array_equal(net.layers[0].weight, w2.astype(np.float64))

    a = _f32(rng, 4, 3)  # Gemm with transA on the constant operand is fine; x is the right operand
    m = _model([helper.make_node("Gemm", ["x", "A"], ["y"], alpha=2.0)], {"A": a}, [1, 4], [1, 3])
    _check(m, tmp_path, rng.uniform(-1, 1, (5, 4)))


def test_conv_batchnorm_avgpool_flatten_reshape(tmp_path: Path, rng: np.random.Generator) -> None:
    c_w, c_b = _f32(rng, 4, 2, 3, 3), _f32(rng, 4)
    bn = [np.abs(_f32(rng, 4)) + 0.5, _f32(rng, 4), _f32(rng, 4), np.abs(_f32(rng, 4)) + 0.5]
    bn2 = [np.abs(_f32(rng, 2)) + 0.5, _f32(rng, 2), _f32(rng, 2), np.abs(_f32(rng, 2)) + 0.5]
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s0", "b0", "m0", "v0"], ["xn"], epsilon=1e-3),  # standalone
        helper.make_node("Conv", ["xn", "CW", "CB"], ["c"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "s1", "b1", "m1", "v1"], ["cb"]),  # folded into the conv
        helper.make_node("Relu", ["cb"], ["r"]),
        helper.make_node("AveragePool", ["r"], ["p"], kernel_shape=[2, 2], strides=[1, 1]),
        helper.make_node("Identity", ["p"], ["p2"]),
        helper.make_node("Dropout", ["p2"], ["p3"]),
        helper.make_node("Flatten", ["p3"], ["f"], axis=1),
        helper.make_node("Reshape", ["f", "shape"], ["f2"]),
        helper.make_node("Gemm", ["f2", "DW", "DB"], ["y"], transB=1),
    ]
    inits = {"CW": c_w, "CB": c_b, "DW": _f32(rng, 3, 36), "DB": _f32(rng, 3), "shape": np.array([-1, 36])}
    inits.update({f"{k}0": v for k, v in zip("sbmv", bn2)})
    inits.update({f"{k}1": v for k, v in zip("sbmv", bn)})
    m = _model(nodes, inits, ["N", 2, 8, 8], ["N", 3])
    net = _check(m, tmp_path, rng.uniform(-1, 1, (30, 2, 8, 8)))
    assert [l.kind for l in net.layers] == ["elementwise_affine", "conv2d", "relu", "avgpool2d", "reshape", "dense"]
    assert net.layers[1].stride == (2, 2) and net.layers[1].padding == (1, 1)


def test_trailing_softmax_is_stripped(tmp_path: Path, rng: np.random.Generator) -> None:
    m = _model([helper.make_node("Gemm", ["x", "W", "b"], ["z"], transB=1), helper.make_node("Softmax", ["z"], ["y"])],
               {"W": _f32(rng, 3, 4), "b": _f32(rng, 3)}, ["N", 4], ["N", 3])
    net = _check(m, tmp_path, rng.uniform(-1, 1, (10, 4)))
    assert net.softmax_output and [l.kind for l in net.layers] == ["dense"]


def test_asymmetric_conv_padding_is_rejected(tmp_path: Path, rng: np.random.Generator) -> None:
    m = _model([helper.make_node("Conv", ["x", "W"], ["y"], pads=[0, 0, 1, 1])], {"W": _f32(rng, 1, 1, 2, 2)},
               ["N", 1, 4, 4], ["N", 1, 4, 4])
    p = tmp_path / "asym.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(UnsupportedOpError, match=r"asym\.onnx.*Conv.*asymmetric padding"):
        load_onnx(p)


def test_branching_graph_is_rejected(tmp_path: Path) -> None:
    m = _model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["x", "r"], ["y"])], {}, ["N", 3],
               ["N", 3])
    p = tmp_path / "res.onnx"
    p.write_bytes(m.SerializeToString())
    with pytest.raises(UnsupportedOpError, match="Add"):
        load_onnx(p)


# ------------------------------------------------------------------------------------ QDQ


def _quantized_mlp(tmp_path: Path, per_channel: bool) -> tuple[Path, Path]:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(3)
    inits = {"W1": _f32(rng, 6, 16), "b1": _f32(rng, 16) * 0.1, "W2": _f32(rng, 16, 4) * 0.3, "b2": _f32(rng, 4)}
    m = _model(
        [
            helper.make_node("MatMul", ["x", "W1"], ["m1"]),
            helper.make_node("Add", ["m1", "b1"], ["h1"]),
            helper.make_node("Relu", ["h1"], ["r1"]),
            helper.make_node("MatMul", ["r1", "W2"], ["m2"]),
            helper.make_node("Add", ["m2", "b2"], ["y"]),
        ],
        inits,
        ["N", 6],
        ["N", 4],
    )
    src, dst = tmp_path / "fp.onnx", tmp_path / f"q{int(per_channel)}.onnx"
    src.write_bytes(m.SerializeToString())

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"x": rng.uniform(-1, 1, (1, 6)).astype(np.float32)} for _ in range(64)])

        def get_next(self):  # noqa: ANN201
            return next(self.it, None)

    import logging

    logging.getLogger().setLevel(logging.ERROR)
    # 7-bit weight codes: ORT's fused u8s8 kernels on x86 without VNNI saturate int16 pair sums otherwise
    # (src/simcert/compress/ort_quant.py), and the comparison below is with ORT's fused execution too
    quantize_static(str(src), str(dst), Reader(), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                    weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, reduce_range=True)
    return src, dst


@pytest.mark.parametrize("per_channel", [False, True])
def test_qdq_model_from_quantize_static(tmp_path: Path, per_channel: bool) -> None:
    """Weights are dequantized exactly; activations become QuantizeActivation; the forward agrees with
    onnxruntime within one quantization step of the output."""
    _, qpath = _quantized_mlp(tmp_path, per_channel)
    net = load_onnx(qpath)
    kinds = [l.kind for l in net.layers]
    assert kinds.count("quantize_activation") >= 4 and "dense" in kinds
    q = onnx.load(qpath)
    inits = {t.name: numpy_helper.to_array(t) for t in q.graph.initializer}
    w1 = next(l for l in net.layers if isinstance(l, Dense)).weight
    scale = inits["W1_scale"].astype(np.float64)
    expected = (inits["W1_quantized"].astype(np.float64) - inits["W1_zero_point"].astype(np.float64)) * scale
    np.testing.assert_array_equal(w1, expected.T)  # scale * (q - zp), exactly, per-tensor or per-column
    acts = [l for l in net.layers if isinstance(l, QuantizeActivation)]
    assert all(a.bits == 8 and not a.signed for a in acts)
    step = float(inits["y_scale"])
    x = np.random.default_rng(5).uniform(-1, 1, (500, 6))
    y = net(x)
    for optimize in (False, True):
        ref = _session(qpath, optimize=optimize).run(None, {"x": x.astype(np.float32)})[0]
        err = np.abs(y - ref).max()
        assert err <= step * 1.0001, (optimize, err, step)
    assert np.mean(np.abs(y - ref) < 1e-6) > 0.95  # almost always the very same grid point


def test_qdq_on_a_float_initializer_dequantizes_exactly(tmp_path: Path) -> None:
    w = np.array([[0.3, -1.2], [0.05, 2.0]], dtype=np.float32)
    m = _model(
        [
            helper.make_node("QuantizeLinear", ["W", "s", "z"], ["wq"], axis=0),
            helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wd"], axis=0),
            helper.make_node("MatMul", ["x", "wd"], ["y"]),
        ],
        {"W": w, "s": np.array([0.01, 0.02], dtype=np.float32), "z": np.array([0, 3], dtype=np.int8)},
        ["N", 2],
        ["N", 2],
    )
    net = _check(m, tmp_path, np.random.default_rng(0).uniform(-1, 1, (10, 2)))
    s = np.array([0.01, 0.02], dtype=np.float32).astype(np.float64)[:, None]
    q = np.clip(np.round(w / np.array([0.01, 0.02], dtype=np.float32)[:, None]) + np.array([0, 3])[:, None], -128, 127)
    np.testing.assert_array_equal(net.layers[0].weight, ((q - np.array([0, 3])[:, None]) * s).T)


# ------------------------------------------------------------------------------------ writer


def test_writer_covers_every_layer_and_onnxruntime_agrees(tmp_path: Path, rng: np.random.Generator) -> None:
    def f32(*shape: int) -> np.ndarray:
        return rng.normal(size=shape).astype(np.float32).astype(np.float64)

    net = Network(
        [
            ElementwiseAffine(np.float32(0.5), f32(2, 1, 1)),
            Conv2d(f32(4, 2, 3, 3), f32(4), stride=1, padding=1),
            ReLU(),
            QuantizeActivation(np.array([0.05, 0.1, 0.05, 0.2], dtype=np.float32).reshape(4, 1, 1),
                               np.array([0, 2, 0, -1]).reshape(4, 1, 1), bits=8, signed=True),
            AvgPool2d(2, 2),
            Reshape((-1,)),
            Dense(f32(5, 36), f32(5)),
            ReLU(),
            QuantizeActivation(np.float32(0.125), np.array(3.0), bits=8, signed=False),
            Dense(f32(3, 5), f32(3)),
        ],
        input_shape=(2, 6, 6),
        softmax_output=True,
    )
    path = save(net, tmp_path / "w.onnx")
    back = load(path)
    x = rng.uniform(-1, 1, (200, 2, 6, 6))
    np.testing.assert_array_equal(back(x), net(x))  # float32-representable parameters: exact round trip
    assert back.softmax_output
    ref = _session(path, optimize=False).run(None, {"input": x.astype(np.float32)})[0]
    assert np.abs(_softmax(net(x)) - ref).max() < 1e-4


def test_float64_export_keeps_every_weight(tmp_path: Path, rng: np.random.Generator) -> None:
    net = Network([Dense(rng.normal(size=(4, 3)), rng.normal(size=4)), ReLU(), Dense(rng.normal(size=(2, 4)),
                   rng.normal(size=2))], input_shape=(3,))
    x = rng.uniform(-1, 1, (50, 3))
    exact = load(save(net, tmp_path / "d.onnx", dtype=np.float64))
    np.testing.assert_array_equal(exact(x), net(x))
    rounded = load(save(net, tmp_path / "f.onnx"))
    assert np.array_equal(rounded.layers[0].weight, net.layers[0].weight.astype(np.float32).astype(np.float64))
    assert not np.array_equal(rounded(x), net(x))  # float64 weights are rounded to float32 by default


def test_nnet_metadata_survives_onnx_round_trip(bench: Path, tmp_path: Path) -> None:
    net = load(bench / "reludiff-icse2020/nnet/ACASXU_run2a_1_1_batch_2000.nnet")
    back = load(save(net, tmp_path / "a.onnx", dtype=np.float64))
    assert back.nnet is not None and back.nnet.output_range == net.nnet.output_range
    np.testing.assert_array_equal(back.input_domain[0], net.input_domain[0])
    x = np.random.default_rng(1).uniform(*net.input_domain, size=(100, 5))
    np.testing.assert_array_equal(back(x), net(x))


def test_onnx_bytes_is_deterministic(rng: np.random.Generator) -> None:
    net = Network([Dense(rng.normal(size=(2, 3)), np.zeros(2))], input_shape=(3,))
    assert onnx_bytes(net) == onnx_bytes(net)


def test_unbatched_conv_model_and_simplified_acas_keep_their_input_dims(bench: Path, tmp_path: Path,
                                                                          rng: np.random.Generator) -> None:
    meta = {"format": "onnx", "onnx_input_name": "X", "onnx_input_dims": [8], "onnx_batched": False}
    net = Network([Reshape((2, 2, 2)), Conv2d(rng.normal(size=(3, 2, 2, 2)), rng.normal(size=3)), ReLU(),
                   Reshape((-1,)), Dense(rng.normal(size=(1, 3)), rng.normal(size=1))], (8,), meta=meta)
    path = save(net, tmp_path / "u.onnx", dtype=np.float64)
    back = load(path)
    x = rng.uniform(-1, 1, (30, 8))
    np.testing.assert_array_equal(back(x), net(x))
    assert [d.dim_value for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim] == [8]
    path32 = save(net, tmp_path / "u32.onnx")  # onnxruntime has no float64 Conv
    ref = np.stack([_session(path32).run(None, {"X": xi.astype(np.float32)})[0].reshape(-1) for xi in x])
    np.testing.assert_allclose(ref, net(x), rtol=1e-4, atol=1e-4)

    acas = load_onnx(bench / "vnncomp2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx").simplified()
    assert acas.input_shape == (5,)
    written = onnx.load(save(acas, tmp_path / "a.onnx"))
    assert [d.dim_value for d in written.graph.input[0].type.tensor_type.shape.dim] == [1, 1, 1, 5]
    xa = rng.uniform(-0.5, 0.5, (3, 5))
    np.testing.assert_array_equal(load(tmp_path / "a.onnx")(xa), acas(xa))
