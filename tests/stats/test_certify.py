"""`certify`: certificates contain the truth on twins with a known violation rate, SimCert beats plain sampling.

Twins with a known rate: `g - f = c * relu(w . x - t)` (one hidden ReLU carries the whole difference), so on
`[0, 1]^n` the violating set `{w . x > t + eps / c}` is an interval (n = 1) or a triangle (n = 2) whose mass
is known in closed form, for the uniform and (1-D) truncated Gaussian distributions.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from simcert.errors import InputError
from simcert.network import Dense, Network, ReLU
from simcert.stats import certify, clopper_pearson_upper, samples_needed_clopper_pearson
from simcert.stats.certify import CertifyOptions


def relu_twin(c: float, t: float, w) -> tuple[Network, Network]:
    """f(x) = relu(sum x + 1), g(x) = f(x) + c relu(w . x - t): the difference is c relu(w . x - t)."""
    w = np.asarray(w, dtype=np.float64)
    n = w.size
    w1 = np.stack([w, np.ones(n)])
    b1 = np.array([-t, 1.0])
    f = Network([Dense(w1, b1), ReLU(), Dense(np.array([[0.0, 1.0]]), np.zeros(1))], (n,))
    g = Network([Dense(w1, b1), ReLU(), Dense(np.array([[c, 1.0]]), np.zeros(1))], (n,))
    return f, g


def mlp_twin(seed: int = 0, n: int = 2, h: int = 16, noise: float = 1e-3) -> tuple[Network, Network]:
    """A random 2-layer ReLU net and a copy with every weight perturbed by N(0, noise^2)."""
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(h, n)), rng.normal(size=(h, h)) / np.sqrt(h), rng.normal(size=(1, h)) / np.sqrt(h)]
    bs = [rng.normal(size=h) * 0.5, rng.normal(size=h) * 0.1, np.zeros(1)]
    wg = [w + rng.normal(size=w.shape) * noise for w in ws]

    def net(weights):
        layers = [Dense(weights[0], bs[0]), ReLU(), Dense(weights[1], bs[1]), ReLU(), Dense(weights[2], bs[2])]
        return Network(layers, (n,))

    return net(ws), net(wg)


UNIT2 = ([0.0, 0.0], [1.0, 1.0])
TRI_F, TRI_G = relu_twin(1.0, 1.8, [1.0, 1.0])       # violating set x1 + x2 > 1.8 + eps
TRI_EPS = 0.1
TRI_TRUTH = (2.0 - 1.9) ** 2 / 2.0                     # 0.005


# ------------------------------------------------------------------------------ truth inside the certificate


def test_simcert_contains_the_true_rate_and_is_tight():
    """20 seeds at confidence 1 - 1e-4: every certificate brackets the truth; the upper end is within 5% of it."""
    naive_below = 0
    for seed in range(20):
        r = certify(TRI_F, TRI_G, UNIT2, TRI_EPS, confidence=1 - 1e-4, samples=20_000, seed=seed,
                    options=CertifyOptions(proof_max_boxes=50))
        assert r.violation_rate_lower <= TRI_TRUTH <= r.violation_rate_upper
        assert r.violation_rate_upper <= 1.05 * TRI_TRUTH
        # the bound respects the deterministic part: refuted mass <= lower <= upper <= 1 - proven mass
        assert r.refuted_fraction <= r.violation_rate_lower + 1e-15
        assert r.violation_rate_upper <= 1.0 - r.proven_fraction + 1e-12
        w_u = r.stats["open_fraction"]
        naive = r.refuted_fraction + w_u * r.violations / r.samples
        naive_below += naive < TRI_TRUTH
    # power check: the plug-in estimate (a wrong "bound") falls below the truth in a good share of runs
    assert naive_below >= 3


def test_plain_methods_contain_the_true_rate():
    f, g = relu_twin(1.0, 0.9, [1.0])                  # violating iff x > 0.95: rate 0.05
    for method in ("clopper-pearson", "hoeffding", "bernstein"):
        r = certify(f, g, ([0.0], [1.0]), 0.05, confidence=0.999, samples=20_000, method=method)
        assert r.violation_rate_upper >= 0.05, method
        assert r.violation_rate_upper <= 0.05 + 0.03, method
        assert r.top1_disagreement_rate_upper is not None      # one output: never a disagreement
        assert r.comparison["source"] == "the same samples"


def test_gaussian_distribution_uses_gaussian_stratum_masses():
    """1-D, N(0.5, 0.2^2) truncated to [0, 1]: the violating set x > 0.95 has a closed-form mass."""
    f, g = relu_twin(1.0, 0.9, [1.0])
    a, b, cut = (0.0 - 0.5) / 0.2, (1.0 - 0.5) / 0.2, (0.95 - 0.5) / 0.2
    truth = (norm.cdf(b) - norm.cdf(cut)) / (norm.cdf(b) - norm.cdf(a))
    r = certify(f, g, ([0.0], [1.0]), 0.05, confidence=0.999, samples=20_000, distribution="gauss:0.2",
                options=CertifyOptions(proof_max_boxes=60))
    assert r.violation_rate_lower <= truth <= r.violation_rate_upper <= 1.2 * truth
    assert r.proven_fraction > 0.8
    assert r.distribution["kind"] == "truncated-gaussian"
    masses = r.proven_fraction + r.refuted_fraction + r.stats["open_fraction"]
    assert masses == pytest.approx(1.0, abs=1e-12)


def test_expected_deviation_and_quantile_contain_the_truth():
    f, g = relu_twin(1.0, 0.9, [1.0])                  # D = relu(x - 0.9): mean 0.005, 1e-2 quantile 0.09
    for method in ("simcert", "bernstein", "hoeffding"):
        r = certify(f, g, ([0.0], [1.0]), 0.05, confidence=0.999, samples=20_000, method=method, quantile=0.01,
                    options=CertifyOptions(proof_max_boxes=40))
        assert r.expected_deviation_upper >= 0.005, method
        assert r.deviation_quantile_upper >= 0.09 - 1e-6, method
        # plain: the order statistic is close; simcert: the refuted leaves' deterministic bound (<= max D)
        assert r.deviation_quantile_upper <= (0.1 + 1e-6 if method == "simcert" else 0.095), method


# ---------------------------------------------------------------------------- SimCert vs plain sampling


def test_without_proofs_simcert_is_plain_stratified_sampling():
    r = certify(TRI_F, TRI_G, UNIT2, TRI_EPS, confidence=0.999, samples=20_000, seed=3,
                options=CertifyOptions(proof_max_boxes=200, prove=False))
    assert r.proven_fraction == 0.0 and r.refuted_fraction == 0.0
    assert r.stats["open_fraction"] == pytest.approx(1.0)
    assert r.sampled_strata > 50
    # one pooled Clopper-Pearson bound on all draws: exactly the plain formula
    plain = float(clopper_pearson_upper(r.violations, r.samples, 1e-3))
    assert r.violation_rate_upper == pytest.approx(plain, rel=1e-12)
    # proportional allocation: per-stratum counts follow the strata masses (the strata here are dyadic boxes)
    assert sum(r.samples_per_stratum) == r.samples == 20_000
    # the embedded plain sample has the same size and, without proofs, the same draws
    assert r.comparison["samples"] == 20_000
    # and the answer still contains the truth
    assert r.violation_rate_upper >= TRI_TRUTH


def test_neyman_allocation_is_valid_and_fixed():
    r = certify(TRI_F, TRI_G, UNIT2, TRI_EPS, confidence=0.999, samples=20_000,
                options=CertifyOptions(proof_max_boxes=60, allocation="neyman"))
    assert r.stats["allocation"] == "neyman"
    assert min(r.samples_per_stratum) >= 1 and sum(r.samples_per_stratum) == 20_000
    assert r.violation_rate_lower <= TRI_TRUTH <= r.violation_rate_upper
    assert r.comparison is None


def test_samples_needed_is_ten_times_below_clopper_pearson():
    """A twin proven on ~94% of its region certifies rate <= 1e-4 at 1 - 1e-6 with a tenth of CP's samples."""
    f, g = mlp_twin()
    region = ([-1.0, -1.0], [1.0, 1.0])
    eps = 0.00553                                      # just above the largest deviation seen in 1e6 samples
    needed = samples_needed_clopper_pearson(1e-4, 1e-6)
    assert 137_000 < needed < 139_000
    n = needed // 10
    r = certify(f, g, region, eps, confidence=1 - 1e-6, rate=1e-4, samples=n,
                options=CertifyOptions(proof_max_boxes=100))
    assert r.verdict == "holds" and r.samples <= n
    assert r.proven_fraction > 0.9
    assert r.stats["samples_needed_if_clean"] <= n       # the partition alone predicts it
    plain = certify(f, g, region, eps, confidence=1 - 1e-6, rate=1e-4, samples=n, method="clopper-pearson")
    assert plain.verdict == "unknown" and plain.violation_rate_upper > 1e-4
    # the embedded comparison tells the same story on the same draws
    assert r.comparison["clopper_pearson"] > 1e-4 >= r.violation_rate_upper


