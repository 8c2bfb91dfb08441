"""The exact MILP engine: the oracle of every other engine, so it is checked against sampling, fine grids and
the real networks evaluated at its own witnesses (exactness: the bound is attained)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from simcert.bounds.milp import MilpResult, milp_bound_spec
from simcert.errors import InputError, UnsupportedOpError
from simcert.network.layers import (
    AvgPool2d,
    Conv2d,
    Dense,
    ElementwiseAffine,
    Layer,
    QuantizeActivation,
    ReLU,
    Reshape,
)
from simcert.network.network import Network


# ----------------------------------------------------------------------------------------------- helpers


def mlp(widths: list[int], rng: np.random.Generator, name: str = "net") -> Network:
    layers: list[Layer] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(Dense(rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.3))
        if i < len(widths) - 2:
            layers.append(ReLU())
    return Network(layers, (widths[0],), name=name)


def perturbed(net: Network, rng: np.random.Generator, sigma: float, name: str = "twin") -> Network:
    layers: list[Layer] = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            layers.append(Dense(layer.weight + sigma * rng.normal(size=layer.weight.shape),
                                layer.bias + sigma * rng.normal(size=layer.bias.shape)))
        elif isinstance(layer, Conv2d):
            layers.append(Conv2d(layer.weight + sigma * rng.normal(size=layer.weight.shape),
                                 layer.bias + sigma * rng.normal(size=layer.bias.shape), layer.stride, layer.padding))
        else:
            layers.append(layer)
    return net.with_layers(layers, name=name)


def spec(f: Network, g: Network, x: np.ndarray, c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """(N, k) values of c1 . f(x) + c2 . g(x)."""
    return f(x) @ c1.T + g(x) @ c2.T


def samples(lo: np.ndarray, hi: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.uniform(lo, hi, size=(n, lo.size))
    if lo.size <= 10:  # add the corners: a piecewise-linear max is often there
        corners = np.array(np.meshgrid(*[[a, b] for a, b in zip(lo, hi)], indexing="ij")).reshape(lo.size, -1).T
        x = np.concatenate([x, corners])
    return x


def check_against_sampling(f, g, lo, hi, c1, c2, res: MilpResult, rng, n=200_000) -> None:
    """Soundness (no sample outside the bounds) and exactness (each bound attained at its witness within 1e-6)."""
    vals = spec(f, g, samples(lo, hi, n, rng), c1, c2)
    assert np.all(vals.max(0) <= res.upper), f"sample above MILP upper by {np.max(vals.max(0) - res.upper)}"
    assert np.all(vals.min(0) >= res.lower), f"sample below MILP lower by {np.max(res.lower - vals.min(0))}"
    assert res.optimal.all()
    assert res.argmax is not None and res.argmin is not None
    assert np.all(res.argmax >= lo) and np.all(res.argmax <= hi)
    for i in range(c1.shape[0]):
        v_max = spec(f, g, res.argmax[i][None], c1[i : i + 1], c2[i : i + 1])[0, 0]
        v_min = spec(f, g, res.argmin[i][None], c1[i : i + 1], c2[i : i + 1])[0, 0]
        assert v_max <= res.upper[i] and v_min >= res.lower[i]
        # exactness: the (un-widened) optimum is the real value at the witness
        assert abs(res.upper[i] - res.margin[i, 1] - v_max) <= 1e-6, (res.upper[i], v_max)
        assert abs(res.lower[i] + res.margin[i, 0] - v_min) <= 1e-6, (res.lower[i], v_min)
        assert 0 < res.margin[i, 1] < 1e-4 and 0 < res.margin[i, 0] < 1e-4
        # the samples cannot beat the exact max; they should come reasonably close in these low dimensions
        assert vals[:, i].max() >= v_max - 0.25 * (res.upper[i] - res.lower[i] + 1e-9) - 1e-9


def ibp_relu_bounds(net: Network, lo: np.ndarray, hi: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Plain interval pre-activation bounds of each ReLU layer (Dense/ReLU nets), computed independently."""
    out = []
    for layer in net.layers:
        if isinstance(layer, Dense):
            w = layer.weight
            c, r = w @ ((lo + hi) / 2) + layer.bias, np.abs(w) @ ((hi - lo) / 2)
            lo, hi = c - r, c + r
        elif isinstance(layer, ReLU):
            out.append((lo.copy(), hi.copy()))
            lo, hi = np.maximum(lo, 0), np.maximum(hi, 0)
    return out


