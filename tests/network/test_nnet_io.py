""".nnet reader/writer: every benchmark file against an independent numpy evaluation, round trips, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simcert.errors import InputError, ModelFormatError
from simcert.network import Conv2d, Dense, ElementwiseAffine, Network, ReLU, Reshape
from simcert.network.io import load, save
from simcert.network.nnet_io import load_nnet, nnet_text
from simcert.network.onnx_io import load_onnx
from simcert.paths import benchmarks_dir

_BENCH = benchmarks_dir()
_NNET_FILES = sorted(_BENCH.glob("**/*.nnet")) if _BENCH else []


def _reference(path: Path) -> dict:
    """A deliberately simple, separate .nnet parser: lines, then one flat stream of weight numbers."""
    lines = [l.strip() for l in path.read_text().splitlines() if l.strip() and not l.strip().startswith("//")]
    rows = [[float(t) for t in l.split(",") if t.strip()] for l in lines]
    n_layers, n_in = int(rows[0][0]), int(rows[0][1])
    sizes = [int(v) for v in rows[1]]
    mins, maxs, means, ranges = rows[3], rows[4], rows[5], rows[6]
    stream = iter(v for r in rows[7:] for v in r)
    params = []
    for k in range(n_layers):
        w = np.array([[next(stream) for _ in range(sizes[k])] for _ in range(sizes[k + 1])])
        b = np.array([next(stream) for _ in range(sizes[k + 1])])
        params.append((w, b))
    assert next(stream, None) is None
    return dict(n_in=n_in, params=params, min=np.array(mins[:n_in]), max=np.array(maxs[:n_in]),
                mean=np.array(means[:n_in]), range=np.array(ranges[:n_in]), out=(means[-1], ranges[-1]))


def _forward(params: list, x: np.ndarray) -> np.ndarray:
    h = x
    for i, (w, b) in enumerate(params):
        h = h @ w.T + b
        if i < len(params) - 1:
            h = np.maximum(h, 0.0)
    return h


@pytest.mark.parametrize("path", _NNET_FILES, ids=lambda p: str(p.relative_to(_BENCH)) if _BENCH else str(p))
def test_benchmark_nnet_matches_numpy_and_round_trips(path: Path, tmp_path: Path) -> None:
    ref = _reference(path)
    net = load_nnet(path)
    rng = np.random.default_rng(11)
    if net.input_domain is not None:
        lo, hi = net.input_domain
        np.testing.assert_allclose(lo, (ref["min"] - ref["mean"]) / ref["range"], rtol=1e-15)
        np.testing.assert_allclose(hi, (ref["max"] - ref["mean"]) / ref["range"], rtol=1e-15)
    else:  # unbounded raw inputs (HAR: +-inf, MNIST: +-FLT_MAX)
        assert np.max(np.abs(ref["min"])) >= 3.4e38 or np.max(np.abs(ref["max"])) >= 3.4e38
        lo, hi = np.full(ref["n_in"], -1.0), np.full(ref["n_in"], 1.0)
    x = rng.uniform(lo, hi, size=(1000, ref["n_in"]))
    y, expected = net(x), _forward(ref["params"], x)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    raw = rng.uniform(ref["min"].clip(-1e6), ref["max"].clip(None, 1e6), size=(10, ref["n_in"]))
    np.testing.assert_allclose(net.normalize(raw), (raw - ref["mean"]) / ref["range"], rtol=1e-12, atol=1e-12)
    assert net.nnet.output_mean == ref["out"][0] and net.nnet.output_range == ref["out"][1]

    back = load(save(net, tmp_path / "copy.nnet"))
    np.testing.assert_array_equal(back(x), y)
    for a, b in zip(net.layers, back.layers):
        if isinstance(a, Dense):
            np.testing.assert_array_equal(a.weight, b.weight)
            np.testing.assert_array_equal(a.bias, b.bias)
    np.testing.assert_array_equal(back.nnet.input_mean, net.nnet.input_mean)


def test_acas_nnet_equals_vnncomp_onnx(bench: Path) -> None:
    """README: the ReluDiff .nnet originals equal the vnncomp2021 ONNX weights exactly in float32."""
    nnet = load_nnet(bench / "reludiff-icse2020/nnet/ACASXU_run2a_1_1_batch_2000.nnet")
    onnx_net = load_onnx(bench / "vnncomp2021/acasxu/ACASXU_run2a_1_1_batch_2000.onnx")
    dn = [l for l in nnet.layers if isinstance(l, Dense)]
    do = [l for l in onnx_net.layers if isinstance(l, Dense)]
    assert len(dn) == len(do) == 7
    for a, b in zip(dn, do):
        np.testing.assert_array_equal(a.weight.astype(np.float32), b.weight)
        np.testing.assert_array_equal(a.bias.astype(np.float32), b.bias)
    x = np.random.default_rng(0).uniform(*nnet.input_domain, size=(1000, 5))
    ya, yb = nnet(x), onnx_net(x)
    np.testing.assert_allclose(ya, yb, rtol=1e-5, atol=1e-6 * np.abs(yb).max())


def test_reluval_variant_and_hand_computed_toy(bench: Path) -> None:
    acas = load_nnet(bench / "reludiff-icse2020/nnet/ACASXU_run2a_1_1_batch_2000.nnet")
    assert acas.nnet.output_mean == pytest.approx(7.5188840201005975) and acas.nnet.output_range == 373.94992
    assert acas.nnet.input_min.shape == (5,) and acas.nnet.input_min[3] == 100.0
    toy = load_nnet(bench / "reludiff-icse2020/nnet/b2layer_unquantized.nnet")
    # 2-2-2-1: h1 = relu([[1.9,-2.1],[1.1,1.0]] x), h2 = relu([[2.1,-1],[-0.9,1.1]] h1), y = h2_0 - h2_1
    x = np.array([[1.0, 0.5]])
    h1 = np.maximum([1.9 - 1.05, 1.1 + 0.5], 0)
    h2 = np.maximum([2.1 * h1[0] - h1[1], -0.9 * h1[0] + 1.1 * h1[1]], 0)
    assert toy(x)[0, 0] == pytest.approx(h2[0] - h2[1], abs=1e-12)
    np.testing.assert_allclose(toy.input_domain[0], [-0.5, -0.5])


def test_mnist_ends_relu_then_identity_layer(bench: Path) -> None:
    net = load_nnet(bench / "reludiff-icse2020/nnet/mnist_relu_3_100.nnet")
    assert [l.kind for l in net.layers] == ["dense", "relu"] * 3 + ["dense"]
    assert net.input_domain is None


# ------------------------------------------------------------------------------------ malformed files

_TOY = """// toy
2,2,1,2,
2,2,1,
0,
0.0,0.0,
1.0,1.0,
0.0,0.0,0.0,
1.0,1.0,1.0,
1.0,2.0,
3.0,4.0,
0.5,
-0.5,
1.0,-1.0,
0.25,
"""


def _write(tmp_path: Path, text: str, name: str = "m.nnet") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_toy_parses(tmp_path: Path) -> None:
    net = load_nnet(_write(tmp_path, _TOY))
    assert net(np.array([[1.0, 1.0]]))[0, 0] == pytest.approx(max(3.5, 0) - max(6.5, 0) + 0.25)


@pytest.mark.parametrize(
    "old,new,pattern",
    [
        ("3.0,4.0,", "3.0,4.x,", r"m\.nnet:10: cannot parse '4\.x'"),
        ("3.0,4.0,", "3.0,", r"m\.nnet:10: expected 2 values for row 2 of the layer 1 weights, found 1"),
        ("3.0,4.0,", "3.0,nan,", r"m\.nnet:10: layer 1 weight row 2 contains NaN"),
        ("0.25,", "inf,", r"m\.nnet:14: layer 2 bias 1 is NaN or infinite"),
        ("\n2,2,1,\n", "\n2,2,2,\n", r"m\.nnet:3: layer sizes \[2, 2, 2\] do not match"),
        ("1.0,1.0,1.0,", "1.0,0.0,1.0,", r"m\.nnet:8: an input range is zero"),
        ("0.0,0.0,0.0,", "0.0,0.0,", r"m\.nnet:7: expected at least 3 values"),
        ("0.25,\n", "0.25,\n7,\n", r"m\.nnet:15: unexpected data after the last layer"),
        ("2,2,1,2,", "2,2,1,", r"m\.nnet:2: expected 4 values for the header"),
    ],
)
def test_malformed_nnet_names_the_line(tmp_path: Path, old: str, new: str, pattern: str) -> None:
    assert old in _TOY
    with pytest.raises(ModelFormatError, match=pattern):
        load_nnet(_write(tmp_path, _TOY.replace(old, new, 1)))


def test_truncated_nnet(tmp_path: Path, bench: Path) -> None:
    text = (bench / "reludiff-icse2020/nnet/ACASXU_run2a_1_1_batch_2000.nnet").read_text()
    for cut in (len(text) // 3, len(text) - 40, 200):
        with pytest.raises(ModelFormatError, match=r"cut\.nnet(:\d+: expected|: file ends after line \d+)"):
            load_nnet(_write(tmp_path, text[:cut], "cut.nnet"))


# ------------------------------------------------------------------------------------ writer


def test_writer_emits_exact_decimals(tmp_path: Path, rng: np.random.Generator) -> None:
    w = rng.normal(size=(3, 2)) / 7.0  # not representable in short decimals
    net = Network([Dense(w, rng.normal(size=3)), ReLU(), Dense(rng.normal(size=(1, 3)), np.zeros(1))], (2,))
    text = nnet_text(net)
    assert text.splitlines()[1] == "2,2,1,3,"
    back = load_nnet(_write(tmp_path, text))
    np.testing.assert_array_equal(back.layers[0].weight, w)
    assert back.input_domain is None  # no domain: written as -inf/inf


def test_writer_merges_normalization_and_flatten(tmp_path: Path, rng: np.random.Generator) -> None:
    net = Network([Reshape((-1,)), ElementwiseAffine(np.array(2.0), np.array(-1.0)), Dense(rng.normal(size=(3, 4)),
                   rng.normal(size=3))], (2, 2))
    back = load(save(net, tmp_path / "n.nnet"))
    x = rng.uniform(-1, 1, (20, 4))
    np.testing.assert_allclose(back(x), net(x), rtol=1e-12, atol=1e-12)


def test_writer_rejects_non_mlp_without_leaving_a_file(tmp_path: Path, rng: np.random.Generator) -> None:
    conv = Network([Conv2d(rng.normal(size=(2, 1, 3, 3)), np.zeros(2)), ReLU(), Reshape((-1,)),
                    Dense(rng.normal(size=(1, 4)), np.zeros(1))], (1, 4, 3))
    with pytest.raises(InputError, match=r"dense-ReLU MLPs.*conv2d"):
        save(conv, tmp_path / "c.nnet")
    assert list(tmp_path.iterdir()) == []
