"""Bad inputs: every failure is an InputError with a one-line message naming the file and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from simcert.errors import InputError, ModelFormatError, UnsupportedOpError
from simcert.network import Dense, Network, QuantizeActivation, ReLU
from simcert.network.io import load, save


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    return msg


def _mlp_model(nodes_after_hidden: list | None = None, w1: np.ndarray | None = None) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = {
        "W1": rng.normal(size=(4, 6)).astype(np.float32) if w1 is None else w1,
        "b1": np.zeros(6, dtype=np.float32),
        "W2": rng.normal(size=(6, 3)).astype(np.float32),
    }
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"], name="dense1"), helper.make_node("Add", ["h", "b1"], ["a"])]
    nodes += nodes_after_hidden or [helper.make_node("Relu", ["a"], ["r"])]
    nodes += [helper.make_node("MatMul", ["r", "W2"], ["y"], name="dense2")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _write(tmp_path: Path, m: onnx.ModelProto, name: str = "bad.onnx") -> Path:
    p = tmp_path / name
    p.write_bytes(m.SerializeToString())
    return p


def test_missing_file_and_unknown_extension(tmp_path: Path) -> None:
    for name in ("nope.onnx", "nope.nnet", "nope.h5"):
        with pytest.raises(InputError, match=rf"nope\.{name[5:]}: no such file") as e:
            load(tmp_path / name)
        _one_line(e)
    (tmp_path / "model.h5").write_text("x")
    with pytest.raises(InputError, match=r"model\.h5: unknown model format '\.h5'"):
        load(tmp_path / "model.h5")
    (tmp_path / "dir.onnx").mkdir()
    with pytest.raises(InputError, match="is a directory"):
        load(tmp_path / "dir.onnx")
    with pytest.raises(InputError, match="cannot load a model from a int"):
        load(3)


def test_truncated_and_garbage_onnx(tmp_path: Path) -> None:
    data = _mlp_model().SerializeToString()
    for cut in (len(data) - 7, len(data) // 2, 60, 1):
        p = tmp_path / f"cut{cut}.onnx"
        p.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError, match=rf"cut{cut}\.onnx") as e:
            load(p)
        _one_line(e)
    (tmp_path / "empty.onnx").write_bytes(b"")
    with pytest.raises(ModelFormatError, match=r"empty\.onnx: file is empty"):
        load(tmp_path / "empty.onnx")
    (tmp_path / "text.onnx").write_text("this is not a protobuf at all\n")
    with pytest.raises(ModelFormatError, match=r"text\.onnx"):
        load(tmp_path / "text.onnx")


def test_truncated_benchmark_onnx(bench: Path, tmp_path: Path) -> None:
    data = (bench / "vnncomp2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx").read_bytes()
    for cut in (len(data) - 1, len(data) - 1000, len(data) // 2, 500):
        p = tmp_path / "acas.onnx"
        p.write_bytes(data[:cut])
        with pytest.raises(ModelFormatError, match=r"acas\.onnx"):
            load(p)


def test_truncated_nnet(tmp_path: Path) -> None:
    p = tmp_path / "t.nnet"
    p.write_text("2,2,1,2,\n2,2,1,\n0,\n0,0,\n1,1,\n0,0,0,\n1,1,1,\n1,2,\n")
    with pytest.raises(ModelFormatError, match=r"t\.nnet: file ends after line 8; expected row 2 of the layer 1"):
        load(p)


def test_nan_weight_is_named(tmp_path: Path) -> None:
    w = np.ones((4, 6), dtype=np.float32)
    w[1, 2] = np.nan
    with pytest.raises(ModelFormatError, match=r"bad\.onnx: constant 'W1' \(input of MatMul node 'dense1'\) contains "
                                               r"NaN") as e:
        load(_write(tmp_path, _mlp_model(w1=w)))
    _one_line(e)
    w[1, 2] = np.inf
    with pytest.raises(ModelFormatError, match="NaN or infinite"):
        load(_write(tmp_path, _mlp_model(w1=w)))


def test_maxpool_is_unsupported(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], name="conv"),
        helper.make_node("MaxPool", ["c"], ["p"], kernel_shape=[2, 2], name="pool1"),
        helper.make_node("Flatten", ["p"], ["y"]),
    ]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 5, 5])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])],
                          [numpy_helper.from_array(rng.normal(size=(2, 1, 2, 2)).astype(np.float32), "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(UnsupportedOpError, match=r"bad\.onnx: MaxPool node 'pool1': operator MaxPool is not "
                                                 r"supported") as e:
        load(_write(tmp_path, m))
    _one_line(e)


def test_softmax_in_the_middle_is_unsupported(tmp_path: Path) -> None:
    m = _mlp_model([helper.make_node("Softmax", ["a"], ["r"], name="sm")])
    with pytest.raises(UnsupportedOpError, match=r"bad\.onnx: Softmax in the middle of the network") as e:
        load(_write(tmp_path, m))
    _one_line(e)


def test_other_unsupported_graphs(tmp_path: Path) -> None:
    m = _mlp_model([helper.make_node("Tanh", ["a"], ["r"], name="t")])
    with pytest.raises(UnsupportedOpError, match="Tanh"):
        load(_write(tmp_path, m))
    m = _mlp_model()
    m.graph.input[0].type.tensor_type.shape.dim[1].dim_param = "F"
    with pytest.raises(UnsupportedOpError, match="dynamic dimensions"):
        load(_write(tmp_path, m))
    assert load(_write(tmp_path, m), input_shape=(4,)).input_shape == (4,)  # fixed by the caller
    m = _mlp_model([helper.make_node("Relu", ["a"], ["r"])])
    m.graph.node[0].input[1] = "W_missing"
    with pytest.raises(ModelFormatError, match="'W_missing' is not defined"):
        load(_write(tmp_path, m))


def test_failed_save_leaves_no_file(tmp_path: Path) -> None:
    net = Network([Dense(np.eye(2), np.zeros(2)), QuantizeActivation(np.array(0.1), np.array(0.0), rounding="half_up"),
                   ReLU(), Dense(np.ones((1, 2)), np.zeros(1))], (2,))
    with pytest.raises(InputError, match="half_up"):
        save(net, tmp_path / "q.onnx")
    with pytest.raises(InputError, match="dense-ReLU MLPs"):
        save(net, tmp_path / "q.nnet")
    with pytest.raises(InputError, match="unknown model format"):
        save(net, tmp_path / "q.txt")
    with pytest.raises(InputError, match="does not exist"):
        save(Network([Dense(np.eye(2), np.zeros(2))], (2,)), tmp_path / "missing_dir" / "m.onnx")
    assert list(tmp_path.iterdir()) == []
    target = tmp_path / "keep.nnet"
    target.write_text("old")
    with pytest.raises(InputError):
        save(net, target)
    assert target.read_text() == "old"  # an existing file is untouched by a failed save
