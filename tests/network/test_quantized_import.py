"""Quantized importers (QDQ, QOperator, PyTorch fake-quant export) against onnxruntime's execution.

Oracle: onnxruntime runs the very file simcert imports. simcert's forward must give bit-identical float32
outputs, except on inputs where some quantizer's pre-rounding value lies within that layer's `slack_steps`
of a rounding boundary (ORT's float32 requantization may round the other way there; see onnx_qoperator).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import helper as oh  # noqa: E402
from onnx import numpy_helper as nh  # noqa: E402

from simcert.cli import main  # noqa: E402
from simcert.compress.ort_quant import ort_quantize, ort_quantize_dynamic  # noqa: E402
from simcert.errors import InputError, UnsupportedOpError  # noqa: E402
from simcert.network import AvgPool2d, Conv2d, Dense, Network, QuantizeActivation, ReLU, Reshape, load  # noqa: E402

logging.getLogger("root").setLevel(logging.ERROR)
N = 1500


def _ort(path, x, fused: bool = True):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    if not fused:  # the ONNX semantics in float32 (DequantizeLinear, Gemm, QuantizeLinear), no integer kernels
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x.astype(np.float32)})[0]


def _near_tie(net: Network, x: np.ndarray) -> np.ndarray:
    """Per sample: whether some quantizer's x/scale + zp is within its slack_steps of a rounding boundary."""
    hit = np.zeros(len(x), dtype=bool)
    if not len(x):
        return hit
    h = torch.as_tensor(x, dtype=torch.float64)
    with torch.no_grad():
        for layer in net.layers:
            if isinstance(layer, QuantizeActivation):
                v = (h / layer._tensor("scale", h) + layer._tensor("zero_point", h)).reshape(len(x), -1)
                d = (v - torch.floor(v) - 0.5).abs()
                hit |= (d <= layer.slack_steps).any(dim=1).numpy()
            h = layer.forward(h)
    return hit


def _agree(path, x: np.ndarray, net: Network | None = None, fused: bool = True) -> Network:
    """Assert simcert's forward of `path` matches ORT (exact, or a mismatch explained by the slack)."""
    net = net or load(path)
    x = x.astype(np.float32)
    y_ort = _ort(path, x, fused)
    with torch.no_grad():
        y = net.forward(torch.as_tensor(x.astype(np.float64))).numpy().astype(np.float32).reshape(y_ort.shape)
    bad = np.any(y != y_ort, axis=tuple(range(1, y.ndim)))
    assert np.all(_near_tie(net, x[bad])), f"{bad.sum()} mismatches not explained by the slack"
    assert bad.mean() < 0.05
    return net


