"""Vision CNN and MNIST K-pixel suites on tiny sizes: rows are sane, and every certified bound contains the
target difference g_label - f_label of both networks on 1,000 random points (and 50 corners) of the region;
every "holds" verdict agrees with those points. The networks are run by onnxruntime (MLPs saved in float64;
the CNNs in float32, as onnxruntime has no float64 Conv: there the float64 forward passes are checked against
onnxruntime to 1e-4 and the containment is checked on the float64 values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from simcert.bench import cnn, kpixel
from simcert.errors import InputError
from simcert.network import Network
from simcert.network.io import save
from simcert.spec import Box

TOL = 1e-7  # float64 forward passes of small networks agree with simcert's to ~1e-12


def _ort(net: Network, path: Path, dtype: type = np.float64):
    """An onnxruntime runner for `net` saved in `dtype`: x (B, n) -> (B, m) in float64."""
    save(net, path, dtype=dtype)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]

    def run(x: np.ndarray) -> np.ndarray:
        xs = x.reshape(len(x), *net.input_shape).astype(dtype)
        if isinstance(inp.shape[0], int) and inp.shape[0] == 1:
            out = np.concatenate([sess.run(None, {inp.name: xi[None]})[0].reshape(1, -1) for xi in xs])
        else:
            out = sess.run(None, {inp.name: xs})[0].reshape(len(x), -1)
        return out.astype(np.float64)

    return run


def _points(lo: np.ndarray, hi: np.ndarray, n: int = 1000, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    corners = np.where(rng.random((50, lo.size)) < 0.5, lo, hi)
    return np.concatenate([rng.uniform(lo, hi, (n, lo.size)), corners])


def _check_bound_rows(rows: list[dict], diff: np.ndarray) -> None:
    for r in rows:
        assert r["lower"] <= r["upper"], r
        assert r["width"] == pytest.approx(r["upper"] - r["lower"])
        assert r["time_s"] >= 0
        assert r["lower"] <= diff.min() + TOL, (r["method"], r["lower"], diff.min())
        assert r["upper"] >= diff.max() - TOL, (r["method"], r["upper"], diff.max())
        assert r["sampled_lower"] <= r["sampled_upper"]
        assert cnn.bound_is_sound({k: str(v) for k, v in r.items()})


def _check_against_milp(rows: list[dict]) -> None:
    """An optimal MILP bound is the exact range (widened by ~1e-9): every sound engine contains it."""
    milp = [r for r in rows if r["method"] == "milp" and r["result"] == "optimal"]
    for m in milp:
        for r in rows:
            assert r["lower"] <= m["lower"] + 1e-6 and r["upper"] >= m["upper"] - 1e-6, (r["method"], r, m)


def test_cnn_suite_tiny_is_sound(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    rows = list(cnn.cnn_suite(images=1, radii=(2,), timeout=2.0, milp_time=5.0))
    model = [r for r in rows if r["kind"] == "model"]
    assert [r["twin"] for r in model] == ["reference", *cnn.TWINS]
    assert model[0]["lower"] > 0.9  # the reference classifies >90% of test digits
    assert all(0.9 < r["upper"] <= 1.0 for r in model)

    f = cnn.train_cnn()
    twins = cnn.cnn_twins(f)
    x, y = cnn.digits_test_set(1)
    box = Box.linf(x[0], 2 / 255, clip=(0.0, 1.0))
    pts = _points(box.lower, box.upper)
    fy = f(pts)
    np.testing.assert_allclose(_ort(f, tmp_path / "f.onnx", np.float32)(pts), fy, rtol=0, atol=1e-4)
    for name, g in twins.items():
        gy = g(pts)
        np.testing.assert_allclose(_ort(g, tmp_path / f"{name}.onnx", np.float32)(pts), gy, rtol=0, atol=1e-4)
        diff = gy[:, y[0]] - fy[:, y[0]]
        bounds = [r for r in rows if r["kind"] == "bound" and r["twin"] == name]
        assert [r["method"] for r in bounds] == list(cnn.METHODS)  # every engine handles the conv twin
        assert not any(str(r["result"]).startswith("unsupported") for r in bounds)
        _check_bound_rows(bounds, diff)
        _check_against_milp(bounds)
        by = {r["method"]: r for r in bounds}
        assert by["diff"]["width"] <= by["interval"]["width"]
        for r in (r for r in rows if r["kind"] == "verify" and r["twin"] == name):
            assert r["result"] in ("holds", "violated", "unknown")
            if r["result"] == "holds" and r["property"] == "top1":
                assert (gy.argmax(1) == fy.argmax(1)).all()
            if r["result"] == "holds" and r["property"].startswith("eps"):
                assert np.abs(gy - fy).max() <= cnn.EPS
    # a float16 twin's label difference is tiny: the differential engine certifies it within 0.05 here
    f16_diff = next(r for r in rows if r["kind"] == "bound" and r["twin"] == "float16" and r["method"] == "diff")
    assert f16_diff["width"] < 0.05
    page = "\n".join(cnn.render_section([{k: str(v) for k, v in r.items()} for r in rows]))
    assert "## Vision CNN" in page and f"**{len(rows) - 4 - 6} of {len(rows) - 4 - 6}**" in page


def test_engines_keep_convolutions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every engine runs the conv layers as conv2d / conv_transpose2d on image-shaped tensors."""
    from simcert.bench.suites import _single_pass
    from simcert.twin import Twin

    seen: list[tuple[int, ...]] = []
    conv, convt = torch.nn.functional.conv2d, torch.nn.functional.conv_transpose2d

    def spy(fn):
        def wrapped(x, *a, **k):
            seen.append(tuple(x.shape[1:]))
            return fn(x, *a, **k)
        return wrapped

    f = cnn.train_cnn()
    twin = Twin(f, cnn.cnn_twins(f, ["int8"])["int8"])
    x, y = cnn.digits_test_set(1)
    monkeypatch.setattr(torch.nn.functional, "conv2d", spy(conv))
    monkeypatch.setattr(torch.nn.functional, "conv_transpose2d", spy(convt))
    for method in ("interval", "crown", "alpha-crown", "diff-forward", "diff"):
        seen.clear()
        _single_pass(twin, method, np.clip(x[0] - 0.01, 0, 1), np.clip(x[0] + 0.01, 0, 1), int(y[0]))
        assert seen, method
        assert all(s[0] in (1, 8, 16) and len(s) == 3 for s in seen), (method, set(seen))