# ----------------------------------------------------------------------------------------------- exactness


def test_same_width_twin_matches_sampling_and_witness(rng):
    f = mlp([3, 8, 8, 2], rng)
    g = perturbed(f, rng, 0.05)
    lo, hi = -np.ones(3), np.ones(3)
    c1, c2 = -np.eye(2), np.eye(2)  # g_k - f_k
    res = milp_bound_spec(f, g, lo, hi, c1, c2)
    check_against_sampling(f, g, lo, hi, c1, c2, res, rng)
    assert res.time_s > 0
    # neither the LP bound tightening nor the difference rows may move the exact optimum
    plain = milp_bound_spec(f, g, lo, hi, c1, c2, lp_fraction=0.0, sides=("upper",))
    assert np.allclose(plain.upper - plain.margin[:, 1], res.upper - res.margin[:, 1], atol=1e-6)


def test_different_widths_random_specs(rng):
    f = mlp([5, 10, 10, 2], rng, "f")
    g = mlp([5, 6, 2], rng, "g")
    lo, hi = rng.uniform(-1, 0, 5), rng.uniform(0, 1, 5)
    c1, c2 = rng.normal(size=(3, 2)), rng.normal(size=(3, 2))
    res = milp_bound_spec(f, g, lo, hi, c1, c2)
    check_against_sampling(f, g, lo, hi, c1, c2, res, rng, n=100_000)


def test_one_dimensional_twin_against_fine_grid(rng):
    f = mlp([1, 16, 16, 1], rng, "f")
    g = mlp([1, 12, 1], rng, "g")
    lo, hi = np.array([-2.0]), np.array([2.0])
    c1, c2 = np.array([[-1.0], [0.5]]), np.array([[1.0], [2.0]])
    res = milp_bound_spec(f, g, lo, hi, c1, c2)
    n = 1_000_001
    grid = np.linspace(lo[0], hi[0], n)[:, None]
    vals = np.concatenate([spec(f, g, grid[i : i + 250_000], c1, c2) for i in range(0, n, 250_000)])
    # Lipschitz constant of each spec row bounds the grid's miss: |max - grid max| <= L * h / 2
    lip = lambda net: np.prod([np.linalg.norm(l.weight, 2) for l in net.layers if isinstance(l, Dense)])  # noqa: E731
    h = (hi[0] - lo[0]) / (n - 1)
    for i in range(2):
        slack = (abs(c1[i, 0]) * lip(f) + abs(c2[i, 0]) * lip(g)) * h / 2
        assert vals[:, i].max() <= res.upper[i]
        assert vals[:, i].min() >= res.lower[i]
        assert res.upper[i] - vals[:, i].max() <= slack + res.margin[i, 1] + 1e-6
        assert vals[:, i].min() - res.lower[i] <= slack + res.margin[i, 0] + 1e-6
    assert res.optimal.all()


def test_conv_avgpool_twin(rng):
    conv_w, conv_b = rng.normal(size=(2, 1, 2, 2)), rng.normal(size=2) * 0.2
    f = Network(
        [ElementwiseAffine(rng.uniform(0.5, 2.0, (1, 4, 4)), rng.normal(size=(1, 4, 4)) * 0.1),
         Conv2d(conv_w, conv_b), ReLU(), Reshape((-1,)), Dense(rng.normal(size=(3, 18)) / 4, rng.normal(size=3))],
        (1, 4, 4), name="conv_f",
    )
    g = Network(
        [Conv2d(conv_w + 0.05 * rng.normal(size=conv_w.shape), conv_b), ReLU(), AvgPool2d((2, 2), (1, 1)),
         Reshape((-1,)), Dense(rng.normal(size=(3, 8)) / 3, rng.normal(size=3))],
        (1, 4, 4), name="conv_g",
    )
    x0 = rng.uniform(0, 1, 16)
    lo, hi = np.clip(x0 - 0.3, 0, 1), np.clip(x0 + 0.3, 0, 1)
    c1, c2 = -np.eye(3), np.eye(3)
    res = milp_bound_spec(f, g, lo, hi, c1, c2)
    check_against_sampling(f, g, lo, hi, c1, c2, res, rng, n=50_000)