@pytest.fixture(autouse=True)
def _quiet():
    torch.set_num_threads(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        yield
        logging.disable(logging.NOTSET)


def _mlp(seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    sizes = [5, 12, 10, 3]
    layers = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(Dense(rng.normal(size=(b, a)), rng.normal(size=b)))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Network(layers, (5,))


def _convnet(seed: int = 1) -> Network:
    rng = np.random.default_rng(seed)
    return Network([
        Conv2d(rng.normal(size=(4, 2, 3, 3)), rng.normal(size=4), padding=(1, 1)), ReLU(),
        Conv2d(rng.normal(size=(3, 4, 3, 3)), rng.normal(size=3), stride=(2, 2)), ReLU(),
        AvgPool2d((2, 2), (1, 1)), Reshape((-1,)), Dense(rng.normal(size=(2, 3)), rng.normal(size=2)),
    ], (2, 6, 6))


def _ops(path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("act,sym", [("uint8", False), ("int8", False), ("int8", True)])
def test_mlp_matches_onnxruntime(tmp_path, fmt, per_channel, act, sym):
    rng = np.random.default_rng(3)
    path = tmp_path / "q.onnx"
    ort_quantize(_mlp(), path, rng.normal(size=(100, 5)), fmt=fmt, per_channel=per_channel,
                 activation_type=act, symmetric_activations=sym)
    ops = _ops(path)
    assert ("QGemm" in ops) == (fmt == "qoperator")
    net = _agree(path, rng.normal(size=(N, 5)) * 1.5)
    qs = [l for l in net.layers if isinstance(l, QuantizeActivation)]
    assert len(qs) >= 4 and all(q.signed == (act == "int8") for q in qs)
    assert all(0 < q.slack_steps < 0.5 for q in qs)  # quantizer-made graph: slack set, and small


@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
@pytest.mark.parametrize("per_channel", [False, True])
def test_convnet_matches_onnxruntime(tmp_path, fmt, per_channel):
    rng = np.random.default_rng(4)
    path = tmp_path / "c.onnx"
    ort_quantize(_convnet(), path, rng.normal(size=(64, 2, 6, 6)), fmt=fmt, per_channel=per_channel)
    if fmt == "qoperator":
        assert {"QLinearConv", "QLinearAveragePool", "QGemm", "Reshape"} <= set(_ops(path))
    _agree(path, rng.normal(size=(N, 2, 6, 6)))


def _matmul_add_model(path, seed=5):
    rng = np.random.default_rng(seed)
    w1, b1 = rng.normal(size=(5, 8)).astype(np.float32), rng.normal(size=8).astype(np.float32)
    w2, b2 = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    g = oh.make_graph(
        [oh.make_node("MatMul", ["x", "W1"], ["a"]), oh.make_node("Add", ["a", "b1"], ["b"]),
         oh.make_node("Relu", ["b"], ["c"]), oh.make_node("MatMul", ["c", "W2"], ["d"]),
         oh.make_node("Add", ["d", "b2"], ["y"])],
        "mm", [oh.make_tensor_value_info("x", 1, ["N", 5])], [oh.make_tensor_value_info("y", 1, ["N", 3])],
        [nh.from_array(w1, "W1"), nh.from_array(b1, "b1"), nh.from_array(w2, "W2"), nh.from_array(b2, "b2")])
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)], ir_version=8), str(path))


@pytest.mark.parametrize("per_channel", [False, True])
def test_qlinear_matmul_and_add(tmp_path, per_channel):
    """MatMul + Add graphs quantize to QLinearMatMul + QLinearAdd (constant operand)."""
    from onnxruntime.quantization import QuantFormat, quantize_static

    from simcert.compress.ort_quant import _Reader

    rng = np.random.default_rng(6)
    _matmul_add_model(tmp_path / "f.onnx")
    quantize_static(str(tmp_path / "f.onnx"), str(tmp_path / "q.onnx"),
                    _Reader([{"x": rng.normal(size=(100, 5)).astype(np.float32)}]),
                    quant_format=QuantFormat.QOperator, per_channel=per_channel, reduce_range=True)
    assert {"QLinearMatMul", "QLinearAdd"} <= set(_ops(tmp_path / "q.onnx"))
    _agree(tmp_path / "q.onnx", rng.normal(size=(N, 5)))


def test_int4_qdq(tmp_path):
    rng = np.random.default_rng(7)
    path = tmp_path / "q4.onnx"
    ort_quantize(_mlp(), path, rng.normal(size=(100, 5)), weight_bits=4, activation_bits=4, activation_type="int8")
    net = _agree(path, rng.normal(size=(N, 5)))
    assert {q.bits for q in net.layers if isinstance(q, QuantizeActivation)} == {4}


def test_matmul_integer_chain(tmp_path):
    """QuantizeLinear -> MatMulInteger -> Cast -> Mul(scale) -> Add(bias): float output, ORT within float32."""
    rng = np.random.default_rng(8)
    wq = rng.integers(-127, 128, size=(5, 4)).astype(np.int8)
    s_x, s_w = np.float32(0.02), np.float32(0.01)
    bias = rng.normal(size=4).astype(np.float32)
    g = oh.make_graph(
        [oh.make_node("QuantizeLinear", ["x", "sx", "zx"], ["q"]),
         oh.make_node("MatMulInteger", ["q", "W", "zx", "zw"], ["acc"]),
         oh.make_node("Cast", ["acc"], ["accf"], to=1), oh.make_node("Mul", ["accf", "sxw"], ["m"]),
         oh.make_node("Add", ["m", "b"], ["y"])],
        "mmi", [oh.make_tensor_value_info("x", 1, ["N", 5])], [oh.make_tensor_value_info("y", 1, ["N", 4])],
        [nh.from_array(np.array(s_x), "sx"), nh.from_array(np.array(7, dtype=np.uint8), "zx"),
         nh.from_array(wq, "W"), nh.from_array(np.array(0, dtype=np.int8), "zw"),
         nh.from_array(np.array(s_x * s_w, dtype=np.float32), "sxw"), nh.from_array(bias, "b")])
    path = tmp_path / "mmi.onnx"
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13)], ir_version=8), str(path))
    x = rng.normal(size=(N, 5)).astype(np.float32)
    net = load(path)
    y = net.forward(torch.as_tensor(x.astype(np.float64))).numpy()
    np.testing.assert_allclose(y, _ort(path, x), rtol=1e-5, atol=1e-6)


