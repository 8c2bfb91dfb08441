import json
from fractions import Fraction

import numpy as np
import pytest
import torch

from simcert.errors import InputError
from simcert.network import Dense, Network
from simcert.spec import Box, read_vector


def test_geometry_of_a_small_box():
    b = Box([0.0, -1.0, 2.0], [1.0, 1.0, 2.0])
    assert b.dim == 3
    np.testing.assert_array_equal(b.center, [0.5, 0.0, 2.0])
    np.testing.assert_array_equal(b.radius, [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(b.width, [1.0, 2.0, 0.0])
    assert b.volume() == 0.0
    assert b.log_volume() == -np.inf
    b2 = Box([0.0, 0.0], [2.0, 3.0])
    assert b2.volume() == 6.0
    assert b2.log_volume() == pytest.approx(np.log(6.0))


def test_box_is_flat_float64_and_read_only():
    b = Box(np.zeros((1, 2, 2)), np.ones((1, 2, 2)))
    assert b.lower.shape == (4,) and b.lower.dtype == np.float64
    with pytest.raises(ValueError):
        b.lower[0] = 5.0
    src = np.zeros(2)
    b = Box(src, np.ones(2))
    src[0] = -7.0  # the box keeps its own copy
    assert b.lower[0] == 0.0


@pytest.mark.parametrize(
    "lower, upper, fragment",
    [
        ([0.0, np.nan], [1.0, 1.0], "lower bound [1]"),
        ([0.0, 0.0], [1.0, np.inf], "upper bound [1]"),
        ([0.0, 2.0, 3.0], [1.0, 1.0, 0.0], "input [1]"),
        ([0.0], [1.0, 2.0], "shape"),
        ([], [], "no coordinates"),
        (["a"], [1.0], "numeric"),
    ],
)
def test_invalid_boxes_name_the_problem(lower, upper, fragment):
    with pytest.raises(InputError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        Box(lower, upper)


def test_contains_points_and_batches():
    b = Box([0.0, 0.0], [1.0, 2.0])
    assert b.contains([0.5, 2.0])
    assert not b.contains([1.0 + 1e-9, 1.0])
    assert b.contains([1.0 + 1e-9, 1.0], tol=1e-8)
    got = b.contains(np.array([[0.0, 0.0], [2.0, 0.0], [1.0, -0.1]]))
    np.testing.assert_array_equal(got, [True, False, False])
    with pytest.raises(InputError, match="do not match"):
        b.contains([0.0, 0.0, 0.0])


def test_sample_is_inside_uniform_and_seeded(rng):
    b = Box([-1.0, 10.0, 3.0], [1.0, 20.0, 3.0])
    pts = b.sample(20000, rng)
    assert pts.shape == (20000, 3)
    assert b.contains(pts).all()
    assert np.all(pts[:, 2] == 3.0)
    # uniform: mean near the center, variance near width^2 / 12
    np.testing.assert_allclose(pts[:, :2].mean(axis=0), [0.0, 15.0], atol=0.05)
    np.testing.assert_allclose(pts[:, :2].var(axis=0), [4 / 12, 100 / 12], rtol=0.05)
    np.testing.assert_array_equal(b.sample(5, 7), b.sample(5, 7))
    assert b.sample(0, 1).shape == (0, 3)
    with pytest.raises(InputError):
        b.sample(-1, 1)


def test_check_model_message():
    net = Network([Dense(np.ones((2, 5)), np.zeros(2))], (5,), name="tiny")
    Box(np.zeros(5), np.ones(5)).check_model(net)
    with pytest.raises(InputError, match="region has 7 inputs, model expects 5"):
        Box(np.zeros(7), np.ones(7)).check_model(net)


def test_intersect():
    a = Box([0.0, 0.0], [2.0, 2.0])
    b = Box([1.0, -1.0], [3.0, 1.0])
    assert a.intersect(b) == Box([1.0, 0.0], [2.0, 1.0])
    assert a.intersect(Box([5.0, 5.0], [6.0, 6.0])) is None
    with pytest.raises(InputError):
        a.intersect(Box([0.0], [1.0]))


def test_equality_and_hash():
    assert Box([0.0], [1.0]) == Box([0.0], [1.0])
    assert Box([0.0], [1.0]) != Box([0.0], [2.0])
    assert len({Box([0.0], [1.0]), Box([0.0], [1.0])}) == 1


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_to_torch_rounds_outward(dtype):
    lower = np.array([0.1, -0.1, 1 / 3, 0.0, 1e-3])
    upper = lower + np.array([0.2, 0.3, 1e-9, 0.0, 1e-3])
    b = Box(lower, upper)
    lo, hi = b.to_torch(dtype)
    assert lo.dtype == dtype and hi.dtype == dtype and lo.shape == (5,)
    assert np.all(lo.double().numpy() <= lower)
    assert np.all(hi.double().numpy() >= upper)
    if dtype == torch.float64:
        np.testing.assert_array_equal(lo.numpy(), lower)


def test_linf_clip_and_outward_rounding():
    b = Box.linf([0.5, 0.0, 1.0], 0.25, clip=(0.0, 1.0))
    np.testing.assert_array_equal(b.lower, [0.25, 0.0, 0.75])
    np.testing.assert_array_equal(b.upper, [0.75, 0.25, 1.0])
    # per-coordinate radius and array clip
    b = Box.linf([1.0, 2.0], [0.5, 0.0], clip=([0.0, 0.0], [1.2, 5.0]))
    np.testing.assert_array_equal(b.lower, [0.5, 2.0])
    np.testing.assert_array_equal(b.upper, [1.2, 2.0])
    # c - r and c + r are rounded outward: the box contains the exact ball
    c, r = 0.1, 0.7
    b = Box.linf([c], r)
    assert Fraction(b.lower[0]) <= Fraction(c) - Fraction(r)
    assert Fraction(b.upper[0]) >= Fraction(c) + Fraction(r)
    # and exact cases stay exact
    assert Box.linf([0.5], 0.25) == Box([0.25], [0.75])


def test_linf_exactness_on_random_values(rng):
    c = rng.normal(size=200) * 10
    r = rng.uniform(0, 1, size=200)
    b = Box.linf(c, r)
    for i in range(200):
        assert Fraction(b.lower[i]) <= Fraction(c[i]) - Fraction(r[i]) <= Fraction(b.lower[i]) + Fraction(1e-12)
        assert Fraction(b.upper[i]) >= Fraction(c[i]) + Fraction(r[i]) >= Fraction(b.upper[i]) - Fraction(1e-12)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(center=[0.0, 0.0], radius=-0.1), "radius"),
        (dict(center=[0.0, 0.0], radius=[0.1, 0.1, 0.1]), "radius has 3 values"),
        (dict(center=[0.0, np.nan], radius=0.1), r"center \[1\]"),
        (dict(center=[0.5, 3.0], radius=0.1, clip=(0.0, 1.0)), r"center \[1\] = 3.0"),
        (dict(center=[0.5], radius=0.1, clip=(1.0, 0.0)), "clip range is empty"),
        (dict(center=[0.5], radius=0.1, clip=0.0), "pair"),
    ],
)
def test_linf_validation(kwargs, fragment):
    with pytest.raises(InputError, match=fragment):
        Box.linf(**kwargs)


