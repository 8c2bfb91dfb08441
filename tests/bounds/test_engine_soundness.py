"""Every engine on the same random twins: certified bounds must contain every sampled and attacked value.

The exact MILP oracle is in test_engines_vs_milp.py; this file checks containment on points, which would fail
for any engine whose bound is wrong somewhere it is evaluated.
"""

import numpy as np
import pytest
import torch

from simcert.bounds import ENGINES
from simcert.compress import prune_structured, quantize_weights, to_float16
from simcert.network import Conv2d, Dense, Network, ReLU, Reshape
from simcert.search.attack import pgd_attack
from simcert.search.problem import SpecProblem
from simcert.twin import Twin

from bound_nets import mlp


def convnet(rng):
    return Network(
        [
            Conv2d(rng.normal(size=(3, 1, 3, 3)) * 0.5, rng.normal(size=3) * 0.1, stride=1, padding=1),
            ReLU(),
            Conv2d(rng.normal(size=(2, 3, 2, 2)) * 0.5, rng.normal(size=2) * 0.1, stride=2),
            ReLU(),
            Reshape((-1,)),
            Dense(rng.normal(size=(3, 8)) * 0.5, rng.normal(size=3) * 0.1),
        ],
        (1, 4, 4),
    )


def twins():
    rng = np.random.default_rng(7)
    f = mlp(rng, [3, 12, 12, 12, 2])
    yield "float16", f, to_float16(f)
    yield "int4", f, quantize_weights(f, 4, per_channel=True)
    yield "structured", f, prune_structured(f, 0.3)
    yield "distilled", f, mlp(rng, [3, 6, 2])
    c = convnet(rng)
    yield "conv-int8", c, quantize_weights(c, 8)


ENGINE_NAMES = list(ENGINES)


@pytest.mark.parametrize("name,f,g", list(twins()), ids=[t[0] for t in twins()])
@pytest.mark.parametrize("engine", ENGINE_NAMES)
def test_bounds_contain_sampled_and_attacked_values(name, f, g, engine):
    twin = Twin(f, g)
    if engine.startswith("diff") and not twin.aligned:
        pytest.skip("differential engine needs aligned twins")
    rng = np.random.default_rng(1)
    n, m = twin.input_size, twin.output_size
    centers = rng.uniform(-1, 1, (4, n))
    radii = rng.choice([0.05, 0.3, 1.0], size=(4, 1))
    lower = torch.tensor(centers - radii)
    upper = torch.tensor(centers + radii)
    c1 = torch.tensor(np.vstack([-np.eye(m), rng.normal(size=(2, m))]))
    c2 = torch.tensor(np.vstack([np.eye(m), rng.normal(size=(2, m))]))
    b = ENGINES[engine](twin, lower, upper, c1, c2)
    assert torch.all(b.lower <= b.upper)
    worst = 0.0
    for i in range(4):
        xs = lower[i] + (upper[i] - lower[i]) * torch.rand(4000, n, dtype=torch.float64)
        prob = SpecProblem(c1, c2, torch.full((c1.shape[0],), -1e9, dtype=torch.float64),
                           torch.full((c1.shape[0],), 1e9, dtype=torch.float64))
        xs = torch.cat([xs, pgd_attack(twin, prob, lower[i : i + 1], upper[i : i + 1], starts=16, steps=10)])
        v = prob.values(twin.f.forward(xs), twin.g.forward(xs))
        worst = max(worst, float((v - b.upper[i]).max()), float((b.lower[i] - v).max()))
    assert worst <= 0, f"{engine} on {name}: a value lies {worst:.3g} outside the certified bounds"


def test_diff_is_much_tighter_than_crown_on_a_close_twin():
    rng = np.random.default_rng(2)
    f = mlp(rng, [5, 30, 30, 30, 3])
    twin = Twin(f, to_float16(f))
    lower = -torch.ones(1, 5, dtype=torch.float64)
    upper = torch.ones(1, 5, dtype=torch.float64)
    e = torch.eye(3, dtype=torch.float64)
    w = {k: float((ENGINES[k](twin, lower, upper, -e, e).upper - ENGINES[k](twin, lower, upper, -e, e).lower).max())
         for k in ("interval", "crown", "diff")}
    assert w["diff"] < w["crown"] / 5 < w["interval"]
