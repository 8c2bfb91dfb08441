"""`rsm_dataset`: summary counts on a tiny case worked out by hand, agreement with `rsm` per sample, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rsm_twins import pi_numpy, twins
from simcert.errors import InputError
from simcert.network import Dense, Network
from simcert.rsm import rsm, rsm_dataset
from simcert.spec import Box


def _linear(scale: float) -> Network:
    return Network([Dense(scale * np.eye(3), np.zeros(3))], (3,))


def test_summary_counts_on_a_tiny_case():
    # f(x) = x, g(x) = 0.5 x: Pi_cj(x) = 0.5 (x_c - x_j), radius 0.05 (clipped to [0, 1])
    f, g = _linear(1.0), _linear(0.5)
    x = np.array([
        [0.9, 0.1, 0.0],   # label 0, clear margin: Pi > 0 on the ball -> g=>f proven, f=>g refuted
        [0.1, 0.8, 0.3],   # label 1, clear margin -> g=>f
        [0.5, 0.52, 0.0],  # label 1 (f is right), x_1 - x_0 changes sign on the ball -> neither, both refuted
        [0.9, 0.3, 0.1],   # given label 2 but f says 0: x_2 < x_j on the ball -> Pi < 0 -> f=>g proven
    ])
    labels = [0, 1, 1, 2]
    res = rsm_dataset(f, g, x, labels, radius=0.05, batch=2)
    assert res.verdicts.tolist() == ["g=>f", "g=>f", "neither", "f=>g"]
    s = res.summary
    assert (s["g=>f_proven"], s["f=>g_proven"], s["neither"]) == (0.5, 0.25, 0.25)
    assert s["implications"]["g=>f"] == {"proven": 0.5, "refuted": 0.5, "unknown": 0.0}
    assert s["implications"]["f=>g"] == {"proven": 0.25, "refuted": 0.75, "unknown": 0.0}
    acc = s["accuracy"]
    assert (acc["f_correct"], acc["g_correct"], acc["both_correct"], acc["twin_wrong"]) == (0.75, 0.75, 0.75, 0.25)
    assert acc["twin_wrong_where_f_right"] == 0.0 and acc["agreement"] == 1.0
    # certified bounds: Pi_cj = 0.5 (x_c - x_j) is linear, so the engine is exact up to widening
    np.testing.assert_allclose(res.min_lower()[0], 0.5 * (0.85 - 0.15), atol=1e-8)
    np.testing.assert_allclose(res.max_upper()[3], 0.5 * (0.15 - 0.25), atol=1e-8)
    # the pair losing most margin: label 0 against class 2 (Pi up to 0.5 * (0.95 - 0))
    top = s["margin_lost_most"][0]
    assert (top["label"], top["other"]) == (0, 2)
    np.testing.assert_allclose(top["max_observed"], 0.475, atol=1e-9)
    # witnesses: confirmed, inside the ball, on the wrong side
    for i, side in ((0, "f=>g"), (2, "g=>f"), (2, "f=>g"), (3, "g=>f")):
        w = res.witnesses[i][side]
        assert w is not None and Box.linf(x[i], 0.05, (0, 1)).contains(w.x)
        v = pi_numpy(f, g, w.x[None], labels[i])[0, w.row]
        assert (v < 0) if side == "g=>f" else (v > 0)
    d = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert len(d["samples"]) == 4 and d["samples"][3]["verdict"] == "f=>g"
    assert d["summary"]["time"]["per_sample_s"] > 0


def test_default_labels_are_f_decisions():
    f, g = _linear(1.0), _linear(0.5)
    x = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.7]])
    res = rsm_dataset(f, g, x, radius=0.01)
    assert res.labels.tolist() == [0, 2] and not res.labels_given
    assert res.summary["accuracy"]["f_correct"] == 1.0


def test_dataset_matches_single_region_rsm():
    name, f, g = twins()[1]
    rng = np.random.default_rng(4)
    x = rng.uniform(-0.5, 0.5, size=(6, f.input_size))
    res = rsm_dataset(f, g, x, radius=0.1, clip=None, method="crown", search=False)
    for i in range(len(x)):
        one = rsm(f, g, Box.linf(x[i], 0.1), method="crown", search=False)
        assert one.label == res.labels[i]
        np.testing.assert_allclose(res.lower[i, list(one.others)], one.lower, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(res.upper[i, list(one.others)], one.upper, rtol=1e-9, atol=1e-12)
        for side in ("g=>f", "f=>g"):
            if one.status[side] == "proven":
                assert res.status[side][i] == "proven"
        # sampled points stay inside the per-sample bounds
        box = Box.linf(x[i], 0.1)
        pi = pi_numpy(f, g, box.sample(500, i), int(res.labels[i]))
        assert np.all(res.lower[i] <= pi.min(0) + 1e-9) and np.all(pi.max(0) <= res.upper[i] + 1e-9)


def test_dataset_bad_inputs():
    f, g = _linear(1.0), _linear(0.5)
    with pytest.raises(InputError, match="expects 3"):
        rsm_dataset(f, g, np.zeros((2, 4)), radius=0.1)
    with pytest.raises(InputError, match="radius"):
        rsm_dataset(f, g, np.zeros((2, 3)), radius=-0.1)
    with pytest.raises(InputError, match="labels"):
        rsm_dataset(f, g, np.zeros((2, 3)), [0], radius=0.1)
    with pytest.raises(InputError, match="class index"):
        rsm_dataset(f, g, np.zeros((2, 3)), [0, 5], radius=0.1)
    with pytest.raises(InputError, match="finite"):
        rsm_dataset(f, g, np.array([[0.0, np.nan, 0.0]]), radius=0.1)
