"""Fixtures for report tests: a small 2-input twin pair on disk and certificates of it written as the CLI does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from simcert.certificate import build_certificate, write_json_atomic
from simcert.network import Dense, Network, ReLU
from simcert.network.io import load, save
from simcert.spec import Box, EpsEquivalence, Top1
from simcert.verify import verify


def mlp(rng: np.random.Generator, sizes: list[int]) -> Network:
    layers: list[Any] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.1))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Network(layers, (sizes[0],), name="ref")


def nudged(net: Network, rng: np.random.Generator, scale: float) -> Network:
    layers = [Dense(l.weight + rng.normal(size=l.weight.shape) * scale, l.bias) if isinstance(l, Dense) else l
              for l in net.layers]
    return Network(layers, net.input_shape, name="twin")


@dataclass
class Pair:
    ref: Path
    twin: Path
    box: Box

    def models(self) -> list[tuple[str, Network]]:
        return [(str(self.ref), load(self.ref)), (str(self.twin), load(self.twin))]


@pytest.fixture
def pair(tmp_path: Path) -> Pair:
    """f: a 2-12-12-3 ReLU MLP; g: f with N(0, 0.03^2) weight noise; region [-1, 1]^2."""
    rng = np.random.default_rng(7)
    f = mlp(rng, [2, 12, 12, 3])
    g = nudged(f, rng, 0.03)
    ref, twin = save(f, tmp_path / "ref.onnx", dtype=np.float64), save(g, tmp_path / "twin.onnx", dtype=np.float64)
    return Pair(ref, twin, Box([-1.0, -1.0], [1.0, 1.0]))


def write_verify_cert(pair: Pair, path: Path, prop: Any, timeout: float = 5.0) -> dict[str, Any]:
    models = pair.models()
    res = verify(models[0][1], models[1][1], pair.box, prop, timeout=timeout).to_dict()
    cert = build_certificate("verify", models, pair.box, prop.to_json(), res, extra={"argv": ["test"]})
    write_json_atomic(path, cert)
    return cert


def write_certify_cert(pair: Pair, path: Path, eps: float) -> dict[str, Any]:
    from simcert.stats import CertifyOptions, certify

    models = pair.models()
    res = certify(models[0][1], models[1][1], pair.box, eps, rate=0.5, samples=5000, seed=0,
                  options=CertifyOptions(proof_time=5.0, proof_max_boxes=500))
    cert = build_certificate("certify", models, pair.box, None, res.to_dict(), extra={"argv": ["test"]})
    write_json_atomic(path, cert)
    return cert


@pytest.fixture
def certs(pair: Pair, tmp_path: Path) -> dict[str, Path]:
    """Certificates: eps 1e-3 (violated), eps 10 (holds), top-1, and a probabilistic certificate at eps 0.05."""
    out = {}
    for name, prop in (("violated", EpsEquivalence(1e-3)), ("holds", EpsEquivalence(10.0)), ("top1", Top1())):
        out[name] = tmp_path / f"{name}.cert.json"
        write_verify_cert(pair, out[name], prop)
    out["certify"] = tmp_path / "certify.cert.json"
    write_certify_cert(pair, out["certify"], 0.05)
    return out