def test_from_csv_formats_and_errors(tmp_path):
    lo = tmp_path / "lo.csv"
    hi = tmp_path / "hi.csv"
    lo.write_text("0.0\n-1.5\n\n2\n")
    hi.write_text("1.0, 1.5, 2.0  # trailing comment\n")
    b = Box.from_csv(lo, hi)
    assert b == Box([0.0, -1.5, 2.0], [1.0, 1.5, 2.0])
    bad = tmp_path / "bad.csv"
    bad.write_text("0.0\n0.5,abc\n")
    with pytest.raises(InputError, match=r"bad.csv:2: 'abc'"):
        Box.from_csv(bad, hi)
    short = tmp_path / "short.csv"
    short.write_text("1.0\n")
    with pytest.raises(InputError, match="has 3 values but"):
        Box.from_csv(lo, short)
    with pytest.raises(InputError, match="cannot read"):
        Box.from_csv(tmp_path / "missing.csv", hi)
    empty = tmp_path / "empty.csv"
    empty.write_text("\n# nothing\n")
    with pytest.raises(InputError, match="no values"):
        read_vector(empty)
    inverted = tmp_path / "inv.csv"
    inverted.write_text("0.0, -2.0, 2.0")
    with pytest.raises(InputError, match=r"input \[1\]"):
        Box.from_csv(lo, inverted)


def test_json_round_trip_is_exact():
    b = Box([0.1, -1 / 3, 1e-300], [0.2, 2 / 3, 1.0])
    data = json.loads(json.dumps(b.to_json()))
    assert Box.from_json(data) == b
    assert Box.from_json(json.dumps(b.to_json())) == b
    with pytest.raises(InputError):
        Box.from_json({"lower": [0.0]})
    with pytest.raises(InputError):
        Box.from_json("{not json")
    with pytest.raises(InputError, match="dim"):
        Box.from_json({"type": "box", "dim": 3, "lower": [0.0], "upper": [1.0]})


def test_repr_is_short_for_big_boxes():
    assert len(repr(Box(np.zeros(784), np.ones(784)))) < 200
