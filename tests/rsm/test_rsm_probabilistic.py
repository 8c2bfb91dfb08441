"""`rsm_probabilistic`: the quantile statements against Pi's exact distribution on a linear twin."""

from __future__ import annotations

import numpy as np
import pytest

from simcert.errors import InputError
from simcert.network import Dense, Network
from simcert.rsm import rsm, rsm_probabilistic
from simcert.spec import Box


def _pair():
    f = Network([Dense(np.eye(2), np.zeros(2))], (2,))
    g = Network([Dense(0.5 * np.eye(2), np.zeros(2))], (2,))
    return f, g


def test_quantiles_bound_the_exact_distribution():
    # Pi_01 = 0.5 (x0 - x1), x uniform on [0, 1] x [0, 0.5]: the law of x0 - x1 is known in closed form
    f, g = _pair()
    box = Box([0.0, 0.0], [1.0, 0.5])
    p, conf = 0.05, 0.99
    r = rsm_probabilistic(f, g, box, label=0, confidence=conf, p=p, samples=4000, seed=1)
    assert r["samples"] == 4000 and r["others"] == [1]
    big = box.sample(400_000, 9)
    pi = 0.5 * (big[:, 0] - big[:, 1])
    true_lo, true_hi = np.quantile(pi, p), np.quantile(pi, 1 - p)
    # sound direction: L below the p-quantile, U above the (1-p)-quantile; and not absurdly loose
    assert r["lower_quantile"] <= true_lo and r["lower_quantile"] >= true_lo - 0.03
    assert r["upper_quantile"] >= true_hi and r["upper_quantile"] <= true_hi + 0.03
    rate = np.mean(pi < 0)  # P[Pi < 0]
    assert r["g=>f_violation_rate_upper"] >= rate
    assert r["f=>g_violation_rate_upper"] >= np.mean(pi > 0)
    # the certified interval contains the observed extremes
    det = rsm(f, g, box, label=0, search=False)
    assert det.lower[0] <= r["observed_min"] and r["observed_max"] <= det.upper[0]


def test_default_sample_size_and_errors():
    f, g = _pair()
    box = Box([0.5, 0.0], [1.0, 0.25])
    r = rsm_probabilistic(f, g, box, confidence=0.999, p=0.001)
    assert r["samples"] >= r["samples_needed"] == 6905
    assert r["g=>f_violations"] == 0 and r["lower_quantile"] >= 0.125
    with pytest.raises(InputError, match="confidence"):
        rsm_probabilistic(f, g, box, confidence=1.0)
    with pytest.raises(InputError, match="p must"):
        rsm_probabilistic(f, g, box, p=0)
    with pytest.raises(InputError, match="samples"):
        rsm_probabilistic(f, g, box, samples=0)
