"""The MILP fallback of `verify` on regions with many free inputs: its verdicts agree with the exact MILP
optimum (the oracle), its bounds contain sampled values, and the result says the MILP decided it."""

import numpy as np
import pytest

from simcert.bounds.milp import milp_bound_spec
from simcert.compress import quantize_weights
from simcert.search.bab import SearchOptions
from simcert.spec import Box, EpsEquivalence
from simcert.twin import Twin
from simcert.verify import verify

from bound_nets import mlp

ON = SearchOptions(milp_fallback=True)
N_IN = 24  # more free inputs than the search's strong-branching limit (16): the fallback applies


@pytest.mark.parametrize("seed", range(3))
def test_fallback_verdicts_agree_with_milp(seed):
    rng = np.random.default_rng(300 + seed)
    f = mlp(rng, [N_IN, 10, 1])
    g = quantize_weights(f, 4)
    twin = Twin(f, g)
    box = Box(np.full(N_IN, -1.0), np.full(N_IN, 1.0))
    exact = milp_bound_spec(twin.f, twin.g, box.lower, box.upper, -np.eye(1), np.eye(1), time_limit=60)
    assert exact.optimal.all()
    worst = float(max(abs(exact.lower[0]), abs(exact.upper[0])))
    xs = box.sample(20000, np.random.default_rng(seed))
    seen = (g(xs) - f(xs))[:, 0]
    # just above the exact worst case: bisecting 24 inputs cannot get the bounds that tight in a second
    held = verify(f, g, box, EpsEquivalence(worst * 1.0005 + 1e-9), timeout=6.0, options=ON)
    assert held.verdict in ("holds", "unknown")
    if held.verdict == "holds":
        assert held.stats.get("milp", {}).get("used") or held.stats["boxes_bounded"] > 0
        if held.stats.get("milp", {}).get("used"):
            assert "MILP" in held.precision
    assert held.lower[0] <= seen.min() and held.upper[0] >= seen.max()
    broken = verify(f, g, box, EpsEquivalence(worst * 0.9), timeout=6.0, options=ON)
    assert broken.verdict in ("violated", "unknown")
    if broken.verdict == "violated":
        ce = broken.counterexample
        assert abs(float(ce.g_out[0] - ce.f_out[0])) > worst * 0.9


def test_fallback_decides_what_the_search_cannot():
    rng = np.random.default_rng(7)
    f = mlp(rng, [N_IN, 10, 1])
    g = quantize_weights(f, 4)
    twin = Twin(f, g)
    box = Box(np.full(N_IN, -1.0), np.full(N_IN, 1.0))
    exact = milp_bound_spec(twin.f, twin.g, box.lower, box.upper, -np.eye(1), np.eye(1), time_limit=60)
    worst = float(max(abs(exact.lower[0]), abs(exact.upper[0])))
    prop = EpsEquivalence(worst * 1.0005 + 1e-9)
    without = verify(f, g, box, prop, timeout=4.0)
    with_milp = verify(f, g, box, prop, timeout=8.0, options=ON)
    assert without.verdict == "unknown" and "milp" not in without.stats
    assert with_milp.verdict == "holds" and with_milp.stats["milp"]["used"]
    assert with_milp.upper[0] <= prop.eps and with_milp.lower[0] >= -prop.eps
