"""Each ReLU rule: hand-computed values, one check per regime, and a sampled soundness check."""

import numpy as np
import pytest
import torch

from simcert.bounds.relaxations import diff_relu_eqs, diff_relu_lines, relu_eq_lower, relu_eq_upper, relu_lines

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731


def test_relu_lines_hand_values():
    r = relu_lines(T(-1.0, 1.0, -3.0), T(3.0, 2.0, -1.0))
    assert r.upper_slope.tolist() == [0.75, 1.0, 0.0]
    assert r.upper_bias.tolist() == [0.75, 0.0, 0.0]
    assert r.lower_slope.tolist() == [1.0, 1.0, 0.0]  # unstable with u > -l -> slope 1; stable exact


def _sample_box(rng, n, lo, hi):
    return lo + (hi - lo) * rng.random((n, *lo.shape))


@pytest.mark.parametrize("seed", range(5))
def test_diff_lines_contain_the_difference_in_every_regime(seed):
    rng = np.random.default_rng(seed)
    # neurons covering all nine (f, g) regimes
    zl = np.array([1, 1, 1, -3, -3, -3, -2, -2, -2.0])
    zu = np.array([2, 2, 2, -1, -1, -1, 2, 2, 2.0])
    dl = np.array([-0.5, -4, -2.5, 0.5, -0.5, -0.5, -0.5, -4, -0.3])
    du = np.array([0.5, -3.5, 0.2, 5, 0.5, 2.5, 3, -3, 0.3])
    pts_z = _sample_box(rng, 20000, zl, zu)
    pts_d = _sample_box(rng, 20000, dl, du)
    zp = pts_z + pts_d
    gl, gu = zp.min(0) - 1e-9, zp.max(0) + 1e-9
    lines = diff_relu_lines(*(torch.tensor(a)[None] for a in (zl, zu, gl, gu, dl, du)))
    delta = np.maximum(zp, 0) - np.maximum(pts_z, 0)
    up = lines.uz.numpy() * pts_z + lines.ud.numpy() * pts_d + lines.ub.numpy()
    lo = lines.lz.numpy() * pts_z + lines.ld.numpy() * pts_d + lines.lb.numpy()
    assert (up - delta).min() >= -1e-9, f"upper line excess {(delta - up).max()}"
    assert (delta - lo).min() >= -1e-9, f"lower line excess {(lo - delta).max()}"


def test_diff_lines_exact_when_both_active():
    # f and g active: Delta = delta exactly
    r = diff_relu_lines(T(1.0)[None], T(2.0)[None], T(0.5)[None], T(2.5)[None], T(-0.5)[None], T(0.5)[None])
    assert float(r.ud) == 1.0 and float(r.uz) == 0.0 and float(r.ub) == 0.0
    assert float(r.ld) == 1.0 and float(r.lz) == 0.0 and float(r.lb) == 0.0


def test_both_unstable_uses_difference_chord():
    # z in [-1, 1], delta in [-0.1, 0.1]: the chord of max(0, delta) is far tighter than the twin lines
    r = diff_relu_lines(T(-1.0)[None], T(1.0)[None], T(-1.1)[None], T(1.1)[None], T(-0.1)[None], T(0.1)[None])
    assert float(r.uz) == 0.0
    assert float(r.ud) == pytest.approx(0.5) and float(r.ub) == pytest.approx(0.05)


def _eq(coef, const):
    """Equation tensors (B=1, n+1, w) from coefficients (n, w) and constants (w,)."""
    return torch.cat([torch.tensor(coef), torch.tensor(const)[None]], 0)[None]


def test_forward_equation_rules_are_sound_on_samples():
    rng = np.random.default_rng(3)
    n, w = 2, 40
    x = rng.uniform(-1, 1, (5000, n))
    A = rng.normal(size=(n, w))
    a0 = rng.normal(size=w) * 0.5
    dA = rng.normal(size=(n, w)) * rng.choice([0.02, 1.0], size=w)
    d0 = rng.normal(size=w) * 0.1
    z = x @ A + a0
    d = x @ dA + d0
    zp = z + d
    eq = lambda c, k: _eq(c, k)  # noqa: E731
    z_eq, d_eq, g_eq = eq(A, a0), eq(dA, d0), eq(A + dA, a0 + d0)
    box_c, box_r = torch.zeros(1, n, dtype=torch.float64), torch.ones(1, n, dtype=torch.float64)

    def rng_of(e):
        c = e[:, -1]
        lin = e[:, :-1]
        lo = c + torch.einsum("bnw,bn->bw", lin, box_c) - torch.einsum("bnw,bn->bw", lin.abs(), box_r)
        hi = c + torch.einsum("bnw,bn->bw", lin, box_c) + torch.einsum("bnw,bn->bw", lin.abs(), box_r)
        return lo, hi

    (zl, zu), (gl, gu), (dl, du) = rng_of(z_eq), rng_of(g_eq), rng_of(d_eq)
    up, lo = diff_relu_eqs((z_eq, z_eq, (zl, zu, zl, zu)), (g_eq, g_eq, (gl, gu, gl, gu)), (d_eq, d_eq, (dl, du, dl, du)))
    xt = torch.tensor(x)
    val = lambda e: (xt @ e[0, :-1] + e[0, -1]).numpy()  # noqa: E731
    delta = np.maximum(zp, 0) - np.maximum(z, 0)
    assert (val(up) - delta).min() >= -1e-9
    assert (delta - val(lo)).min() >= -1e-9
    hu = relu_eq_upper(z_eq, zl, zu)
    hl = relu_eq_lower(z_eq, zl, zu)
    assert (val(hu) - np.maximum(z, 0)).min() >= -1e-9
    assert (np.maximum(z, 0) - val(hl)).min() >= -1e-9