def test_budget_run_stops_early_at_a_checkpoint():
    f, g = mlp_twin()
    r = certify(f, g, ([-1.0, -1.0], [1.0, 1.0]), 0.00553, confidence=1 - 1e-6, rate=1e-4, budget=20.0,
                options=CertifyOptions(proof_max_boxes=100))
    assert r.verdict == "holds"
    assert r.checkpoint is not None and r.samples == r.checkpoint
    assert r.samples < 20_000
    assert r.delta_used < 1e-6                          # a share of delta, not all of it
    assert r.time["total_s"] < 20.0


# ---------------------------------------------------------------------------------------- verdicts


def test_violated_verdict_with_confirmed_example():
    f, g = relu_twin(1.0, 0.9, [1.0])                  # rate 0.05 > target 0.01
    for method in ("simcert", "clopper-pearson"):
        r = certify(f, g, ([0.0], [1.0]), 0.05, confidence=0.999, rate=0.01, samples=5_000, method=method,
                    options=CertifyOptions(proof_max_boxes=20))
        assert r.verdict == "violated", method
        assert r.violation_rate_lower > 0.01
        assert r.examples
        for ex in r.examples:
            x = np.asarray(ex.x)
            assert x[0] > 0.95                             # inside the violating interval
            assert abs(float(g(x[None])[0, 0] - f(x[None])[0, 0])) > 0.05
            assert ex.deviation == pytest.approx(abs(float(ex.g_out[0] - ex.f_out[0])))
        d = json.loads(json.dumps(r.to_dict(), allow_nan=False))
        assert d["verdict"] == "violated" and d["counterexample"]["input"] == list(r.examples[0].x)