# ----------------------------------------------------------------------------------------------- quantized


def test_conv_twin_with_per_channel_quantization(rng):
    conv = Conv2d(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3), stride=2, padding=1)
    head = Dense(rng.normal(size=(2, 12)), np.zeros(2))
    f = Network([conv, ReLU(), AvgPool2d(2, 1), Reshape((-1,)), head], (2, 5, 5), name="f")
    q = QuantizeActivation(np.array([0.1, 0.2, 0.3]).reshape(3, 1, 1), 0.0, bits=4, signed=False)
    g = Network([Conv2d(conv.weight + 0.01, conv.bias, stride=2, padding=1), ReLU(), q, AvgPool2d(2, 1),
                 Reshape((-1,)), head], (2, 5, 5), name="g")
    x0 = rng.uniform(0, 1, 50)
    lo, hi = x0 - 0.05, x0 + 0.05
    c1, c2 = -np.eye(2), np.eye(2)
    res = milp_bound_spec(f, g, lo, hi, c1, c2)
    vals = spec(f, g, samples(lo, hi, 20_000, rng), c1, c2)
    assert np.all(vals.max(0) <= res.upper) and np.all(vals.min(0) >= res.lower) and res.optimal.all()
    for i in range(2):
        v_max = spec(f, g, res.argmax[i][None], c1[i : i + 1], c2[i : i + 1])[0, 0]
        assert v_max <= res.upper[i] and res.upper[i] - res.margin[i, 1] - v_max <= 1e-5




@pytest.mark.parametrize("signed,zero_point,rounding,before_relu", [
    (False, 0.0, "half_even", False),
    (True, 1.0, "half_even", True),
    (True, 0.0, "half_up", True),
])
def test_quantized_activation_twin(rng, signed, zero_point, rounding, before_relu):
    f = mlp([3, 6, 6, 2], rng, "f")
    # activation quantization with a coarse 3-bit grid, so that both rounding and clamping matter
    scale = rng.uniform(0.15, 0.3, 6)  # per channel
    q = QuantizeActivation(scale, np.full(6, zero_point), bits=3, signed=signed, rounding=rounding)
    layers = list(perturbed(f, rng, 0.02).layers)
    layers.insert(1 if before_relu else 2, q)
    g = f.with_layers(layers, name="g_q")
    lo, hi = -np.ones(3), np.ones(3)
    c1, c2 = -np.eye(2), np.eye(2)
    res = milp_bound_spec(f, g, lo, hi, c1, c2)
    vals = spec(f, g, samples(lo, hi, 200_000, rng), c1, c2)
    assert np.all(vals.max(0) <= res.upper) and np.all(vals.min(0) >= res.lower)
    assert res.optimal.all()
    for i in range(2):
        # exact: the bound is the supremum, attained (to 1e-5) at the witness the engine polished off the
        # rounding tie where the solver leaves it
        v_max = spec(f, g, res.argmax[i][None], c1[i : i + 1], c2[i : i + 1])[0, 0]
        v_min = spec(f, g, res.argmin[i][None], c1[i : i + 1], c2[i : i + 1])[0, 0]
        assert v_max <= res.upper[i] and res.upper[i] - res.margin[i, 1] - v_max <= 1e-5
        assert v_min >= res.lower[i] and v_min - res.lower[i] - res.margin[i, 0] <= 1e-5


def test_quantizer_only_encoding_hand_computed():
    # f(x) = x, g(x) = quantize(x) with scale 0.5, 2-bit unsigned (values 0, .5, 1, 1.5) on x in [-1, 2.2]
    f = Network([Dense([[1.0]], [0.0])], (1,))
    g = Network([Dense([[1.0]], [0.0]), QuantizeActivation(0.5, 0.0, bits=2, signed=False)], (1,))
    res = milp_bound_spec(f, g, np.array([-1.0]), np.array([2.2]), np.array([[-1.0]]), np.array([[1.0]]))
    # g - f: at x=-1: 0 - (-1) = 1 (clamp at 0); at x=2.2: 1.5 - 2.2 = -0.7 (clamp at 1.5)
    assert res.upper[0] == pytest.approx(1.0, abs=1e-5) and res.lower[0] == pytest.approx(-0.7, abs=1e-5)
    assert res.upper[0] >= 1.0 and res.lower[0] <= -0.7


