"""A minimal .nnet reader for these tests (independent of simcert's own loader), and small random networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from simcert.network import (
    AvgPool2d,
    Conv2d,
    Dense,
    ElementwiseAffine,
    Network,
    QuantizeActivation,
    ReLU,
    Reshape,
)


def read_nnet(path: Path) -> Network:
    """Dense/ReLU network of a Stanford .nnet file (weights only; the normalization is not needed here)."""
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.strip() and not ln.startswith("//")]
    rows = [[float(v) for v in ln.split(",") if v.strip()] for ln in lines]
    n_layers = int(rows[0][0])
    sizes = [int(v) for v in rows[1]]
    pos = 7  # header, sizes, symmetric flag, min, max, mean, range
    layers = []
    for k in range(n_layers):
        n_in, n_out = sizes[k], sizes[k + 1]
        weight = np.array(rows[pos : pos + n_out])
        bias = np.array([r[0] for r in rows[pos + n_out : pos + 2 * n_out]])
        assert weight.shape == (n_out, n_in)
        pos += 2 * n_out
        layers += [Dense(weight, bias), ReLU()]
    assert pos == len(rows)
    return Network(layers[:-1], (sizes[0],), name=Path(path).stem)


@pytest.fixture
def nnet_reader():
    return read_nnet


@pytest.fixture
def make_mlp():
    return random_mlp


@pytest.fixture
def convnet(rng) -> Network:
    return random_convnet(rng)


def random_mlp(rng: np.random.Generator, sizes=(5, 50, 50, 50, 5)) -> Network:
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [Dense(rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.1), ReLU()]
    return Network(layers[:-1], (sizes[0],), name="mlp")


def random_convnet(rng: np.random.Generator) -> Network:
    """conv 1->8, relu, per-channel quantize, conv 8->6, relu, normalize (per channel), avgpool, flatten,
    dense 54->12, relu, dense 12->3 on (1, 8, 8) inputs."""
    return Network(
        [
            Conv2d(rng.normal(size=(8, 1, 3, 3)), rng.normal(size=8) * 0.1, stride=1, padding=1),
            ReLU(),
            QuantizeActivation(rng.uniform(0.01, 0.05, size=(8, 1, 1)), np.zeros((8, 1, 1)), bits=8, signed=False),
            Conv2d(rng.normal(size=(6, 8, 3, 3)) / 3, rng.normal(size=6) * 0.1, stride=1, padding=0),
            ReLU(),
            ElementwiseAffine(rng.uniform(0.5, 2.0, size=(6, 1, 1)), rng.normal(size=(6, 1, 1)) * 0.1),
            AvgPool2d(2, 2),
            Reshape((-1,)),
            Dense(rng.normal(size=(12, 54)) / 7, rng.normal(size=12) * 0.1),
            ReLU(),
            Dense(rng.normal(size=(3, 12)) / 3, rng.normal(size=3) * 0.1),
        ],
        (1, 8, 8),
        name="convnet",
    )