def test_unknown_when_undecided_and_holds_without_rate():
    f, g = relu_twin(1.0, 0.9, [1.0])
    r = certify(f, g, ([0.0], [1.0]), 0.05, confidence=0.999, rate=0.05, samples=2_000, method="clopper-pearson")
    assert r.verdict == "unknown"                      # the truth sits exactly at the target
    r = certify(f, g, ([0.0], [1.0]), 0.05, samples=2_000, method="clopper-pearson")
    assert r.verdict == "holds"                        # no target: a certificate was issued


def test_fully_proven_region_needs_no_samples():
    f, g = relu_twin(1.0, 0.9, [1.0])
    r = certify(f, g, ([0.0], [0.8]), 0.05, confidence=1 - 1e-6, rate=1e-6)
    assert r.verdict == "holds" and r.samples == 0
    assert r.violation_rate_upper == 0.0 and r.proven_fraction == 1.0


def test_per_output_rates_and_json():
    # two outputs; only output 1 deviates
    w1 = np.array([[1.0], [1.0]])
    b1 = np.array([-0.9, 1.0])
    f = Network([Dense(w1, b1), ReLU(), Dense(np.array([[0.0, 1.0], [0.0, 1.0]]), np.zeros(2))], (1,))
    g = Network([Dense(w1, b1), ReLU(), Dense(np.array([[0.0, 1.0], [1.0, 1.0]]), np.zeros(2))], (1,))
    r = certify(f, g, ([0.0], [1.0]), 0.05, confidence=0.999, samples=10_000, method="clopper-pearson")
    assert r.per_output_rate_upper[0] < 1e-3 < 0.05 <= r.per_output_rate_upper[1]
    assert r.top1_disagreement_rate_upper is not None
    d = json.loads(json.dumps(r.to_dict()))
    for key in ("confidence", "samples", "violation_rate_upper", "proven_fraction", "deviation_quantile_upper",
                "expected_deviation_upper", "comparison", "seed", "distribution", "strata", "deviation_range"):
        assert key in d
    assert d["samples"]["total"] == 10_000 and d["samples"]["per_stratum"] == [10_000]
    assert set(d["comparison"]) >= {"hoeffding", "clopper_pearson"}
    s = certify(f, g, ([0.0], [1.0]), 0.05, confidence=0.999, samples=10_000, outputs=[1],
                options=CertifyOptions(proof_max_boxes=30))
    assert list(s.per_output_rate_upper) == [1] and s.outputs == [1]


