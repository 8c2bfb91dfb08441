"""Every bad input of issue 2 item 6: exit code 2, one line `simcert: error: ...` on stderr, no traceback,
and no half-written --json / -o file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from simcert.network.io import save

from .conftest import mlp


def assert_bad(r, *fragments: str) -> None:
    """Exit 2 with exactly one stderr line that names the problem."""
    assert r.code == 2, (r.code, r.out, r.err)
    lines = r.err.strip("\n").split("\n")
    assert len(lines) == 1, r.err
    assert lines[0].startswith("simcert: error: "), r.err
    assert "Traceback" not in r.err
    for frag in fragments:
        assert frag in lines[0], (frag, lines[0])


def verify_args(pair, *extra: object) -> list[object]:
    return ["verify", pair.ref, pair.twin, *pair.region(), *extra]


def test_missing_model_file(run, pair, tmp_path: Path) -> None:
    missing = tmp_path / "nope.onnx"
    assert_bad(run("verify", missing, pair.twin, *pair.region(), "--eps", 0.1), "nope.onnx", "no such file")
    assert_bad(run("info", tmp_path / "nope.nnet"), "nope.nnet", "no such file")
    assert_bad(run("compress", missing, "--to", "int8", "-o", tmp_path / "o.onnx"), "nope.onnx")


def test_missing_region_file(run, pair, tmp_path: Path) -> None:
    r = run("verify", pair.ref, pair.twin, "--lower", tmp_path / "no.csv", "--upper", pair.upper, "--eps", 0.1)
    assert_bad(r, "no.csv")
    assert_bad(run(*verify_args(pair, "--eps", 0.1)[:3], "--vnnlib", tmp_path / "x.vnnlib", "--eps", 0.1), "x.vnnlib")


def test_truncated_onnx(run, pair, tmp_path: Path) -> None:
    good = save(pair.f, tmp_path / "good.onnx")
    data = good.read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    assert_bad(run("verify", tmp_path / "cut.onnx", pair.twin, *pair.region(), "--eps", 0.1), "cut.onnx")
    assert_bad(run("info", tmp_path / "cut.onnx"), "cut.onnx")


def test_truncated_nnet(run, pair, tmp_path: Path) -> None:
    text = pair.ref.read_text()
    (tmp_path / "cut.nnet").write_text(text[: len(text) // 2])
    assert_bad(run("verify", pair.ref, tmp_path / "cut.nnet", *pair.region(), "--eps", 0.1), "cut.nnet")


def test_nan_weight(run, pair, tmp_path: Path) -> None:
    lines = pair.twin.read_text().splitlines()
    first_weight = next(i for i, l in enumerate(lines) if not l.startswith("//")) + 7  # after the header block
    values = lines[first_weight].split(",")
    values[0] = "nan"
    lines[first_weight] = ",".join(values)
    (tmp_path / "nan.nnet").write_text("\n".join(lines) + "\n")
    r = run("verify", pair.ref, tmp_path / "nan.nnet", *pair.region(), "--eps", 0.1)
    assert_bad(r, "nan.nnet")
    assert "nan" in r.err.lower()


def test_twins_with_different_input_sizes(run, pair, tmp_path: Path) -> None:
    other = save(mlp([3, 8, 2], np.random.default_rng(5)), tmp_path / "three.nnet")
    assert_bad(run("verify", pair.ref, other, *pair.region(), "--eps", 0.1), "different inputs", "4", "3")


def test_region_size_mismatch(run, pair, tmp_path: Path) -> None:
    (tmp_path / "lo.csv").write_text("0,0,0\n")
    (tmp_path / "hi.csv").write_text("1,1,1\n")
    r = run("verify", pair.ref, pair.twin, "--lower", tmp_path / "lo.csv", "--upper", tmp_path / "hi.csv", "--eps", 0.1)
    assert_bad(r, "region has 3 inputs", "expects 4")
    (tmp_path / "hi4.csv").write_text("1,1,1,1\n")
    r = run("verify", pair.ref, pair.twin, "--lower", tmp_path / "lo.csv", "--upper", tmp_path / "hi4.csv", "--eps", 0.1)
    assert_bad(r, "lo.csv", "hi4.csv")


def test_inverted_box(run, pair, tmp_path: Path) -> None:
    (tmp_path / "lo.csv").write_text("0,0,0.5,0\n")
    (tmp_path / "hi.csv").write_text("1,1,0.4,1\n")
    r = run("verify", pair.ref, pair.twin, "--lower", tmp_path / "lo.csv", "--upper", tmp_path / "hi.csv", "--eps", 0.1)
    assert_bad(r, "empty", "[2]")


def test_empty_clipped_ball_and_bad_csv(run, pair, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("5,0,0,0\n")
    r = run("verify", pair.ref, pair.twin, "--center", tmp_path / "c.csv", "--radius", 0.1, "--clip", "0,1",
            "--eps", 0.1)
    assert_bad(r, "center [0]")
    (tmp_path / "bad.csv").write_text("0,abc,0,0\n")
    r = run("verify", pair.ref, pair.twin, "--lower", tmp_path / "bad.csv", "--upper", pair.upper, "--eps", 0.1)
    assert_bad(r, "bad.csv:1", "'abc'")
    r = run("verify", pair.ref, pair.twin, "--center", tmp_path / "c.csv", "--radius", 0.1, "--clip", "1,0",
            "--eps", 0.1)
    assert_bad(r, "--clip")


def test_unsupported_op(run, pair, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(4, 6)).astype(np.float32), "W1"),
             numpy_helper.from_array(rng.normal(size=(6, 2)).astype(np.float32), "W2")]
    nodes = [helper.make_node("MatMul", ["x", "W1"], ["h"]), helper.make_node("Sin", ["h"], ["s"]),
             helper.make_node("MatMul", ["s", "W2"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    (tmp_path / "sin.onnx").write_bytes(model.SerializeToString())
    assert_bad(run("verify", pair.ref, tmp_path / "sin.onnx", *pair.region(), "--eps", 0.1), "sin.onnx", "Sin")
    assert_bad(run("info", tmp_path / "sin.onnx"), "Sin")


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--eps", "-1"], "eps"),
        (["--eps", "nan"], "eps"),
        (["--eps", "0.1", "--timeout", "-5"], "timeout"),
        (["--eps", "0.1", "--threads", "0"], "--threads"),
        (["--eps", "0.1", "--method", "magic"], "--method"),
        (["--eps", "0.1", "--output", "7"], "output index 7"),
        (["--delta-top1", "0.2"], "delta"),
        (["--eps", "0.1", "--top1"], "exactly one property"),
        ([], "exactly one property"),
        (["--top1", "--output", "0"], "--output applies to --eps only"),
        (["--eps", "abc"], "--eps"),
        (["--eps", "0.1", "--bogus"], "--bogus"),
    ],
)
def test_out_of_range_verify_options(run, pair, extra: list[str], fragment: str) -> None:
    assert_bad(run(*verify_args(pair), *extra), fragment)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_device(run, pair) -> None:
    assert_bad(run(*verify_args(pair, "--eps", "0.1", "--device", "cuda")), "no CUDA device")


def test_region_option_combinations(run, pair, tmp_path: Path) -> None:
    assert_bad(run("verify", pair.ref, pair.twin, "--eps", 0.1), "no region given")
    assert_bad(run(*verify_args(pair, "--acas-prop", "3", "--eps", 0.1)), "conflicting regions")
    assert_bad(run("verify", pair.ref, pair.twin, "--lower", pair.lower, "--eps", 0.1), "--upper")
    assert_bad(run(*verify_args(pair, "--clip", "0,1", "--eps", 0.1)), "--clip")
    # ACAS boxes have 5 inputs; this model has 4
    assert_bad(run("verify", pair.ref, pair.twin, "--acas-prop", "3", "--eps", 0.1), "5 inputs")
    assert_bad(run("verify", pair.ref, pair.twin, "--acas-prop", "99", "--eps", 0.1), "99")


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--to", "int3"], "int3"),
        (["--to", "int8", "--prune", "1.5"], "1.5"),
        (["--prune", "-0.1"], "-0.1"),
        (["--to", "float16", "--per-channel"], "per-channel"),
        (["--structured"], "structured"),
        (["--to", "int8", "--activations", "8"], "calibration"),
        (["--to", "int8", "--activations", "40", "--calibration", "CAL"], "40"),
        ([], "nothing to do"),
    ],
)
def test_out_of_range_compress_options(run, pair, tmp_path: Path, extra: list[str], fragment: str) -> None:
    (tmp_path / "cal.csv").write_text("0,0,0,0\n1,1,1,1\n")
    extra = [str(tmp_path / "cal.csv") if e == "CAL" else e for e in extra]
    out = tmp_path / "twin.onnx"
    assert_bad(run("compress", pair.ref, *extra, "-o", out), fragment)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cal.csv"]


def test_compress_bad_output(run, pair, tmp_path: Path) -> None:
    assert_bad(run("compress", pair.ref, "--to", "int8", "-o", tmp_path / "twin.h5"), "twin.h5", ".onnx or .nnet")
    assert_bad(run("compress", pair.ref, "--to", "int8", "-o", tmp_path / "no/dir/t.onnx"), "does not exist")
    assert_bad(run("compress", pair.ref, "--to", "int8"), "-o")


def test_failed_run_leaves_no_json_file(run, pair, tmp_path: Path) -> None:
    out = tmp_path / "out" / "cert.json"
    out.parent.mkdir()
    (tmp_path / "lo.csv").write_text("0,0,1.5,0\n")
    r = run("verify", pair.ref, pair.twin, "--lower", tmp_path / "lo.csv", "--upper", pair.upper, "--eps", "0.1",
            "--json", out)
    assert_bad(r, "empty")
    assert list(out.parent.iterdir()) == []  # neither the file nor a temporary file
    assert_bad(run(*verify_args(pair, "--eps", "-1", "--json", out)), "eps")
    assert list(out.parent.iterdir()) == []
    assert_bad(run(*verify_args(pair, "--eps", "0.1", "--json", tmp_path / "missing" / "c.json")), "does not exist")
    assert_bad(run("info", pair.ref, "--json", tmp_path / "missing" / "c.json"), "does not exist")


def test_existing_json_file_is_kept_on_failure(run, pair, tmp_path: Path) -> None:
    out = tmp_path / "cert.json"
    out.write_text('{"old": true}\n')
    assert_bad(run(*verify_args(pair, "--eps", "-1", "--json", out)), "eps")
    assert out.read_text() == '{"old": true}\n'


def test_rsm_and_bench_bad_input(run, pair, tmp_path: Path) -> None:
    assert_bad(run("bench", "nosuch"), "unknown benchmark suite")
    assert_bad(run("rsm", *verify_args(pair)[1:], "--timeout", "-1"), "timeout")
    assert_bad(run("rsm", *verify_args(pair)[1:3], "--inputs", tmp_path / "missing.csv", "--radius", "0.1"), "missing.csv")


def test_unknown_command_and_option(run) -> None:
    assert_bad(run("frobnicate"), "frobnicate")
    assert_bad(run("info"), "MODEL")


def test_console_script_process_has_no_traceback(pair, tmp_path: Path) -> None:
    """The real process: exit status 2 and one stderr line, through `python -m simcert.cli`."""
    (tmp_path / "cut.nnet").write_text(pair.ref.read_text()[:200])
    proc = subprocess.run(
        [sys.executable, "-m", "simcert.cli", "verify", str(pair.ref), str(tmp_path / "cut.nnet"), *pair.region(),
         "--eps", "0.1"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("simcert: error: ")
    assert "cut.nnet" in proc.stderr


def test_certify_bad_options(run, pair) -> None:
    args = ["certify", pair.ref, pair.twin, *pair.region()]
    assert_bad(run(*args, "--eps", 0.1, "--samples", 10, "--budget", 1), "--samples", "--budget")
    assert_bad(run(*args, "--eps", -1), "eps")
    assert_bad(run(*args), "--eps")
    assert_bad(run(*args, "--eps", 0.1, "--method", "magic"), "--method")
