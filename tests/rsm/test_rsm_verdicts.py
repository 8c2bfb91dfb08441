"""Verdict logic of `rsm` on hand-made twins whose margins provably differ, the JSON form and input errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rsm_twins import mlp, pi_numpy, scaled_output
from simcert.errors import InputError
from simcert.network import Dense, Network, ReLU
from simcert.rsm import rsm
from simcert.rsm_result import json_float, ratio
from simcert.spec import Box


@pytest.fixture(scope="module")
def robust():
    """A small classifier and a box on which it picks class 0 with a margin >= 1 (so f_0 - f_j > 0 there)."""
    f = Network(
        [Dense(np.array([[2.0, -1.0], [-1.0, 1.0], [0.5, 0.5]]), np.array([0.0, 0.0, -1.0])), ReLU(),
         Dense(np.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), np.array([1.0, 0.0, 0.0]))],
        (2,),
    )
    box = Box([0.6, 0.0], [1.0, 0.3])
    x = box.sample(2000, 0)
    y = f(x)
    assert np.all(y[:, 0] - np.max(y[:, 1:], axis=1) >= 1.0)
    return f, box


def test_smaller_margins_give_g_implies_f(robust):
    f, box = robust
    res = rsm(f, scaled_output(f, 0.5), box)  # Pi = 0.5 (f_0 - f_j) > 0
    assert res.label == 0 and res.others == (1, 2)
    assert res.verdict == "g=>f"
    assert res.status == {"g=>f": "proven", "f=>g": "refuted"}
    w = res.witnesses["f=>g"]
    assert w is not None and box.contains(w.x) and w.pi[w.row] > 0
    assert res.witnesses["g=>f"] is None
    assert np.all(res.lower > 0)


def test_larger_margins_give_f_implies_g(robust):
    f, box = robust
    res = rsm(f, scaled_output(f, 2.0), box)  # Pi = -(f_0 - f_j) < 0
    assert res.verdict == "f=>g"
    assert res.status == {"g=>f": "refuted", "f=>g": "proven"}
    w = res.witnesses["g=>f"]
    assert w is not None and box.contains(w.x) and w.pi[w.row] < 0
    assert np.all(res.upper < 0)


def test_identical_twins_have_equal_margins(robust):
    f, box = robust
    res = rsm(f, f, box)
    assert res.verdict == "both"
    assert np.all(res.lower == 0) and np.all(res.upper == 0)


def test_crossing_margins_give_neither_with_two_witnesses(robust):
    f, box = robust
    # only hidden neuron 0 (h0 = 2 x0 - x1, in [0.9, 2]) is active on the box; g's output 1 gets h0 - 1.45
    # extra, so Pi_01 = g_1 - f_1 = h0 - 1.45 changes sign inside the box (and Pi_02 = 0)
    last = f.layers[-1]
    w = last.weight.copy()
    w[1, 0] += 1.0
    b = last.bias.copy()
    b[1] -= 1.45
    g = Network(f.layers[:-1] + [Dense(w, b)], f.input_shape)
    res = rsm(f, g, box, timeout=2.0)
    assert res.verdict == "neither"
    assert res.status == {"g=>f": "refuted", "f=>g": "refuted"}
    for side, sign in (("g=>f", -1), ("f=>g", 1)):
        wit = res.witnesses[side]
        assert box.contains(wit.x)
        pi = pi_numpy(f, g, wit.x[None], 0)[0]
        np.testing.assert_allclose(pi, wit.pi)
        assert sign * pi[wit.row] > 0
        np.testing.assert_allclose(wit.f_out, f(wit.x))
        np.testing.assert_allclose(wit.g_out, g(wit.x))
    assert np.all(res.lower <= res.observed_lower) and np.all(res.observed_upper <= res.upper)


def test_branch_and_bound_proves_what_the_root_bound_cannot():
    rng = np.random.default_rng(3)
    f = mlp(rng, [2, 16, 16, 3])
    g = scaled_output(f, 0.5)
    # a box where f keeps its decision but the single CROWN call is too loose to show it
    for _ in range(200):
        x0 = rng.uniform(-1, 1, size=2)
        box = Box(x0 - 0.25, x0 + 0.25)
        c = int(np.argmax(f(x0)))
        y = f(box.sample(3000, 0))
        if np.min(y[:, c] - np.delete(y, c, axis=1).max(1)) <= 0.05:
            continue
        root = rsm(f, g, box, method="crown", search=False)
        if root.status["g=>f"] == "unknown":
            break
    else:
        pytest.fail("no suitable box found")
    res = rsm(f, g, box, method="crown", timeout=20.0)
    assert res.status["g=>f"] == "proven"
    assert res.stats["boxes_bounded"] > 0
    assert np.all(res.lower >= 0) and np.all(res.lower >= root.lower)


def test_to_dict_is_strict_json_with_ratio_form(robust):
    f, box = robust
    res = rsm(f, scaled_output(f, 0.5), box)
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert d["verdict"] == "g=>f" and d["implications"]["g=>f"] == "proven"
    for row, lo, hi in zip(d["bounds"], res.lower, res.upper):
        assert math.isclose(row["ratio_lower"], math.exp(lo)) and math.isclose(row["ratio_upper"], math.exp(hi))
    assert d["witnesses"]["g=>f"] is None and d["witnesses"]["f=>g"]["value"] > 0
    assert json_float(math.inf) == "inf" and json_float(-math.inf) == "-inf" and json_float(2.5) == 2.5
    assert ratio(800.0) == "inf" and ratio(0.0) == 1.0


def test_bad_inputs(robust):
    f, box = robust
    with pytest.raises(InputError, match="label"):
        rsm(f, f, box, label=3)
    with pytest.raises(InputError, match="label"):
        rsm(f, f, box, label=-1)
    with pytest.raises(InputError, match="timeout"):
        rsm(f, f, box, timeout=0)
    with pytest.raises(InputError, match="region has 3 inputs"):
        rsm(f, f, Box([0, 0, 0], [1, 1, 1]))
    with pytest.raises(InputError, match="unknown method"):
        rsm(f, scaled_output(f, 0.5), box, method="magic")
    one = Network([Dense(np.ones((1, 2)), np.zeros(1))], (2,))
    with pytest.raises(InputError, match="2 classes"):
        rsm(one, one, box)
