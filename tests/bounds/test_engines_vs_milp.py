"""The exact MILP is the oracle: every engine's bounds contain the MILP optimum, and every "holds" verdict of
`verify` agrees with the MILP maximum."""

import numpy as np
import pytest
import torch

from simcert.bounds import ENGINES
from simcert.bounds.milp import milp_bound_spec
from simcert.compress import prune_structured, quantize_weights
from simcert.spec import Box, EpsEquivalence
from simcert.twin import Twin
from simcert.verify import verify

from bound_nets import mlp


def small_twins():
    rng = np.random.default_rng(11)
    for i in range(3):
        f = mlp(rng, [3, 8, 8, 2])
        yield f"int4-{i}", f, quantize_weights(f, 4)
    f = mlp(rng, [3, 8, 8, 2])
    yield "structured", f, prune_structured(f, 0.25)
    yield "distilled", f, mlp(rng, [3, 5, 2])


@pytest.mark.parametrize("name,f,g", list(small_twins()), ids=[t[0] for t in small_twins()])
def test_every_engine_contains_the_milp_optimum(name, f, g):
    twin = Twin(f, g)
    lo, hi = np.full(3, -1.0), np.full(3, 1.0)
    c1 = -np.eye(2)
    c2 = np.eye(2)
    exact = milp_bound_spec(twin.f, twin.g, lo, hi, c1, c2, time_limit=30)
    assert exact.optimal.all()
    for engine, fn in ENGINES.items():
        if engine.startswith("diff") and not twin.aligned:
            continue
        b = fn(twin, torch.tensor(lo)[None], torch.tensor(hi)[None], torch.tensor(c1), torch.tensor(c2))
        assert np.all(b.lower[0].detach().numpy() <= exact.lower + 1e-6), (engine, b.lower, exact.lower)
        assert np.all(b.upper[0].detach().numpy() >= exact.upper - 1e-6), (engine, b.upper, exact.upper)


@pytest.mark.parametrize("seed", range(4))
def test_verify_verdicts_agree_with_milp(seed):
    rng = np.random.default_rng(100 + seed)
    f = mlp(rng, [2, 8, 8, 1])
    g = quantize_weights(f, 5)
    twin = Twin(f, g)
    box = Box([-1, -1], [1, 1])
    exact = milp_bound_spec(twin.f, twin.g, box.lower, box.upper, -np.eye(1), np.eye(1), time_limit=30)
    worst = float(max(abs(exact.lower[0]), abs(exact.upper[0])))
    for eps in (0.5 * worst, 1.5 * worst):
        for method in ("diff", "crown", "interval"):
            res = verify(f, g, box, EpsEquivalence(eps), method=method, timeout=20)
            # the reported bounds are certified for the region whatever the verdict (violated included)
            assert np.isfinite(res.lower).all() and np.isfinite(res.upper).all(), (method, res.verdict)
            assert res.lower[0] <= exact.lower[0] + 1e-6 and res.upper[0] >= exact.upper[0] - 1e-6
            if res.verdict == "holds":
                assert worst <= eps + 1e-6, (method, eps, worst)
            if res.verdict == "violated":
                assert worst > eps - 1e-6
                x = res.counterexample.x
                assert abs(g(x[None])[0, 0] - f(x[None])[0, 0]) > eps
        # the differential engine with search must decide these small cases
        assert verify(f, g, box, EpsEquivalence(eps), method="diff", timeout=20).verdict == (
            "holds" if worst <= eps else "violated"
        )