def test_kpixel_box() -> None:
    img = np.full(10, 0.5)
    lo, hi = kpixel.kpixel_box(img, np.array([3, 7, 1]), 2)
    assert lo.tolist() == [0.5, 0.5, 0.5, 0, 0.5, 0.5, 0.5, 0, 0.5, 0.5]
    assert hi.tolist() == [0.5, 0.5, 0.5, 1, 0.5, 0.5, 0.5, 1, 0.5, 0.5]
    with pytest.raises(InputError):
        kpixel.kpixel_box(img, np.array([3, 7, 1]), 4)


def test_kpixel_suite_tiny_is_sound(bench: Path, tmp_path: Path) -> None:
    from simcert.bench.suites import _test_inputs
    from simcert.compress import to_float16
    from simcert.network.io import load

    torch.set_num_threads(1)
    rows = list(kpixel.mnist_kpixel(images=1, ks=(10,), milp_images=1, milp_ks=(10,), milp_time=5.0))
    assert [r["method"] for r in rows] == list(kpixel.METHODS)
    f = load(bench / "reludiff-icse2020/nnet/mnist_relu_3_100.nnet")
    g = to_float16(load(bench / "neurodiff-ase2020/compressed_nnets/mnist_relu_3_100_16bit.nnet"))
    labels, x = _test_inputs("mnist", 255.0)
    pix = kpixel.random_pixels(bench)
    assert pix.shape == (100, 30) and pix.min() >= 0 and pix.max() < 784
    lo, hi = kpixel.kpixel_box(x[0], pix[0], 10)
    assert int((hi > lo).sum()) <= 10 and ((hi > lo) | (lo == x[0])).all()
    pts = _points(lo, hi)
    k = int(labels[0])
    diff = _ort(g, tmp_path / "g.onnx")(pts)[:, k] - _ort(f, tmp_path / "f.onnx")(pts)[:, k]
    _check_bound_rows(rows, diff)
    _check_against_milp(rows)
    for r in rows:
        assert r["proven_eps1"] == int(r["lower"] >= -1 and r["upper"] <= 1)
    by = {r["method"]: r for r in rows}
    assert by["diff"]["width"] <= by["crown"]["width"] <= by["interval"]["width"]
    page = "\n".join(kpixel.render_section([{k2: str(v) for k2, v in r.items()} for r in rows]))
    assert "K=10" in page and f"**{len(rows)} of {len(rows)}**" in page


def test_registered_suite_and_render(bench: Path, tmp_path: Path) -> None:
    """`simcert bench cnn` (via run_suite) writes a CSV that `simcert bench render` turns into the section."""
    from simcert.bench.render import render_benchmarks
    from simcert.bench.runner import SUITE_NAMES, run_suite

    assert {"cnn", "mnist-kpixel"} <= set(SUITE_NAMES)
    path = run_suite("cnn", str(tmp_path / "data" / "cnn.csv"), methods=("diff",), limit=6)
    with path.open() as fh:
        lines = fh.read().splitlines()
    assert len(lines) == 7 and lines[0].startswith("kind,twin,radius_255")
    page = render_benchmarks(tmp_path / "data", tmp_path / "benchmarks.md").read_text()
    assert "## Vision CNN (trained here)" in page and "| diff |" in page
    assert "## MNIST 3x100, float16 twin, K random pixels" in page and "_No results yet" in page
