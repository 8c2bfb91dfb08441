"""Samplers: reproducible, inside the box, the right distribution (moments), JSON-ready, clear errors."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from scipy import stats

from simcert.errors import InputError
from simcert.stats import (
    EmpiricalDataset,
    TruncatedGaussian,
    UniformBox,
    parse_distribution,
    truncated_standard_normal_ppf,
)

LOWER = np.array([[-1.0, 0.0, 2.0], [0.5, 0.5, -3.0]])
UPPER = np.array([[1.0, 0.0, 2.5], [0.75, 2.5, -1.0]])


def _all_samplers() -> list:
    pts = np.stack([LOWER, UPPER, (LOWER + UPPER) / 2])
    return [
        UniformBox(LOWER, UPPER),
        TruncatedGaussian((LOWER + UPPER) / 2, 0.3, LOWER, UPPER),
        EmpiricalDataset(pts, radius=0.2, lower=LOWER, upper=UPPER),
        EmpiricalDataset(pts, radius=0.2, lower=LOWER, upper=UPPER, boundary="restrict"),
    ]


@pytest.mark.parametrize("sampler", _all_samplers(), ids=["uniform", "gauss", "data-clip", "data-restrict"])
def test_reproducible_inside_box_and_json(sampler) -> None:
    a = sampler.sample(500, np.random.default_rng(7))
    b = sampler.sample(500, np.random.default_rng(7))
    c = sampler.sample(500, np.random.default_rng(8))
    assert a.shape == (500, 2, 3) and a.dtype == np.float64
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(a, sampler.sample(500, 7))                  # an int seed works too
    assert np.all(a >= LOWER) and np.all(a <= UPPER)
    assert np.all(a[:, 0, 1] == 0.0)                                   # zero-width coordinate
    t = sampler.sample_torch(4, np.random.default_rng(7), dtype=torch.float32)
    assert t.dtype == torch.float32 and t.shape == (4, 2, 3)
    assert sampler.sample(0, 1).shape == (0, 2, 3)
    json.dumps(sampler.to_json())
    assert isinstance(sampler.describe(), str) and "\n" not in sampler.describe()


def test_uniform_moments_and_weights(rng: np.random.Generator) -> None:
    s = UniformBox([0.0, -2.0], [1.0, 2.0])
    x = s.sample(100_000, rng)
    assert np.allclose(x.mean(axis=0), [0.5, 0.0], atol=0.02)
    assert np.allclose(x.var(axis=0), [1 / 12, 16 / 12], rtol=0.03)
    # Four quadrant strata partition the box: weights are volume fractions and sum to 1.
    quads = [([0.0, -2.0], [0.5, 0.0]), ([0.5, -2.0], [1.0, 0.0]), ([0.0, 0.0], [0.25, 2.0]), ([0.25, 0.0], [1.0, 2.0])]
    w = s.weights_of(quads)
    assert w.tolist() == [0.25, 0.25, 0.125, 0.375]
    # ... and they match the sampled frequencies.
    freq = [np.mean(np.all((x >= lo) & (x <= hi), axis=1)) for lo, hi in quads]
    assert np.allclose(freq, w, atol=0.01)
    # Batched arrays, objects with lower/upper, parts outside the box, a flat coordinate.
    lo, hi = np.array([[0.0, -3.0], [2.0, 0.0]]), np.array([[0.5, 3.0], [3.0, 1.0]])
    assert s.weights_of(lower=lo, upper=hi).tolist() == [0.5, 0.0]
    assert s.weights_of([SimpleNamespace(lower=[0.0, 0.0], upper=[1.0, 1.0])]).tolist() == [0.25]
    flat = UniformBox([0.0, 1.0], [1.0, 1.0])
    assert flat.weights_of([([0.0, 0.5], [0.5, 1.0]), ([0.0, 1.5], [0.5, 2.0])]).tolist() == [0.5, 0.0]
    sub = s.restrict([0.5, -5.0], [2.0, 0.0])
    assert sub.lower.tolist() == [0.5, -2.0] and sub.upper.tolist() == [1.0, 0.0]


def _truncnorm_mean_by_hand(c: float, s: float, lo: float, hi: float) -> float:
    # mu + sigma (phi(alpha) - phi(beta)) / (Phi(beta) - Phi(alpha))
    a, b = (lo - c) / s, (hi - c) / s
    return c + s * (stats.norm.pdf(a) - stats.norm.pdf(b)) / (stats.norm.cdf(b) - stats.norm.cdf(a))


@pytest.mark.parametrize(
    ("c", "s", "lo", "hi"), [(0.0, 1.0, -1.0, 2.0), (0.0, 0.5, 1.0, 3.0), (5.0, 1.0, -1.0, 1.0), (0.2, 2.0, 0.0, 1.0)]
)
def test_truncated_gaussian_mean_matches_formula(rng: np.random.Generator, c, s, lo, hi) -> None:
    x = TruncatedGaussian(c, s, lo, hi).sample(200_000, rng).ravel()
    truth = _truncnorm_mean_by_hand(c, s, lo, hi)
    sd = stats.truncnorm.std((lo - c) / s, (hi - c) / s, loc=c, scale=s)
    assert abs(x.mean() - truth) < 5 * sd / np.sqrt(x.size)
    # The whole distribution, not just the mean.
    ks = stats.kstest(x[:20_000], stats.truncnorm((lo - c) / s, (hi - c) / s, loc=c, scale=s).cdf)
    assert ks.pvalue > 1e-4


def test_truncated_gaussian_far_tail_and_ppf_accuracy() -> None:
    # A box 30 sigma away from the centre: no NaN, no rejection loop, mass piled near the near edge.
    x = TruncatedGaussian(0.0, 1.0, 30.0, 40.0).sample(1000, 0)
    assert np.all(np.isfinite(x)) and np.all((x >= 30.0) & (x <= 40.0)) and x.mean() < 30.1
    u = np.linspace(0.001, 0.999, 50)
    for a, b in [(-1.0, 2.0), (30.0, 40.0), (-40.0, -30.0), (-0.5, 30.0)]:
        assert np.allclose(truncated_standard_normal_ppf(u, a, b), stats.truncnorm.ppf(u, a, b), atol=1e-9, rtol=1e-9)


def test_empirical_dataset_rows_noise_and_clip(rng: np.random.Generator) -> None:
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.2]])
    exact = EmpiricalDataset(pts).sample(6000, rng)
    rows, counts = np.unique(exact, axis=0, return_counts=True)
    assert len(rows) == 3 and np.all(np.abs(counts / 6000 - 1 / 3) < 0.03)
    noisy = EmpiricalDataset(pts, radius=0.1, lower=0.0, upper=1.0).sample(5000, rng)
    dist = np.abs(noisy[:, None, :] - pts[None]).max(axis=2).min(axis=1)
    assert np.all(dist <= 0.1 + 1e-12) and np.all((noisy >= 0) & (noisy <= 1))
    assert np.mean(noisy == 0.0) > 0.05                          # clip piles mass on the faces
    restricted = EmpiricalDataset(pts, radius=0.1, lower=0.0, upper=1.0, boundary="restrict").sample(5000, rng)
    assert np.mean(restricted == 0.0) < 1e-3 and np.all((restricted >= 0) & (restricted <= 1))
    # Noise is uniform in the ball: around the interior point each coordinate has variance r^2 / 3.
    near = restricted[np.abs(restricted - [0.5, 0.2]).max(axis=1) <= 0.1]
    assert np.allclose(near.var(axis=0), 0.01 / 3, rtol=0.15)


def test_parse_distribution() -> None:
    box = SimpleNamespace(lower=np.zeros(3), upper=np.ones(3))
    assert isinstance(parse_distribution("uniform", box), UniformBox)
    assert isinstance(parse_distribution(" Uniform ", (np.zeros(3), np.ones(3))), UniformBox)
    g = parse_distribution("gauss:0.25", box)
    assert isinstance(g, TruncatedGaussian) and np.all(g.sigma == 0.25) and np.all(g.center == 0.5)
    g2 = parse_distribution("gaussian:1e-2", box, center=[0.1, 0.2, 0.3])
    assert g2.center.tolist() == [0.1, 0.2, 0.3]
    for bad in ["", "normal", "gauss", "gauss:", "gauss:abc", "gauss:-1", "gauss:0", "gauss:nan", "gauss:inf"]:
        with pytest.raises(InputError, match="distribution"):
            parse_distribution(bad, box)


def test_constructor_errors() -> None:
    with pytest.raises(InputError, match="lower > upper"):
        UniformBox([0.0, 1.0], [1.0, 0.5])
    with pytest.raises(InputError, match="NaN"):
        UniformBox([0.0, np.nan], [1.0, 1.0])
    with pytest.raises(InputError, match="sigma"):
        TruncatedGaussian(0.0, 0.0, 0.0, 1.0)
    with pytest.raises(InputError, match="points"):
        EmpiricalDataset(np.zeros(3))
    with pytest.raises(InputError, match="radius"):
        EmpiricalDataset(np.zeros((2, 3)), radius=-1.0)
    with pytest.raises(InputError, match="within radius"):
        EmpiricalDataset(np.full((1, 2), 5.0), radius=0.1, lower=0.0, upper=1.0, boundary="restrict")
    with pytest.raises(InputError, match="number of samples"):
        UniformBox([0.0], [1.0]).sample(-1, 0)
    with pytest.raises(InputError, match="generator"):
        UniformBox([0.0], [1.0]).sample(3, "seed")  # type: ignore[arg-type]
