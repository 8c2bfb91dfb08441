"""Coverage of the combined SimCert certificate: over many seeds, the true violation rate exceeds the certified
upper bound (or falls below the lower one) at most a delta fraction of the time. The same check applied to a
plug-in estimate fails, so it has power. The plain-Monte-Carlo baselines embedded in the SimCert sample are
checked the same way (their validity rests on the embedding argument). The partition uses the interval
engine: it is exact enough on this twin and cheap, and the statistics only need its bounds to be sound."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from simcert.network import Dense, Network, ReLU
from simcert.stats import certify
from simcert.stats.certify import CertifyOptions

DELTA = 0.1
REPS = 300


def _twin():
    """g - f = relu(x1 + x2 - 1.8): violating set x1 + x2 > 1.9 on [0, 1]^2, mass 0.005."""
    w1, b1 = np.array([[1.0, 1.0], [1.0, 1.0]]), np.array([-1.8, 1.0])
    f = Network([Dense(w1, b1), ReLU(), Dense(np.array([[0.0, 1.0]]), np.zeros(1))], (2,))
    g = Network([Dense(w1, b1), ReLU(), Dense(np.array([[1.0, 1.0]]), np.zeros(1))], (2,))
    return f, g


TRUTH = 0.005


def _limit() -> float:
    return stats.binom.ppf(1 - 1e-6, REPS, DELTA)


@pytest.mark.parametrize("allocation", ["proportional", "neyman"])
def test_combined_certificate_covers(allocation):
    f, g = _twin()
    up_miss = lo_miss = plug_miss = cp_miss = hf_miss = 0
    for seed in range(REPS):
        r = certify(f, g, ([0.0, 0.0], [1.0, 1.0]), 0.1, confidence=1 - DELTA, samples=1_000, seed=seed,
                    options=CertifyOptions(proof_max_boxes=30, allocation=allocation, engine="interval"))
        assert r.stats["allocation"] == allocation
        up_miss += r.violation_rate_upper < TRUTH
        lo_miss += r.violation_rate_lower > TRUTH
        w_u = r.stats["open_fraction"]
        plug = r.refuted_fraction + w_u * r.violations / r.samples if allocation == "proportional" else None
        if plug is not None:
            plug_miss += plug < TRUTH
            cp_miss += r.comparison["clopper_pearson"] < TRUTH
            hf_miss += r.comparison["hoeffding"] < TRUTH
    assert up_miss <= _limit() and lo_miss <= _limit()
    if allocation == "proportional":
        assert cp_miss <= _limit() and hf_miss <= _limit()
        assert plug_miss > _limit()                      # a non-bound fails the same check