# ----------------------------------------------------------------------------------------------- limits


def test_time_limit_gives_sound_non_optimal_bounds(rng):
    f = mlp([6, 30, 30, 2], rng, "big_f")
    g = perturbed(f, rng, 0.05)
    lo, hi = -np.ones(6), np.ones(6)
    c1, c2 = -np.eye(2), np.eye(2)
    res = milp_bound_spec(f, g, lo, hi, c1, c2, time_limit=0.6)
    assert not res.optimal.all()
    assert np.any(res.margin > 0)  # some side is the solver's proved bound, not only the interval fallback
    assert res.time_s < 5.0
    assert np.all(np.isfinite(res.lower)) and np.all(np.isfinite(res.upper))
    vals = spec(f, g, samples(lo, hi, 100_000, rng), c1, c2)
    assert np.all(vals.max(0) <= res.upper) and np.all(vals.min(0) >= res.lower)
    # the certified sides are the solver's proved (dual) bounds, not its incumbents: on an unfinished row the
    # witnesses' values stay strictly inside the bounds
    assert res.argmax is not None and res.argmin is not None
    for i in np.flatnonzero(~res.optimal):
        v_max = spec(f, g, res.argmax[i][None], c1[i : i + 1], c2[i : i + 1])[0, 0]
        v_min = spec(f, g, res.argmin[i][None], c1[i : i + 1], c2[i : i + 1])[0, 0]
        assert v_max <= res.upper[i] and v_min >= res.lower[i]
        assert (res.upper[i] - res.margin[i, 1] - v_max) + (v_min - res.lower[i] - res.margin[i, 0]) > 1e-6


def test_too_many_binaries_is_refused(rng):
    f = mlp([3, 8, 8, 2], rng)
    g = perturbed(f, rng, 0.05)
    with pytest.raises(InputError, match="MILP too large: [0-9]+ binary variables > max_binaries"):
        milp_bound_spec(f, g, -np.ones(3), np.ones(3), -np.eye(2), np.eye(2), max_binaries=3)


# ----------------------------------------------------------------------------------------------- options


def test_pre_bounds_both_forms_give_the_same_optimum(rng):
    f = mlp([3, 8, 8, 2], rng, "f")
    g = mlp([3, 6, 5, 2], rng, "g")
    lo, hi = -np.ones(3), np.ones(3)
    c1, c2 = -np.eye(2), np.eye(2)
    base = milp_bound_spec(f, g, lo, hi, c1, c2)
    pf = [(l - 0.5, u + 0.5) for l, u in ibp_relu_bounds(f, lo, hi)]
    pg = [(l - 0.5, u + 0.5) for l, u in ibp_relu_bounds(g, lo, hi)]
    nested = milp_bound_spec(f, g, lo, hi, c1, c2, pre_bounds=[pf, pg])
    flat = milp_bound_spec(f, g, lo, hi, c1, c2, pre_bounds=pf + pg)
    for r in (nested, flat):
        assert np.allclose(r.upper, base.upper, atol=1e-5) and np.allclose(r.lower, base.lower, atol=1e-5)
    with pytest.raises(InputError, match="pre_bounds"):
        milp_bound_spec(f, g, lo, hi, c1, c2, pre_bounds=pf)
    with pytest.raises(InputError, match="pre_bounds"):
        milp_bound_spec(f, g, lo, hi, c1, c2, pre_bounds=[[(l[:3], u[:3]) for l, u in pf], pg])


