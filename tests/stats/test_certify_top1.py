"""Top-1 disagreement certificates (`certify(..., top1=True)`): truth inside, proofs used, plain modes agree.

Twins with a known disagreement rate on `[0, 1]^2` (uniform):

- SHIFT: f = (x1 - 0.5, 0), g = (x1 - 0.6, 0): the classes differ exactly for 0.5 < x1 < 0.6 (rate 0.1); f's
  class at the centre (a tie, class 0 by the first-index rule) holds on x1 > 0.5 only, so the part x1 < 0.5
  (where both pick class 1) can never be proven with that class and is sampled.
- TRIANGLE: f = (1, 0) everywhere (class 0), g = (1 - 10 relu(x1 + x2 - 1.8), 0): g switches to class 1 where
  x1 + x2 > 1.9, a corner triangle of mass 0.005; the rest is provable.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from simcert.errors import InputError
from simcert.network import Dense, Network, ReLU
from simcert.stats import certify, clopper_pearson_upper
from simcert.stats.certify import CertifyOptions
from simcert.stats.criteria import EpsCriterion, Top1Criterion
from simcert.stats.evaluate import TwinEvaluator

UNIT2 = ([0.0, 0.0], [1.0, 1.0])
SHIFT_F = Network([Dense(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([-0.5, 0.0]))], (2,))
SHIFT_G = Network([Dense(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([-0.6, 0.0]))], (2,))
SHIFT_TRUTH = 0.1


def triangle_twin(c: float = 10.0) -> tuple[Network, Network]:
    w1, b1 = np.array([[1.0, 1.0], [0.0, 0.0]]), np.array([-1.8, 1.0])
    f = Network([Dense(w1, b1), ReLU(), Dense(np.array([[0.0, 1.0], [0.0, 0.0]]), np.zeros(2))], (2,))
    g = Network([Dense(w1, b1), ReLU(), Dense(np.array([[-c, 1.0], [0.0, 0.0]]), np.zeros(2))], (2,))
    return f, g


TRI_F, TRI_G = triangle_twin()
TRI_TRUTH = 0.1 ** 2 / 2.0                                   # x1 + x2 > 1.9 in the unit square
FAST = CertifyOptions(proof_max_boxes=400)


def test_twins_have_the_stated_truth(rng):
    x = rng.uniform(0, 1, (400_000, 2))
    for f, g, truth in ((SHIFT_F, SHIFT_G, SHIFT_TRUTH), (TRI_F, TRI_G, TRI_TRUTH)):
        rate = np.mean(np.argmax(f(x), axis=1) != np.argmax(g(x), axis=1))
        assert rate == pytest.approx(truth, abs=5 * np.sqrt(truth / x.shape[0]))


@pytest.mark.parametrize("f,g,truth", [(SHIFT_F, SHIFT_G, SHIFT_TRUTH), (TRI_F, TRI_G, TRI_TRUTH)])
def test_simcert_top1_brackets_the_truth_and_beats_plain_sampling(f, g, truth):
    """10 seeds at confidence 1 - 1e-4: every certificate brackets the truth and is tighter than plain CP."""
    for seed in range(10):
        r = certify(f, g, UNIT2, top1=True, confidence=1 - 1e-4, samples=4_000, seed=seed, options=FAST)
        assert r.violation_rate_lower <= truth <= r.violation_rate_upper
        assert r.top1_disagreement_rate_upper == r.violation_rate_upper
        assert r.violation_rate_upper < r.comparison["clopper_pearson"]
        assert r.proven_fraction > 0.3 and r.refuted_fraction > 0.5 * truth
        assert r.violation_rate_upper <= 1.5 * truth        # the proofs leave little to sample
        assert r.per_output_rate_upper == {}
        assert r.examples and all(np.argmax(e.f_out) != np.argmax(e.g_out) for e in r.examples)


def test_without_proofs_top1_is_plain_stratified_sampling():
    r = certify(TRI_F, TRI_G, UNIT2, top1=True, confidence=1 - 1e-4, samples=20_000,
                options=CertifyOptions(prove=False, proof_max_boxes=64))
    assert r.proven_fraction == 0.0 and r.refuted_fraction == 0.0
    assert r.violation_rate_lower <= TRI_TRUTH <= r.violation_rate_upper
    # open mass 1: exactly the pooled Clopper-Pearson bound, looser than with proofs
    assert r.violation_rate_upper == pytest.approx(float(clopper_pearson_upper(r.violations, r.samples, 1e-4)))
    assert r.violation_rate_upper > 1.3 * TRI_TRUTH


@pytest.mark.parametrize("method", ["clopper-pearson", "hoeffding", "bernstein"])
def test_plain_methods_count_top1_disagreements(method):
    r = certify(SHIFT_F, SHIFT_G, UNIT2, top1=True, confidence=1 - 1e-4, samples=20_000, seed=3, method=method)
    e = certify(SHIFT_F, SHIFT_G, UNIT2, 1e6, confidence=1 - 1e-4, samples=20_000, seed=3, method=method)
    assert r.violation_rate_lower <= SHIFT_TRUTH <= r.violation_rate_upper
    assert r.violation_rate_upper == r.top1_disagreement_rate_upper
    # the eps run on the same seed checks top-1 on the same draws: the same bound
    assert e.top1_disagreement_rate_upper == pytest.approx(r.violation_rate_upper)
    assert e.violations == 0 and r.violations > 0


def test_fully_proven_top1_needs_no_samples():
    f, g = triangle_twin()
    r = certify(f, g, ([0.0, 0.0], [0.8, 0.8]), top1=True, rate=1e-6, samples=1000)
    assert r.verdict == "holds" and r.samples == 0 and r.violation_rate_upper == 0.0 and r.proven_fraction == 1.0


def test_top1_json_and_verdicts():
    r = certify(TRI_F, TRI_G, UNIT2, top1=True, rate=0.02, samples=4_000, options=FAST)
    d = json.loads(json.dumps(r.to_dict()))
    assert r.verdict == "holds"
    assert d["property"] == {"type": "top1", "class_at_center": 0}
    assert d["top1_disagreement_rate_upper"] == d["violation_rate_upper"]
    assert d["method"]["bound_used"]["rate"].startswith("top-1 disagreement")
    assert len(d["bounds"]) == 2                             # the deviation rows only
    v = certify(TRI_F, TRI_G, UNIT2, top1=True, rate=1e-3, samples=4_000, options=FAST)
    assert v.verdict == "violated" and v.violation_rate_lower > 1e-3


@pytest.mark.parametrize("kwargs", [dict(), dict(eps=0.1, top1=True), dict(top1=True, outputs=[0])])
def test_bad_property_arguments(kwargs):
    with pytest.raises(InputError):
        certify(TRI_F, TRI_G, UNIT2, samples=10, **kwargs)


def test_top1_needs_two_outputs():
    f = Network([Dense(np.array([[1.0]]), np.zeros(1))], (1,))
    with pytest.raises(InputError):
        certify(f, f, ([0.0], [1.0]), top1=True, samples=10)


def test_criteria_rules():
    # rows: 2 deviation rows, then f_0 - f_1, f_0 - f_2, then g_0 - g_1, g_0 - g_2 (label 0, m = 3)
    c = Top1Criterion(0, 3, 2)
    lo = np.array([[-9, -9, 0.1, 0.2, 0.1, 0.3],      # all margins > 0: proven
                   [-9, -9, 0.1, 0.2, -1.0, 0.3],     # g margin may be <= 0: open
                   [-9, -9, 0.1, 0.2, -2.0, 0.3],     # f keeps 0, g_0 - g_1 < 0 everywhere: refuted
                   [-9, -9, -0.1, 0.2, -2.0, 0.3],    # f may change class: open, never refuted
                   [-9, -9, 0.0, 0.2, 0.1, 0.3]])     # a tie is not a proof (margins must be > 0)
    hi = lo + 0.5
    hi[1, 4] = 0.5
    hi[2, 4] = -0.5
    hi[3, 4] = -0.5
    proven, refuted = c.classify(lo, hi)
    assert proven.tolist() == [True, False, False, False, False]
    assert refuted.tolist() == [False, False, True, False, False]
    assert not c.unresolved(lo, hi)[:, :2].any() and c.unresolved(lo, hi)[1, 4]
    e = EpsCriterion(0.1)
    p, r = e.classify(np.array([[-0.05], [0.2], [-0.2]]), np.array([[0.05], [0.3], [0.05]]))
    assert p.tolist() == [True, False, False] and r.tolist() == [False, True, False]


def test_evaluator_top1_mode_matches_float64(rng):
    x = rng.uniform(0, 1, (50_000, 2))
    ev = TwinEvaluator(SHIFT_F, SHIFT_G, (0, 1), float("inf"), violation="top1")
    res = ev(x)
    truth = np.argmax(SHIFT_F(x), axis=1) != np.argmax(SHIFT_G(x), axis=1)
    assert np.array_equal(res.violated, truth) and np.array_equal(res.top1, truth)
    assert not res.per_output.any()
    with pytest.raises(InputError):
        TwinEvaluator(SHIFT_F, SHIFT_G, (0, 1), 0.1, violation="margin")