def test_pytorch_fake_quant_export(tmp_path):
    """Eager-mode fake quantization (FakeQuantize modules) exported by torch.onnx (TorchScript) as QDQ."""
    import torch.ao.quantization as tq

    torch.manual_seed(0)
    model = torch.nn.Sequential(tq.QuantStub(), torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3),
                                tq.DeQuantStub()).train()
    act = tq.FakeQuantize.with_args(observer=tq.MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                    dtype=torch.quint8)
    w = tq.FakeQuantize.with_args(observer=tq.MovingAveragePerChannelMinMaxObserver, quant_min=-128, quant_max=127,
                                  dtype=torch.qint8, qscheme=torch.per_channel_symmetric, ch_axis=0)
    model.qconfig = tq.QConfig(activation=act, weight=w)
    tq.prepare_qat(model, inplace=True)
    with torch.no_grad():
        model(torch.randn(256, 5))
    model.eval()
    model.apply(tq.disable_observer)
    path = tmp_path / "t.onnx"
    torch.onnx.export(model, (torch.zeros(1, 5),), str(path), dynamo=False, input_names=["x"],
                      output_names=["y"], dynamic_axes={"x": {0: "N"}}, opset_version=13)
    x = np.random.default_rng(9).normal(size=(N, 5)).astype(np.float32)
    # against ORT's unfused execution: torch exports full 8-bit weight codes only, and ORT's fused u8s8 kernels
    # on x86 CPUs without VNNI saturate int16 pair sums with those (src/simcert/compress/ort_quant.py)
    net = _agree(path, x, fused=False)
    with torch.no_grad():  # and torch's own fake-quant forward agrees up to the same near-ties
        yt = model(torch.as_tensor(x)).numpy()
        ys = net.forward(torch.as_tensor(x.astype(np.float64))).numpy().astype(np.float32)
    assert np.all(_near_tie(net, x[np.any(yt != ys, axis=1)]))


def test_dynamic_quantization_is_refused(tmp_path, capsys):
    path = tmp_path / "d.onnx"
    ort_quantize_dynamic(_mlp(), path)
    with pytest.raises(UnsupportedOpError, match="DynamicQuantizeLinear"):
        load(path)
    assert main(["info", str(path)]) == 2
    assert "DynamicQuantizeLinear" in capsys.readouterr().err


def test_unsupported_qlinear_op_exit_2(tmp_path, capsys):
    g = oh.make_graph(
        [oh.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         oh.make_node("QLinearMul", ["q", "s", "z", "c", "s", "z", "s", "z"], ["qm"], domain="com.microsoft"),
         oh.make_node("DequantizeLinear", ["qm", "s", "z"], ["y"])],
        "qm", [oh.make_tensor_value_info("x", 1, ["N", 3])], [oh.make_tensor_value_info("y", 1, ["N", 3])],
        [nh.from_array(np.array(0.1, dtype=np.float32), "s"), nh.from_array(np.array(128, dtype=np.uint8), "z"),
         nh.from_array(np.array([130, 120, 128], dtype=np.uint8), "c")])
    path = tmp_path / "qm.onnx"
    onnx.save(oh.make_model(g, opset_imports=[oh.make_opsetid("", 13), oh.make_opsetid("com.microsoft", 1)],
                            ir_version=8), str(path))
    _ort(path, np.zeros((1, 3)))  # a valid model ORT runs
    with pytest.raises(UnsupportedOpError, match="QLinearMul"):
        load(path)
    assert main(["info", str(path)]) == 2
    assert "QLinearMul" in capsys.readouterr().err


