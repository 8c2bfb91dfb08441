"""Activation quantization in every engine: the quantizer's lines contain the exact fake-quantizer (checked
exhaustively on dense grids that include rounding ties and clamping), and on tiny activation-quantized twins
every engine's bounds contain the exact MILP optimum (integer rounding variables) and every sampled value."""

import numpy as np
import pytest
import torch

from simcert.bounds import ENGINES
from simcert.bounds.milp import milp_bound_spec
from simcert.bounds.relaxations import quantize_lines
from simcert.compress import quantize_activations, quantize_weights
from simcert.network import QuantizeActivation
from simcert.spec import Box, EpsEquivalence
from simcert.twin import Twin
from simcert.verify import verify

from bound_nets import mlp


@pytest.mark.parametrize("signed,bits,zp", [(False, 8, 0.0), (False, 4, 3.0), (True, 4, 0.0), (True, 3, -1.0)])
def test_quantize_lines_contain_the_quantizer_everywhere(signed, bits, zp):
    rng = np.random.default_rng(bits)
    q = QuantizeActivation(0.25, zp, bits=bits, signed=signed)
    lo_r, hi_r = float(q.real_min), float(q.real_max)
    # ranges inside one step, across steps, across one or both clamp bounds, fully clamped
    ends = rng.uniform(lo_r - 1.5, hi_r + 1.5, size=(400, 2))
    ends = np.concatenate([ends, [[0.1, 0.2], [lo_r - 3, lo_r - 1], [hi_r + 1, hi_r + 2], [lo_r - 1, hi_r + 1]]])
    l = torch.tensor(ends.min(1))
    u = torch.tensor(ends.max(1))
    lines = quantize_lines(q, l, u)
    t = torch.linspace(0, 1, 2001, dtype=torch.float64)
    z = l[:, None] + (u - l)[:, None] * t[None]
    # add the exact rounding ties (k + 1/2) * s that fall in each range
    ties = (torch.arange(-40, 41, dtype=torch.float64) + 0.5) * 0.25
    z = torch.cat([z, ties[None].expand(len(l), -1).clamp(l[:, None], u[:, None])], 1)
    y = q.forward(z)
    up = lines.upper_slope[:, None] * z + lines.upper_bias[:, None]
    low = lines.lower_slope[:, None] * z + lines.lower_bias[:, None]
    assert torch.all(low <= y + 1e-12) and torch.all(y <= up + 1e-12)
    # and they are not vacuous: within one range the band is at most the range plus one step
    band = (up - low).amax(1)
    assert torch.all(band <= (u - l) + 0.25 + 1e-9)


@pytest.mark.parametrize("slack", [0.3, 1.4])
def test_quantize_lines_cover_a_runtime_with_slack(slack):
    """A runtime with slack rounds z / s + d for some |d| <= slack: every such output is inside the lines
    and inside the interval rule."""
    from simcert.bounds.common import quantizer_interval

    q = QuantizeActivation(0.25, 2.0, bits=4, signed=False, slack_steps=slack)
    exact = QuantizeActivation(0.25, 2.0, bits=4, signed=False)
    rng = np.random.default_rng(1)
    ends = rng.uniform(float(q.real_min) - 1, float(q.real_max) + 1, size=(300, 2))
    l, u = torch.tensor(ends.min(1)), torch.tensor(ends.max(1))
    lines = quantize_lines(q, l, u)
    box_lo, box_hi = quantizer_interval(q, l, u)
    z = l[:, None] + (u - l)[:, None] * torch.linspace(0, 1, 501, dtype=torch.float64)[None]
    for d in np.linspace(-slack, slack, 7):
        y = exact.forward(z + d * 0.25)
        assert torch.all(lines.lower_slope[:, None] * z + lines.lower_bias[:, None] <= y + 1e-12)
        assert torch.all(y <= lines.upper_slope[:, None] * z + lines.upper_bias[:, None] + 1e-12)
        assert torch.all(box_lo[:, None] <= y) and torch.all(y <= box_hi[:, None])


def twins():
    """Tiny twins whose exact MILP (one integer per quantized neuron and level) solves in seconds."""
    rng = np.random.default_rng(3)
    for i in range(2):
        f = mlp(rng, [2, 6, 6, 2])
        cal = rng.uniform(-1, 1, size=(200, 2))
        yield f"a4-{i}", f, quantize_activations(f, 4, cal)
        yield f"w4a3-{i}", f, quantize_activations(quantize_weights(f, 4), 3, cal)
    f = mlp(rng, [2, 6, 6, 2])
    # calibrated on a narrow range: the region makes the quantizers clamp
    narrow = rng.uniform(-0.2, 0.2, size=(50, 2))
    yield "a3-clamping", f, quantize_activations(f, 3, narrow, quantize_input=True)
    # both sides quantized, on different grids
    cal = rng.uniform(-1, 1, size=(200, 2))
    yield "a4-vs-a3-signed", quantize_activations(f, 4, cal), quantize_activations(f, 3, cal, symmetric=True)


TWINS = list(twins())


