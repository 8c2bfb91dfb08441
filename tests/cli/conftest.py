"""Fixtures for CLI tests: tiny twin pairs saved to files, region CSVs, and a runner around `simcert.cli.main`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from simcert.cli import main
from simcert.network import Dense, Network, ReLU
from simcert.network.io import save


@dataclass
class Run:
    code: int
    out: str
    err: str


def mlp(sizes: list[int], rng: np.random.Generator, name: str = "net") -> Network:
    """A random dense ReLU MLP with the given layer sizes (weights ~ N(0, 1/fan_in))."""
    layers: list = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.1))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Network(layers, (sizes[0],), name=name)


def perturbed(net: Network, rng: np.random.Generator, scale: float) -> Network:
    """`net` with N(0, scale^2) noise added to every weight."""
    layers = [
        Dense(l.weight + rng.normal(size=l.weight.shape) * scale, l.bias) if isinstance(l, Dense) else l
        for l in net.layers
    ]
    return Network(layers, net.input_shape, name=net.name + "-twin")


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    """Run the CLI in-process: run("verify", ...) -> Run(code, out, err)."""

    def _run(*args: object) -> Run:
        capsys.readouterr()
        code = main([str(a) for a in args])
        cap = capsys.readouterr()
        return Run(code, cap.out, cap.err)

    return _run


@dataclass
class Pair:
    """A 4-input, 2-output twin pair on disk, the box [-1, 1]^4 as CSVs, and the sampled max |g - f|."""

    ref: Path
    twin: Path
    lower: Path
    upper: Path
    sampled_max: float
    f: Network
    g: Network

    def region(self) -> list[str]:
        return ["--lower", str(self.lower), "--upper", str(self.upper)]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    rng = np.random.default_rng(0)
    f = mlp([4, 32, 32, 2], rng, name="ref")
    g = perturbed(f, rng, 1e-2)
    d = tmp_path_factory.mktemp("pair")
    ref, twin = save(f, d / "ref.nnet"), save(g, d / "twin.nnet")
    (d / "lower.csv").write_text("-1,-1,-1,-1\n")
    (d / "upper.csv").write_text("1, 1, 1, 1\n")
    x = np.random.default_rng(1).uniform(-1, 1, size=(50_000, 4))
    sampled = float(np.abs(g(x) - f(x)).max())
    return Pair(ref, twin, d / "lower.csv", d / "upper.csv", sampled, f, g)