def test_pre_bounds_are_used_and_checked(rng):
    f = mlp([3, 8, 8, 2], rng)
    g = perturbed(f, rng, 0.05)
    lo, hi = -np.ones(3), np.ones(3)
    ibp_f, ibp_g = ibp_relu_bounds(f, lo, hi), ibp_relu_bounds(g, lo, hi)
    with pytest.raises(InputError, match="MILP too large"):
        milp_bound_spec(f, g, lo, hi, -np.eye(2), np.eye(2), max_binaries=0)
    # bounds that decide every neuron (NOT sound here: only to see that they reach the encoding) need no binary
    decided_f = [(np.zeros_like(l), u + 1.0) for l, u in ibp_f]
    decided_g = [(np.zeros_like(l), u + 1.0) for l, u in ibp_g]
    res = milp_bound_spec(f, g, lo, hi, -np.eye(2), np.eye(2), pre_bounds=[decided_f, decided_g], max_binaries=0)
    assert res.upper.shape == (2,)
    # bounds that contradict the (sound) interval bounds are refused
    wrong = [(u + 1.0, u + 2.0) for l, u in ibp_f]
    with pytest.raises(InputError, match="not sound"):
        milp_bound_spec(f, g, lo, hi, -np.eye(2), np.eye(2), pre_bounds=[wrong, ibp_g])


def test_degenerate_box_and_sides(rng):
    f = mlp([3, 6, 6, 2], rng, "f")
    g = perturbed(f, rng, 0.1)
    x = rng.uniform(-1, 1, 3)
    c1, c2 = -np.eye(2), np.eye(2)
    point = milp_bound_spec(f, g, x, x, c1, c2)
    exact = spec(f, g, x[None], c1, c2)[0]
    assert np.all(point.lower <= exact) and np.all(exact <= point.upper)
    assert np.allclose(point.upper, exact, atol=1e-5) and np.allclose(point.lower, exact, atol=1e-5)

    lo, hi = -np.ones(3), np.ones(3)
    full = milp_bound_spec(f, g, lo, hi, c1, c2)
    up = milp_bound_spec(f, g, lo, hi, c1, c2, sides=("upper",))
    assert up.argmin is None and up.argmax is not None
    assert np.allclose(up.upper, full.upper, atol=1e-9)
    assert np.all(up.lower <= full.lower)  # the interval fallback on the unrequested side is sound but looser
    vals = spec(f, g, samples(lo, hi, 50_000, rng), c1, c2)
    assert np.all(vals.min(0) >= up.lower)


def test_identical_twin_gives_zero_difference(rng):
    f = mlp([4, 10, 10, 3], rng)
    res = milp_bound_spec(f, f, -np.ones(4), np.ones(4), -np.eye(3), np.eye(3))
    assert np.all(np.abs(res.upper) < 1e-5) and np.all(np.abs(res.lower) < 1e-5)
    assert np.all(res.lower <= 0) and np.all(res.upper >= 0)


# ----------------------------------------------------------------------------------------------- errors


@dataclass(eq=False)
class _Tanh(Layer):
    kind: ClassVar[str] = "tanh"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x)


def test_unsupported_layer_and_bad_inputs(rng):
    f = mlp([3, 4, 2], rng)
    g = Network([Dense(np.ones((4, 3)), np.zeros(4)), _Tanh(), Dense(np.ones((2, 4)), np.zeros(2))], (3,), name="t")
    lo, hi = -np.ones(3), np.ones(3)
    with pytest.raises(UnsupportedOpError, match="tanh"):
        milp_bound_spec(f, g, lo, hi, -np.eye(2), np.eye(2))
    with pytest.raises(InputError, match="output sizes"):
        milp_bound_spec(f, f, lo, hi, -np.eye(3), np.eye(3))
    with pytest.raises(InputError, match="lower bound above"):
        milp_bound_spec(f, f, hi, lo, -np.eye(2), np.eye(2))
    with pytest.raises(InputError, match="inputs"):
        milp_bound_spec(f, f, lo[:2], hi[:2], -np.eye(2), np.eye(2))
    with pytest.raises(InputError, match="sides"):
        milp_bound_spec(f, f, lo, hi, -np.eye(2), np.eye(2), sides=("max",))
    with pytest.raises(InputError, match="input sizes"):
        milp_bound_spec(f, mlp([4, 2], rng), lo, hi, -np.eye(2), np.eye(2))
