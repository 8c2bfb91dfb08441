"""Soundness of `rsm`: the certified bounds of every Pi_cj contain the values at random and attacked points of
the region (computed independently on the original models), on twins of several kinds and architectures, with
every engine; and they contain the exact MILP optimum on small classifiers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rsm_twins import pi_numpy, twins
from simcert.rsm import rsm
from simcert.rsm_core import attack_pi
from simcert.spec import Box, RsmSpec
from simcert.twin import Twin

TOL = 1e-9  # float64 evaluation noise of Pi at a point (the engines widen by more than this)
TWINS = twins()


def _region(f, rng, width):
    x0 = rng.uniform(-0.5, 0.5, size=f.input_size)
    return Box(x0 - width, x0 + width)


def _check_contains(res, f, g, box, rng, n=1500):
    others = list(res.others)
    x = box.sample(n, rng)
    pts = [x]
    twin = Twin(f, g)
    lo, hi = box.to_torch()
    att = attack_pi(twin, lo[None], hi[None], torch.tensor([res.label]), starts=16, steps=25,
                    generator=torch.Generator().manual_seed(3))
    pts += [att.lo_x.numpy(), att.hi_x.numpy()]
    pts += [w.x[None] for w in res.witnesses.values() if w is not None]
    p = np.concatenate(pts)
    assert box.contains(p).all()
    pi = pi_numpy(f, g, p, res.label)[:, others]
    excess_lo = float((res.lower - pi.min(0)).max())
    excess_hi = float((pi.max(0) - res.upper).max())
    assert excess_lo <= TOL, f"a point has Pi below the certified lower bound by {excess_lo}"
    assert excess_hi <= TOL, f"a point has Pi above the certified upper bound by {excess_hi}"
    # the reported observed extremes are real values, so they sit inside the certified interval too
    assert np.all(res.lower <= res.observed_lower + TOL) and np.all(res.observed_upper <= res.upper + TOL)
    return pi


@pytest.mark.parametrize("name,f,g", TWINS, ids=[t[0] for t in TWINS])
@pytest.mark.parametrize("method", ["auto", "crown", "interval", "diff", "alpha-crown"])
def test_bounds_contain_sampled_and_attacked_pi(name, f, g, method):
    if method == "diff" and not Twin(f, g).aligned:
        pytest.skip("the differential engine needs aligned twins")
    rng = np.random.default_rng(11)
    for width in (0.05, 0.4):
        box = _region(f, rng, width)
        res = rsm(f, g, box, method=method, timeout=1.0, search=method in ("auto", "crown"))
        pi = _check_contains(res, f, g, box, rng)
        # verdicts agree with what the points show
        if res.status["g=>f"] == "proven":
            assert pi.min() >= -TOL
        if res.status["f=>g"] == "proven":
            assert pi.max() <= TOL
        for side, w in res.witnesses.items():
            if w is not None:
                v = pi_numpy(f, g, w.x[None], res.label)[0, w.row]
                assert (v < 0) if side == "g=>f" else (v > 0)
                assert res.status[side] == "refuted"


@pytest.mark.parametrize("name,f,g", TWINS[:3], ids=[t[0] for t in TWINS[:3]])
def test_search_only_tightens(name, f, g):
    """Branch and bound may only tighten the root bounds (both stay sound)."""
    rng = np.random.default_rng(5)
    box = _region(f, rng, 0.3)
    root = rsm(f, g, box, method="crown", search=False)
    deep = rsm(f, g, box, method="crown", timeout=3.0)
    assert np.all(deep.lower >= root.lower - 1e-12) and np.all(deep.upper <= root.upper + 1e-12)
    _check_contains(deep, f, g, box, rng)


def _milp():
    return pytest.importorskip("simcert.bounds.milp")


MILP_TWINS = [t for t in TWINS if t[0] in ("int4", "structured30", "distilled")]


@pytest.mark.parametrize("name,f,g", MILP_TWINS, ids=[t[0] for t in MILP_TWINS])
def test_bounds_contain_milp_optimum(name, f, g):
    milp = _milp()
    rng = np.random.default_rng(2)
    box = _region(f, rng, 0.3)
    res = rsm(f, g, box, method="auto", timeout=0.5)
    c1, c2 = RsmSpec(res.label).specs(f.output_size)
    ex = milp.milp_bound_spec(f, g, box.lower, box.upper, c1, c2, time_limit=20.0)
    assert np.all(ex.optimal)
    # values at the solver's optimizers are attained, so the certified bounds must enclose them
    at_min = np.array([pi_numpy(f, g, ex.argmin[k][None], res.label)[0, j] for k, j in enumerate(res.others)])
    at_max = np.array([pi_numpy(f, g, ex.argmax[k][None], res.label)[0, j] for k, j in enumerate(res.others)])
    assert np.all(res.lower <= at_min + TOL) and np.all(at_max <= res.upper + TOL)
    # and the exact optimum (within the solver's margin) lies inside too
    assert np.all(res.lower <= ex.upper) and np.all(ex.lower <= res.upper)
    if name == "distilled":
        # rsm's own MILP mode gives the exact interval (up to the solver margin) and the same decided verdicts
        exact = rsm(f, g, box, method="milp", timeout=20.0)
        assert exact.method == "milp" and exact.stats["milp_optimal"]
        np.testing.assert_allclose(exact.lower, at_min, atol=1e-4)
        np.testing.assert_allclose(exact.upper, at_max, atol=1e-4)
        for side in ("g=>f", "f=>g"):
            if res.status[side] != "unknown":
                assert exact.status[side] == res.status[side]


def test_real_mnist_twins_contain_sampled_pi(bench):
    """MNIST 3x100 against int4, 80% pruned and the VeryDiff pruned twin: sampled and attacked points of a
    2/255 ball lie inside the certified bounds."""
    from simcert.compress import prune_magnitude, quantize_weights
    from simcert.network.io import load

    f = load(bench / "reludiff-icse2020/nnet/mnist_relu_3_100.nnet")
    row = np.loadtxt(bench / "reludiff-icse2020/test_inputs/mnist_test.csv", delimiter=",", max_rows=2)
    rng = np.random.default_rng(0)
    pairs = [(f, quantize_weights(f, 4, per_channel=True)), (f, prune_magnitude(f, 0.8)),
             (load(bench / "verydiff-release/nets/mnist_relu_3_100.onnx"),
              load(bench / "verydiff-release/nets/mnist_relu_3_100_pruned5.onnx"))]
    for (ff, gg), r in zip(pairs, (row[0], row[1], row[1])):
        box = Box.linf(r[1:] / 255.0, 2 / 255, (0, 1))
        res = rsm(ff, gg, box, label=int(r[0]), timeout=1.0, search=False)
        _check_contains(res, ff, gg, box, rng, n=300)