def test_reproducible_with_a_seed():
    kw = dict(confidence=0.999, samples=5_000, options=CertifyOptions(proof_max_boxes=40))
    a = certify(TRI_F, TRI_G, UNIT2, TRI_EPS, seed=7, **kw)
    b = certify(TRI_F, TRI_G, UNIT2, TRI_EPS, seed=7, **kw)
    c = certify(TRI_F, TRI_G, UNIT2, TRI_EPS, seed=8, **kw)
    assert a.violation_rate_upper == b.violation_rate_upper and a.samples_per_stratum == b.samples_per_stratum
    assert (a.violations, a.samples_per_stratum) != (c.violations, c.samples_per_stratum)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(confidence=1.0),
        dict(rate=0.0),
        dict(samples=10, budget=1.0),
        dict(samples=0),
        dict(budget=-1.0),
        dict(method="monte-carlo"),
        dict(distribution="cauchy"),
        dict(quantile=1.5),
        dict(batch_size=0),
        dict(outputs=[3]),
    ],
)
def test_bad_arguments_raise_input_error(kwargs):
    f, g = relu_twin(1.0, 0.9, [1.0])
    with pytest.raises(InputError):
        certify(f, g, ([0.0], [1.0]), 0.05, **kwargs)


def test_bad_options_raise_input_error():
    with pytest.raises(InputError):
        CertifyOptions(allocation="random")
    with pytest.raises(InputError):
        CertifyOptions(proof_share=1.0)
    with pytest.raises(InputError):
        CertifyOptions(first_checkpoint=0)


def test_region_must_match_the_model():
    f, g = relu_twin(1.0, 0.9, [1.0])
    with pytest.raises(InputError):
        certify(f, g, UNIT2, 0.05, samples=10)
    assert math.isfinite(certify(f, g, ([0.0], [1.0]), 0.05, samples=100).violation_rate_upper)


def test_progress_reports_every_phase():
    seen = []
    certify(TRI_F, TRI_G, UNIT2, TRI_EPS, samples=2_000, progress=seen.append,
            options=CertifyOptions(proof_max_boxes=40))
    phases = [p.phase for p in seen]
    assert phases[0] == "partition" and "sampling" in phases and phases[-1] == "done"
    assert seen[-1].samples == 2_000 and 0.0 < seen[-1].proven_fraction < 1.0