@pytest.mark.parametrize("name,f,g", TWINS, ids=[t[0] for t in TWINS])
def test_every_engine_contains_the_milp_optimum_and_samples(name, f, g):
    twin = Twin(f, g)
    assert twin.aligned, twin.alignment_note
    lo, hi = np.full(2, -1.0), np.full(2, 1.0)
    c1, c2 = -np.eye(2), np.eye(2)
    exact = milp_bound_spec(twin.f, twin.g, lo, hi, c1, c2, time_limit=60)
    assert exact.optimal.all()
    x = torch.tensor(np.random.default_rng(0).uniform(lo, hi, size=(4000, 2)))
    with torch.no_grad():
        seen = g.forward(x) - f.forward(x)
    assert torch.all(seen.min(0).values >= torch.tensor(exact.lower) - 1e-9)
    assert torch.all(seen.max(0).values <= torch.tensor(exact.upper) + 1e-9)
    for engine, fn in ENGINES.items():
        b = fn(twin, torch.tensor(lo)[None], torch.tensor(hi)[None], torch.tensor(c1), torch.tensor(c2))
        bl, bu = b.lower[0].detach().numpy(), b.upper[0].detach().numpy()
        assert np.all(bl <= exact.lower + 1e-7), (engine, bl, exact.lower)
        assert np.all(bu >= exact.upper - 1e-7), (engine, bu, exact.upper)


def test_diff_is_much_tighter_than_crown_on_an_8bit_twin():
    rng = np.random.default_rng(7)
    f = mlp(rng, [4, 16, 16, 3])
    g = quantize_activations(f, 8, rng.uniform(-1, 1, size=(500, 4)))
    twin = Twin(f, g)
    lo, hi = torch.full((1, 4), -0.5, dtype=torch.float64), torch.full((1, 4), 0.5, dtype=torch.float64)
    c1, c2 = -torch.eye(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
    d = ENGINES["diff"](twin, lo, hi, c1, c2)
    c = ENGINES["crown"](twin, lo, hi, c1, c2)
    assert float((d.upper - d.lower).max()) * 5 < float((c.upper - c.lower).max())


@pytest.mark.parametrize("seed", range(3))
def test_verify_on_quantized_twins_agrees_with_milp(seed):
    rng = np.random.default_rng(50 + seed)
    f = mlp(rng, [2, 8, 8, 1])
    g = quantize_activations(f, 4, rng.uniform(-1, 1, size=(100, 2)))
    twin = Twin(f, g)
    box = Box([-1, -1], [1, 1])
    exact = milp_bound_spec(twin.f, twin.g, box.lower, box.upper, -np.eye(1), np.eye(1), time_limit=60)
    worst = float(max(abs(exact.lower[0]), abs(exact.upper[0])))
    for eps in (0.5 * worst, 1.5 * worst):
        res = verify(f, g, box, EpsEquivalence(eps), method="auto", timeout=30)
        assert res.method == "diff"
        if res.verdict == "holds":
            assert worst <= eps + 1e-6
        if res.verdict == "violated":
            assert worst > eps - 1e-6
            x = res.counterexample.x
            assert abs(g(x[None])[0, 0] - f(x[None])[0, 0]) > eps
        assert res.verdict == ("holds" if worst <= eps else "violated"), (eps, worst, res.verdict)


@pytest.mark.parametrize("fmt,act", [("qdq", "uint8"), ("qoperator", "uint8"), ("qdq", "int8")])
def test_engines_contain_onnxruntime_outputs(tmp_path, fmt, act):
    """A twin made by ONNX Runtime's quantizer, executed by ONNX Runtime: on a zero-width box around each
    input every engine's bound of g contains ORT's output, and on a small box the twin's difference."""
    ort = pytest.importorskip("onnxruntime")
    import logging

    from simcert.compress.ort_quant import ort_quantize
    from simcert.network import load

    logging.disable(logging.WARNING)
    try:
        rng = np.random.default_rng(5)
        f = mlp(rng, [5, 12, 10, 3])
        path = tmp_path / "g.onnx"
        ort_quantize(f, path, rng.uniform(-1, 1, size=(200, 5)), fmt=fmt, activation_type=act)
    finally:
        logging.disable(logging.NOTSET)
    g = load(path)
    twin = Twin(f, g)
    assert twin.aligned, twin.alignment_note
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    x = rng.uniform(-1, 1, size=(64, 5)).astype(np.float32)
    y_ort = torch.tensor(sess.run(None, {sess.get_inputs()[0].name: x})[0].astype(np.float64))
    with torch.no_grad():
        y_f = f.forward(torch.tensor(x, dtype=torch.float64))
    pts = torch.tensor(x, dtype=torch.float64)
    zero, eye = torch.zeros(3, 3, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
    tol = 1e-6 * (1 + y_ort.abs())  # ORT returns the dequantized output rounded to float32
    for engine, fn in ENGINES.items():
        b = fn(twin, pts, pts, zero, eye)
        assert torch.all(b.lower <= y_ort + tol) and torch.all(y_ort <= b.upper + tol), engine
        # a box around each point: the bound of g - f contains ORT's g minus f at the centre
        d = fn(twin, pts - 0.01, pts + 0.01, -eye, eye)
        assert torch.all(d.lower <= y_ort - y_f + tol) and torch.all(y_ort - y_f <= d.upper + tol), engine