def test_simcert_written_qdq_gets_no_slack(tmp_path):
    """simcert's own activation-quantized twins (float weights) load back exactly as before: slack 0."""
    from simcert.compress import quantize_activations
    from simcert.network import save

    rng = np.random.default_rng(10)
    twin = quantize_activations(_mlp(), 8, rng.normal(size=(50, 5)))
    save(twin, tmp_path / "a8.onnx")
    back = load(tmp_path / "a8.onnx")
    assert all(l.slack_steps == 0.0 for l in back.layers if isinstance(l, QuantizeActivation))


def test_slack_field():
    q = QuantizeActivation(np.array(0.5), np.array(0.0))
    assert q.slack_steps == 0.0
    with pytest.raises(InputError):
        QuantizeActivation(np.array(0.5), np.array(0.0), slack_steps=-1.0)
    with pytest.raises(InputError):
        QuantizeActivation(np.array(0.5), np.array(0.0), slack_steps=float("nan"))
    x = torch.tensor([[0.24, 0.26, 0.74]], dtype=torch.float64)
    slack = QuantizeActivation(np.array(0.5), np.array(0.0), slack_steps=0.3)
    assert torch.equal(slack.forward(x), q.forward(x))  # forward is the exact formula


def test_ort_quantize_bad_input_leaves_no_file(tmp_path):
    out = tmp_path / "q.onnx"
    with pytest.raises(InputError, match="calibration"):
        ort_quantize(_mlp(), out, np.zeros((10, 4)))
    with pytest.raises(InputError, match="QOperator"):
        ort_quantize(_mlp(), out, np.zeros((10, 5)), fmt="qoperator", weight_bits=4)
    with pytest.raises(InputError):
        ort_quantize(_mlp(), out, np.zeros((10, 5)), activation_type="int16")
    assert not out.exists() and list(tmp_path.iterdir()) == []


def _max_int8_code(path) -> int:
    m = onnx.load(str(path))
    return max(int(np.abs(nh.to_array(t).astype(np.int64)).max()) for t in m.graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and len(t.dims) >= 2)


def test_int8_weights_use_7_bit_codes_unless_asked_and_full_codes_warn(tmp_path, capsys):
    """ORT's u8s8 kernels on x86 CPUs without VNNI add pairs of products in saturating int16: `ort_quantize`
    writes 7-bit weight codes by default (no pair can overflow), and a model with 8-bit activations and
    larger codes loads with a warning that `simcert info` prints (exit 0)."""
    rng = np.random.default_rng(3)
    cal = rng.normal(size=(100, 5))
    safe, full = tmp_path / "safe.onnx", tmp_path / "full.onnx"
    ort_quantize(_mlp(), safe, cal)
    ort_quantize(_mlp(), full, cal, reduce_range=False)
    assert _max_int8_code(safe) <= 64 < _max_int8_code(full)
    assert "warnings" not in load(safe).meta and "warnings" not in load(safe).summary()
    warning = load(full).meta["warnings"][0]
    assert "saturate" in warning and "reduce_range" in warning
    assert main(["info", str(full)]) == 0
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and str(full) in err
    assert main(["info", str(safe)]) == 0
    assert "warning" not in capsys.readouterr().err
    # weight-only quantization (float activations) runs no integer kernel: no warning
    from simcert.compress import quantize_weights
    from simcert.network.io import save
    w8 = tmp_path / "w8.onnx"
    save(quantize_weights(_mlp(), 8), str(w8))
    assert "warnings" not in load(w8).meta
    # the CLI: 7-bit codes by default, all codes with --full-range (refused for simcert's own quantizer)
    src = tmp_path / "f.onnx"
    save(_mlp(), str(src))
    (tmp_path / "cal.csv").write_text("\n".join(",".join(map(str, row)) for row in cal))
    for extra, limit in (([], 64), (["--full-range"], 127)):
        out = tmp_path / f"cli{len(extra)}.onnx"
        assert main(["compress", str(src), "--to", "int8", "--activations", "8", "--quantizer", "onnxruntime",
                     "--calibration", str(tmp_path / "cal.csv"), "-o", str(out), *extra]) == 0
        assert _max_int8_code(out) <= limit and (limit == 64) == (_max_int8_code(out) <= 64)
    capsys.readouterr()
    assert main(["compress", str(src), "--to", "int8", "--full-range", "-o", str(tmp_path / "x.onnx")]) == 2
    assert "--full-range" in capsys.readouterr().err and not (tmp_path / "x.onnx").exists()
