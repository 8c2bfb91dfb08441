"""Strata for SimCert: stratum masses, conditional sampling, sound partition, float32 evaluation with rechecks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import norm

from simcert.bounds import ENGINES
from simcert.network import Dense, Network, ReLU
from simcert.spec import EpsEquivalence
from simcert.stats import TruncatedGaussian, UniformBox
from simcert.stats.evaluate import TwinEvaluator
from simcert.stats.strata import box_log_mass, deviation_range, draw_in_strata, partition_region
from simcert.twin import Twin


def random_partition(lower, upper, rng, splits=60):
    """Boxes from random cuts of [lower, upper] along its non-degenerate coordinates (they tile it)."""
    lo, hi = [np.asarray(lower, float)], [np.asarray(upper, float)]
    for _ in range(splits):
        i = int(rng.integers(len(lo)))
        a, b = lo.pop(i), hi.pop(i)
        d = int(rng.choice(np.flatnonzero(b > a)))
        mid = a[d] + (b[d] - a[d]) * rng.uniform(0.2, 0.8)
        b1, a2 = b.copy(), a.copy()
        b1[d] = mid
        a2[d] = mid
        lo += [a, a2]
        hi += [b1, b]
    return np.array(lo), np.array(hi)


@pytest.mark.parametrize("kind", ["uniform", "gauss", "gauss-tail"])
def test_stratum_masses_sum_to_one_and_match_sampling(kind, rng):
    lower, upper = np.array([0.0, -1.0, 2.0]), np.array([1.0, 1.0, 2.0])    # last coordinate fixed
    if kind == "uniform":
        s = UniformBox(lower, upper)
    elif kind == "gauss":
        s = TruncatedGaussian([0.3, 0.0, 2.0], [0.2, 0.5, 1.0], lower, upper)
    else:
        s = TruncatedGaussian([-3.0, 4.0, 2.0], [0.4, 0.5, 1.0], lower, upper)   # box far in both tails
    lo, hi = random_partition(lower, upper, rng)
    lm = box_log_mass(s, lo, hi)
    w = np.exp(lm)
    assert w.sum() == pytest.approx(1.0, abs=1e-9)
    # Monte Carlo frequencies agree with the masses
    x = s.sample(200_000, rng)
    inside = np.all((x[:, None, :] >= lo[None]) & (x[:, None, :] <= hi[None]), axis=2)
    freq = inside.argmax(axis=1)
    counts = np.bincount(freq, minlength=lo.shape[0]) / x.shape[0]
    assert np.max(np.abs(counts - w)) < 0.006


def test_gaussian_mass_in_closed_form():
    s = TruncatedGaussian(0.5, 0.2, [0.0], [1.0])
    w = np.exp(box_log_mass(s, np.array([[0.95]]), np.array([[1.0]])))[0]
    z = lambda v: norm.cdf((v - 0.5) / 0.2)  # noqa: E731
    assert w == pytest.approx((z(1.0) - z(0.95)) / (z(1.0) - z(0.0)), rel=1e-12)


@pytest.mark.parametrize("kind", ["uniform", "gauss"])
def test_draws_stay_in_their_stratum_with_the_conditional_law(kind, rng):
    lower, upper = np.array([0.0, 0.0]), np.array([1.0, 1.0])
    s = UniformBox(lower, upper) if kind == "uniform" else TruncatedGaussian([0.8, 0.2], 0.3, lower, upper)
    lo = np.array([[0.0, 0.0], [0.5, 0.5]])
    hi = np.array([[0.5, 1.0], [1.0, 1.0]])
    idx = rng.integers(0, 2, size=50_000)
    x = draw_in_strata(s, lo, hi, idx, rng)
    assert np.all((x >= lo[idx]) & (x <= hi[idx]))
    # conditional law on stratum 1: compare with rejection sampling from the full distribution
    full = s.sample(400_000, rng)
    ref = full[np.all((full >= lo[1]) & (full <= hi[1]), axis=1)]
    mine = x[idx == 1]
    assert np.abs(mine.mean(axis=0) - ref.mean(axis=0)).max() < 0.01


def test_deviation_range_rule():
    lo, hi = deviation_range(np.array([[-0.3, 0.1], [0.2, -2.0]]), np.array([[0.1, 0.4], [0.5, -1.0]]))
    assert lo.tolist() == [0.1, 1.0]
    assert hi.tolist() == [0.4, 2.0]


def _mlp_twin(seed=0):
    rng = np.random.default_rng(seed)
    w1, w2 = rng.normal(size=(12, 2)), rng.normal(size=(2, 12)) / 3
    b1 = rng.normal(size=12) * 0.5
    f = Network([Dense(w1, b1), ReLU(), Dense(w2, np.zeros(2))], (2,))
    g = Network([Dense(w1 + rng.normal(size=w1.shape) * 0.01, b1), ReLU(), Dense(w2, np.zeros(2))], (2,))
    return f, g


@pytest.mark.parametrize("engine", ["diff", "crown", "interval"])
def test_partition_is_sound(engine, rng):
    f, g = _mlp_twin()
    twin = Twin(f, g)
    lower, upper = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    x = rng.uniform(lower, upper, size=(30_000, 2))
    dev = np.abs(g(x) - f(x)).max(axis=1)
    eps = float(np.quantile(dev, 0.9))
    c1, c2 = (torch.from_numpy(a) for a in EpsEquivalence(eps).specs(2))
    part = partition_region(twin, c1, c2, eps, lower, upper, UniformBox(lower, upper), ENGINES[engine],
                            time_limit=30.0, max_boxes=300)
    total = part.proven_total + part.refuted_total + part.open_total
    assert total == pytest.approx(1.0, abs=1e-12)
    if engine != "interval":                           # the linear engines resolve most of the region
        assert part.proven_total > 0.3 and part.refuted_total > 0.0
    # region-wide row bounds and the deviation range hold at every sample
    assert np.all(g(x) - f(x) >= part.row_lower - 1e-12) and np.all(g(x) - f(x) <= part.row_upper + 1e-12)
    assert dev.max() <= part.root_dev[1] + 1e-12
    # refuted leaves: every sample violates; open leaves: deviation within the stratum's range
    for lo_b, hi_b in zip(part.refuted_lower, part.refuted_upper):
        inside = np.all((x >= lo_b) & (x <= hi_b), axis=1)
        assert np.all(dev[inside] > eps)
    for lo_b, hi_b, dl, dh in zip(part.open_lower, part.open_upper, part.open_dev_lower, part.open_dev_upper):
        inside = np.all((x >= lo_b) & (x <= hi_b), axis=1)
        assert np.all((dev[inside] >= dl - 1e-12) & (dev[inside] <= dh + 1e-12))
    # proven leaves hold no violation: all violating samples lie in refuted or open leaves
    covered = np.zeros(x.shape[0], bool)
    for lo_b, hi_b in list(zip(part.refuted_lower, part.refuted_upper)) + list(zip(part.open_lower, part.open_upper)):
        covered |= np.all((x >= lo_b) & (x <= hi_b), axis=1)
    assert np.all(covered[dev > eps])
    # open mass matches the share of samples that land in open leaves
    in_open = np.zeros(x.shape[0], bool)
    for lo_b, hi_b in zip(part.open_lower, part.open_upper):
        in_open |= np.all((x >= lo_b) & (x <= hi_b), axis=1)
    assert in_open.mean() == pytest.approx(part.open_total, abs=0.02)


def test_partition_without_proofs_keeps_every_leaf_open():
    f, g = _mlp_twin()
    twin = Twin(f, g)
    lower, upper = np.array([-1.0, -1.0]), np.array([1.0, 1.0])
    c1, c2 = (torch.from_numpy(a) for a in EpsEquivalence(10.0).specs(2))
    part = partition_region(twin, c1, c2, 10.0, lower, upper, UniformBox(lower, upper), ENGINES["diff"],
                            time_limit=30.0, max_boxes=100, prove=False)
    assert part.proven_total == 0.0 and part.refuted_total == 0.0
    assert part.n_open > 10 and part.open_total == pytest.approx(1.0)


def test_evaluator_float32_counts_match_float64(rng):
    f, g = _mlp_twin(1)
    x = rng.uniform(-1, 1, size=(50_000, 2))
    d64 = np.abs(g(x) - f(x))
    eps = float(np.quantile(d64.max(axis=1), 0.7))
    ev = TwinEvaluator(f, g, (0, 1), eps)
    res = ev(x)
    assert np.array_equal(res.violated, d64.max(axis=1) > eps)
    assert np.array_equal(res.per_output, d64 > eps)
    assert np.array_equal(res.top1, np.argmax(f(x), axis=1) != np.argmax(g(x), axis=1))
    assert np.allclose(res.deviation, d64.max(axis=1), rtol=1e-4, atol=1e-6)
    assert res.rechecked > 0
    _, _, bad = ev.confirm(x[:100])
    assert np.array_equal(bad, res.violated[:100])


def test_evaluator_falls_back_to_network_forward_for_other_layers(rng):
    from simcert.network import Conv2d, Reshape

    k = rng.normal(size=(2, 1, 3, 3))
    dense = rng.normal(size=(2, 8))

    def net(kernel):
        return Network([Conv2d(kernel, np.zeros(2), 1, 0, 1, 1), ReLU(), Reshape((-1,)), Dense(dense, np.zeros(2))],
                       (1, 4, 4))

    f, g = net(k), net(k + rng.normal(size=k.shape) * 0.01)
    ev = TwinEvaluator(f, g, (0, 1), 0.01)
    assert ev._fast is None
    x = rng.uniform(0, 1, size=(2000, 16))
    d64 = np.abs(g(x.reshape(-1, 1, 4, 4)) - f(x.reshape(-1, 1, 4, 4))).max(axis=1)
    res = ev(x)
    assert np.array_equal(res.violated, d64 > 0.01)
    assert np.allclose(res.deviation, d64, rtol=1e-4, atol=1e-6)
