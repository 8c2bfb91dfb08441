"""info, compress and demo end to end; the progress view renders."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from simcert.network.io import load
from simcert.report.terminal import SearchProgress


def test_info_table_and_json(run, pair, tmp_path: Path) -> None:
    r = run("info", pair.ref)
    assert r.code == 0, r.err
    for text in ("dense 4->32", "(32,)", "parameters", "1,282", "distinct weight values", "float16-exact"):
        assert text in r.out, text
    out = tmp_path / "info.json"
    r = run("info", pair.ref, "--json", out)
    assert r.code == 0
    d = json.loads(out.read_text())
    assert d["model"]["summary"]["parameters"] == 4 * 32 + 32 + 32 * 32 + 32 + 32 * 2 + 2
    assert d["model"]["format"] == "nnet" and len(d["model"]["sha256"]) == 64
    assert d["shapes"] == [[4], [32], [32], [32], [32], [2]]
    # a .nnet written by simcert has an unbounded input domain: "-inf"/"inf" strings, strict JSON
    assert d["raw_input_domain"] == [["-inf"] * 4, ["inf"] * 4]
    r = run("info", pair.ref, "--json", "-")
    assert json.loads(r.out)["command"] == "info"


def test_compress_targets_round_trip(run, pair, tmp_path: Path) -> None:
    f = load(pair.ref)
    for target, distinct_max in (("float16", None), ("int8", 255 * 3), ("int4", 15 * 3)):
        out = tmp_path / f"{target}.onnx"
        r = run("compress", pair.ref, "--to", target, "-o", out)
        assert r.code == 0, r.err
        assert r.out.count("\n") == 1 and r.out.startswith(f"wrote {out}: {target} twin of {pair.ref}")
        g = load(out)
        w = np.concatenate([l.weight.ravel() for l in g.layers if hasattr(l, "weight")])
        if target == "float16":
            assert np.array_equal(w.astype(np.float16).astype(np.float64), w)
        else:
            assert np.unique(w).size <= distinct_max
        x = np.random.default_rng(0).uniform(-1, 1, (100, 4))
        assert 0 < np.abs(g(x) - f(x)).max() < 0.5
    r = run("compress", pair.ref, "--to", "int8", "--per-channel", "--prune", 0.5, "--structured",
            "-o", tmp_path / "s.nnet")
    assert r.code == 0, r.err
    assert load(tmp_path / "s.nnet").summary()["layers"][0] == "dense 4->16"
    (tmp_path / "cal.csv").write_text("\n".join(",".join(map(str, row)) for row in np.eye(4)) + "\n")
    r = run("compress", pair.ref, "--activations", 8, "--calibration", tmp_path / "cal.csv", "-o", tmp_path / "a.onnx")
    assert r.code == 0, r.err
    assert load(tmp_path / "a.onnx").summary()["activation_quantized"]


def test_demo(run, tmp_path: Path) -> None:
    """The demo's files are usable with the CLI: re-verify its float16 control twin (tests/demo covers the rest)."""
    out = tmp_path / "demo"
    r = run("demo", "--out", out, "--quiet")
    assert r.code == 0, r.err
    cert = json.loads((out / "control" / "float16.eps.cert.json").read_text())
    assert cert["verdict"] == "holds"
    c = out / "control"
    r = run("verify", c / "reference.onnx", c / "float16.onnx", "--lower", c / "region_lower.csv",
            "--upper", c / "region_upper.csv", "--eps", 0.02)
    assert r.code == 0, r.err


def test_progress_view_renders() -> None:
    class State:
        lower = torch.tensor([-0.02, -0.5])
        upper = torch.tensor([0.03, 0.25])
        proven_fraction = 0.4
        frontier = 17
        done = True

    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=150)
    with SearchProgress(console, rows=["g_0 - f_0", "g_1 - f_1"], refresh_s=0) as progress:
        progress(State())
        progress._progress.refresh()
    text = buf.getvalue()
    assert "open boxes 17" in text and "g_1 - f_1 in [-0.5, 0.25]" in text and "40%" in text


def test_compress_with_onnxruntime_then_verify(run, pair, tmp_path: Path) -> None:
    """`--quantizer onnxruntime` writes a QDQ twin that ONNX Runtime runs; simcert verifies it (diff engine,
    quantizers aligned) and its verdict agrees with sampling; bad combinations exit 2 without a file."""
    import onnxruntime as ort

    rng = np.random.default_rng(0)
    (tmp_path / "cal.csv").write_text("\n".join(",".join(map(str, row)) for row in rng.uniform(-1, 1, (200, 4))))
    out = tmp_path / "q.onnx"
    r = run("compress", pair.ref, "--to", "int8", "--activations", 8, "--calibration", tmp_path / "cal.csv",
            "--quantizer", "onnxruntime", "-o", out)
    assert r.code == 0, r.err
    assert "onnxruntime qdq int8" in r.out
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = rng.uniform(-0.1, 0.1, (2000, 4))
    y_ort = sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]
    seen = float(np.abs(y_ort - load(pair.ref)(x)).max())
    (tmp_path / "lo.csv").write_text(",".join(["-0.1"] * 4))
    (tmp_path / "hi.csv").write_text(",".join(["0.1"] * 4))
    r = run("verify", pair.ref, out, "--lower", tmp_path / "lo.csv", "--upper", tmp_path / "hi.csv",
            "--eps", 0.5 * seen, "--timeout", 20)
    assert r.code == 1, r.out  # violated: sampling already shows a larger difference
    r = run("verify", pair.ref, out, "--lower", tmp_path / "lo.csv", "--upper", tmp_path / "hi.csv",
            "--eps", max(4 * seen, 0.05), "--timeout", 60)
    assert r.code in (0, 3), r.out
    assert "method: diff" in r.out
    for bad in (["--to", "int8", "--quantizer", "onnxruntime"],  # no --activations
                ["--to", "float16", "--activations", 8, "--quantizer", "onnxruntime"]):
        r = run("compress", pair.ref, *bad, "--calibration", tmp_path / "cal.csv", "-o", tmp_path / "bad.onnx")
        assert r.code == 2 and ("onnxruntime" in r.err or "--activations" in r.err), r.err
        assert not (tmp_path / "bad.onnx").exists()
