import dataclasses
import json
import math

import numpy as np
import pytest

from simcert.errors import InputError
from simcert.spec import (
    DeltaTop1,
    EpsEquivalence,
    LinearSpec,
    RsmSpec,
    Top1,
    check_outputs,
    property_from_json,
    top1_specs,
)


# ------------------------------------------------------------------------------------------ validation
@pytest.mark.parametrize("eps", [0, -0.1, float("nan"), float("inf"), "abc", None])
def test_eps_must_be_positive_and_finite(eps):
    with pytest.raises(InputError, match="eps"):
        EpsEquivalence(eps)


@pytest.mark.parametrize("outputs", [[], [-1], [1, 1], [1.5], [True], ["a"]])
def test_eps_outputs_must_be_distinct_indices(outputs):
    with pytest.raises(InputError, match="outputs"):
        EpsEquivalence(0.1, outputs=outputs)


@pytest.mark.parametrize("delta", [0.49, 1.0, 1.5, float("nan"), "x"])
def test_delta_range(delta):
    with pytest.raises(InputError, match="delta"):
        DeltaTop1(delta)


def test_valid_constructions_normalize_their_fields():
    p = EpsEquivalence(1, outputs=np.array([2, 0]))
    assert p.eps == 1.0 and isinstance(p.eps, float) and p.outputs == (2, 0)
    assert EpsEquivalence(0.1, outputs=3).outputs == (3,)
    assert DeltaTop1(0.5).delta == 0.5
    assert RsmSpec(np.int64(2), others=[0, 1]) == RsmSpec(2, (0, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.eps = 2.0  # type: ignore[misc]


def test_rsm_and_linear_validation():
    with pytest.raises(InputError, match="label"):
        RsmSpec(-1)
    with pytest.raises(InputError, match="must not contain the label"):
        RsmSpec(1, others=[0, 1])
    with pytest.raises(InputError, match="same shape"):
        LinearSpec([1.0, 0.0], [1.0, 0.0, 0.0])
    with pytest.raises(InputError, match="offset has 3 values"):
        LinearSpec([[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 0.0]], offset=[1, 2, 3])
    with pytest.raises(InputError, match="NaN"):
        LinearSpec([np.nan, 0.0], [0.0, 0.0])


def test_indices_out_of_range_fail_at_spec_time():
    with pytest.raises(InputError, match="output index 5 is out of range for a model with 3 outputs"):
        EpsEquivalence(0.1, outputs=[5]).specs(3)
    with pytest.raises(InputError, match="label index 4"):
        RsmSpec(4).specs(3)
    with pytest.raises(InputError, match="class index 3"):
        top1_specs(3, 3)
    with pytest.raises(InputError, match="3 coefficients per network, the model has 2"):
        LinearSpec([1.0, 0.0, 0.0], [0.0, 0.0, 0.0]).specs(2)
    with pytest.raises(InputError):
        EpsEquivalence(0.1).specs(0)


# ------------------------------------------------------------------------------------------ spec matrices
def test_eps_specs_are_g_minus_f(rng):
    C1, C2 = EpsEquivalence(0.1).specs(3)
    np.testing.assert_array_equal(C1, -np.eye(3))
    np.testing.assert_array_equal(C2, np.eye(3))
    C1, C2 = EpsEquivalence(0.1, outputs=[2, 0]).specs(4)
    f, g = rng.normal(size=4), rng.normal(size=4)
    np.testing.assert_allclose(C1 @ f + C2 @ g, [g[2] - f[2], g[0] - f[0]])


def test_top1_specs_rows(rng):
    C1, C2 = top1_specs(1, 3)
    assert C1.shape == C2.shape == (4, 3)
    f, g = rng.normal(size=3), rng.normal(size=3)
    np.testing.assert_allclose(C1 @ f + C2 @ g, [f[1] - f[0], f[1] - f[2], g[1] - g[0], g[1] - g[2]])
    D1, D2 = Top1().specs(3, label=1)
    np.testing.assert_array_equal(D1, C1)
    np.testing.assert_array_equal(D2, C2)
    E1, E2 = DeltaTop1(0.9).specs(3, label=1)
    np.testing.assert_array_equal(E1, C1)


def test_top1_without_label_gives_all_pairs(rng):
    C1, C2 = Top1().specs(4)
    assert C1.shape == (12, 4)
    f, g = rng.normal(size=4), rng.normal(size=4)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    expected = [f[i] - f[j] for i, j in pairs] + [g[i] - g[j] for i, j in pairs]
    np.testing.assert_allclose(C1 @ f + C2 @ g, expected)


def test_rsm_specs_are_relative_margins(rng):
    C1, C2 = RsmSpec(2).specs(4)
    f, g = rng.normal(size=4), rng.normal(size=4)
    expected = [(f[2] - f[j]) - (g[2] - g[j]) for j in (0, 1, 3)]
    np.testing.assert_allclose(C1 @ f + C2 @ g, expected)
    C1, C2 = RsmSpec(0, others=[3]).specs(4)
    np.testing.assert_allclose(C1 @ f + C2 @ g, [(f[0] - f[3]) - (g[0] - g[3])])


def test_linear_spec_shapes():
    s = LinearSpec([1.0, -1.0], [0.5, 0.0], offset=2.0)
    C1, C2 = s.specs(2)
    assert C1.shape == (1, 2)
    np.testing.assert_array_equal(s.offset, [2.0])
    C1[0, 0] = 99.0  # specs() hands out copies
    assert s.c1[0, 0] == 1.0


def test_delta_margin_threshold_is_a_valid_necessary_condition(rng):
    assert DeltaTop1(0.5).margin_threshold() == 0.0
    assert DeltaTop1(0.9).margin_threshold() == pytest.approx(math.log(9))
    p = DeltaTop1(0.8)
    logits = rng.normal(size=(20000, 5)) * 3
    prob = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    confident = prob.max(axis=1) >= p.delta
    assert confident.sum() > 100
    top = logits[confident].max(axis=1, keepdims=True)
    others = np.sort(logits[confident], axis=1)[:, :-1]
    assert np.all(top - others >= p.margin_threshold() - 1e-12)


# ------------------------------------------------------------------------------------------ check_outputs
def test_check_eps():
    f = np.zeros((3, 2))
    g = np.array([[0.05, 0.0], [0.2, 0.0], [0.0, -0.1]])
    np.testing.assert_array_equal(check_outputs(EpsEquivalence(0.1), f, g), [False, True, False])  # == eps holds
    np.testing.assert_array_equal(check_outputs(EpsEquivalence(0.1, outputs=[1]), f, g), [False, False, False])
    np.testing.assert_array_equal(check_outputs(EpsEquivalence(0.09, outputs=[1]), f, g), [False, False, True])
    single = check_outputs(EpsEquivalence(0.1), [0.0, 0.0], [0.0, 0.5])
    assert single.shape == () and bool(single)


def test_check_top1_and_delta_top1():
    f = np.array([[3.0, 0.0, 0.0], [0.6, 0.0, 0.0], [0.0, 2.0, 0.0]])
    g = np.array([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    np.testing.assert_array_equal(check_outputs(Top1(), f, g), [True, True, False])
    # softmax(f) top prob: row 0 ~ 0.91 (confident at 0.8), row 1 ~ 0.48 (not confident)
    np.testing.assert_array_equal(check_outputs(DeltaTop1(0.8), f, g), [True, False, False])
    np.testing.assert_array_equal(check_outputs(DeltaTop1(0.95), f, g), [False, False, False])


def test_check_delta_top1_is_stable_for_huge_logits():
    f = np.array([[1000.0, 0.0]])
    g = np.array([[0.0, 1.0]])
    np.testing.assert_array_equal(check_outputs(DeltaTop1(0.99), f, g), [True])


def test_check_rsm_and_linear():
    f = np.array([[2.0, 0.0], [2.0, 0.0]])
    g = np.array([[1.0, 0.0], [3.0, 0.0]])
    np.testing.assert_array_equal(check_outputs(RsmSpec(0), f, g), [False, True])
    lin = LinearSpec([1.0, 0.0], [0.0, 0.0], offset=-1.5)  # f_0 - 1.5 >= 0
    fx = np.array([[2.0, 0.0], [1.0, 0.0]])
    np.testing.assert_array_equal(check_outputs(lin, fx, np.zeros((2, 2))), [False, True])


def test_check_outputs_input_errors():
    with pytest.raises(InputError, match="same shape"):
        check_outputs(Top1(), np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(InputError, match="NaN"):
        check_outputs(Top1(), np.array([np.nan, 0.0]), np.zeros(2))
    with pytest.raises(InputError, match="unknown property"):
        check_outputs("eps", np.zeros(2), np.zeros(2))  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ describe / JSON
@pytest.mark.parametrize(
    "prop",
    [
        EpsEquivalence(0.05),
        EpsEquivalence(0.05, outputs=[0, 3]),
        Top1(),
        DeltaTop1(0.75),
        RsmSpec(3),
        RsmSpec(3, others=[1, 2]),
    ],
)
def test_json_round_trip(prop):
    data = json.loads(json.dumps(prop.to_json()))
    assert property_from_json(data) == prop
    assert isinstance(prop.describe(), str) and prop.describe()


def test_linear_json_round_trip_and_describe():
    s = LinearSpec([[1.0, 0.0]], [[0.0, -1.0]], offset=0.25)
    back = property_from_json(json.loads(json.dumps(s.to_json())))
    np.testing.assert_array_equal(back.c1, s.c1)
    np.testing.assert_array_equal(back.c2, s.c2)
    np.testing.assert_array_equal(back.offset, s.offset)
    assert "1 linear spec" in s.describe()
    with pytest.raises(InputError):
        property_from_json({"type": "nope"})
    with pytest.raises(InputError):
        property_from_json({"eps": 1})


def test_describe_text():
    text = EpsEquivalence(0.05, outputs=[0]).describe()
    assert "0.05" in text and "[0]" in text
    assert "argmax" in Top1().describe()
