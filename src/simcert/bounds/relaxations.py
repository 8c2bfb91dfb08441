"""Linear relaxations of ReLU, of activation quantization and of the *difference* neuron, as frozen records.

Every rule here is a pure function of concrete pre-activation bounds (batched tensors) returning linear
lower/upper lines. Both the forward symbolic engine and the backward (CROWN-style) engine consume the same
records, so each rule lives in exactly one place.

Notation (per neuron): z is f's pre-activation, z' = z + delta is g's, delta the difference.
Concrete bounds: z in [zl, zu], z' in [gl, gu], delta in [dl, du].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .common import quantizer_interval

__all__ = [
    "ActivationLines",
    "ReluLines",
    "quantize_lines",
    "identity_lines",
    "twin_lines_difference",
    "DiffLines",
    "relu_lines",
    "relu_upper_line",
    "diff_relu_lines",
    "default_lower_slope",
    "relu_eq_upper",
    "relu_eq_lower",
    "diff_relu_eqs",
]


@dataclass(frozen=True)
class ActivationLines:
    """lower_slope * z + lower_bias  <=  act(z)  <=  upper_slope * z + upper_bias   (for z in [l, u]).

    `lower_bias` None means 0 (every ReLU lower line passes through the origin).
    """

    lower_slope: torch.Tensor
    upper_slope: torch.Tensor
    upper_bias: torch.Tensor
    lower_bias: torch.Tensor | None = None

    def lower_bias_or_zero(self) -> torch.Tensor:
        return torch.zeros_like(self.upper_bias) if self.lower_bias is None else self.lower_bias


ReluLines = ActivationLines  # the ReLU rules return the special case lower_bias = 0


def default_lower_slope(l: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """CROWN's adaptive lower slope: 1 where u >= -l (the line y = z loses less area), else 0."""
    return (u >= -l).to(l.dtype)


def relu_upper_line(l: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper line (slope s, bias b) of y = relu(z) on [l, u]: the chord s = u / (u - l), b = -s l where unstable,
    y = z where active (l >= 0), y = 0 where inactive (u <= 0). The slope is also the parallel-chord lower
    slope of Neurify (relu(z) >= s z)."""
    active = l >= 0
    unstable = active.logical_not() & (u > 0)
    denom = torch.where(unstable, u - l, torch.ones_like(u))
    s = torch.where(unstable, u / denom, active.to(u.dtype))
    b = torch.where(unstable, -s * l, torch.zeros_like(u))
    return s, b


def relu_lines(l: torch.Tensor, u: torch.Tensor, lower_slope: torch.Tensor | None = None) -> ReluLines:
    """DeepPoly/CROWN relaxation of y = relu(z), z in [l, u] (Singh et al. 2019; Zhang et al. 2018).

    active (l >= 0): y = z.  inactive (u <= 0): y = 0.
    unstable: upper chord y <= u (z - l) / (u - l) (`relu_upper_line`); lower y >= a z with a in [0, 1]
    (`lower_slope`, CROWN default `default_lower_slope`). The lower slope of stable neurons is forced to the
    exact value.

    >>> r = relu_lines(torch.tensor([-1.0]), torch.tensor([3.0]))
    >>> float(r.upper_slope), float(r.upper_bias), float(r.lower_slope)
    (0.75, 0.75, 1.0)
    """
    s, b = relu_upper_line(l, u)
    stable = (l >= 0) | (u <= 0)
    a = default_lower_slope(l, u) if lower_slope is None else lower_slope
    a = torch.where(stable, (l >= 0).to(u.dtype), a)
    return ReluLines(a, s, b)


@dataclass(frozen=True)
class DiffLines:
    """Lines bounding the difference neuron Delta = relu(z + delta) - relu(z):

    lz * z + ld * delta + lb  <=  Delta  <=  uz * z + ud * delta + ub.
    """

    lz: torch.Tensor
    ld: torch.Tensor
    lb: torch.Tensor
    uz: torch.Tensor
    ud: torch.Tensor
    ub: torch.Tensor


def _chord_of_max0(dl: torch.Tensor, du: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Upper line t * delta + c of max(0, delta) on [dl, du]: delta if dl >= 0, 0 if du <= 0, else the chord."""
    pos, neg = dl >= 0, du <= 0
    mixed = ~(pos | neg)
    denom = torch.where(mixed, du - dl, torch.ones_like(du))
    t = torch.where(mixed, du / denom, pos.to(du.dtype))
    c = torch.where(mixed, -t * dl, torch.zeros_like(du))
    return t, c


def diff_relu_lines(
    zl: torch.Tensor,
    zu: torch.Tensor,
    gl: torch.Tensor,
    gu: torch.Tensor,
    dl: torch.Tensor,
    du: torch.Tensor,
    *,
    f_lower_slope: torch.Tensor | None = None,
    g_lower_slope: torch.Tensor | None = None,
    theta_upper: torch.Tensor | None = None,
    theta_lower: torch.Tensor | None = None,
    twin_lines: tuple[ActivationLines, ActivationLines] | None = None,
) -> DiffLines:
    """Relaxation of the difference neuron Delta = relu(z') - relu(z), z' = z + delta (ReluDiff/NeuroDiff).

    Two valid families, mixed convexly with weights theta in [0, 1] (any convex combination of upper lines is
    an upper line):

    (A) *twin lines*: Delta <= upper(relu(z')) - lower(relu(z)), Delta >= lower(relu(z')) - upper(relu(z)),
        with the DeepPoly lines of each ReLU, written in (z, delta) via z' = z + delta. This is exact in the
        four stable cases of the nine-case table (ReluDiff ICSE'20, Table 1):

            f \\ g     | active       | inactive | unstable
            active    | Delta = d    | -z       | max(d, -z) = relu(z') - z
            inactive  | Delta = z'   | 0        | relu(z') in [0, chord(z')]
            unstable  | min(d, z')   | -relu(z) | both unstable: see (B)

    (B) *difference chords*: relu is monotone and 1-Lipschitz, so min(0, d) <= Delta <= max(0, d); the upper
        side is relaxed by the chord of max(0, d) on [dl, du] and the lower side by the chord of min(0, d)
        (NeuroDiff ASE'20, "convex approximations"). It follows the difference, not f and g separately, which
        is what keeps bounds tight when the twins are close.

    Default theta: per neuron, the family whose bound is smaller when evaluated on the concrete intervals
    (ties go to (A), exact in stable cases). theta, like the lower slopes, may be any value in [0, 1]; no engine
    optimizes them (on ACAS Xu frontiers that gained 0.1%, docs/bench-data/acas_eps0.05.notes.md).
    """
    f = relu_lines(zl, zu, f_lower_slope)
    g = relu_lines(gl, gu, g_lower_slope)
    a = twin_lines_difference(f, g)
    a_uz, a_ud, a_ub, a_lz, a_ld, a_lb = a.uz, a.ud, a.ub, a.lz, a.ld, a.lb
    # (B) upper: chord of max(0, d);  lower: chord of min(0, d) = -max(0, -d)
    t_u, c_u = _chord_of_max0(dl, du)
    t_l, c_l = _chord_of_max0(-du, -dl)
    b_ud, b_ub = t_u, c_u
    b_ld, b_lb = t_l, -c_l
    if theta_upper is None:
        a_max = a_ub + torch.maximum(a_uz * zl, a_uz * zu) + torch.maximum(a_ud * dl, a_ud * du)
        b_max = torch.clamp(du, min=0.0)
        theta_upper = (a_max <= b_max).to(zl.dtype)
    if theta_lower is None:
        a_min = a_lb + torch.minimum(a_lz * zl, a_lz * zu) + torch.minimum(a_ld * dl, a_ld * du)
        b_min = torch.clamp(dl, max=0.0)
        theta_lower = (a_min >= b_min).to(zl.dtype)
    tu, tl = theta_upper, theta_lower
    return DiffLines(
        lz=tl * a_lz,
        ld=tl * a_ld + (1 - tl) * b_ld,
        lb=tl * a_lb + (1 - tl) * b_lb,
        uz=tu * a_uz,
        ud=tu * a_ud + (1 - tu) * b_ud,
        ub=tu * a_ub + (1 - tu) * b_ub,
    )


def twin_lines_difference(f: ActivationLines, g: ActivationLines) -> DiffLines:
    """Difference of two activations from each one's own lines (family (A) of `diff_relu_lines`):

        act_g(z + d) - act_f(z) <= su' (z + d) + bu' - (sl z + bl) = (su' - sl) z + su' d + (bu' - bl),
        act_g(z + d) - act_f(z) >= sl' (z + d) + bl' - (su z + bu) = (sl' - su) z + sl' d + (bl' - bu).

    When both sides have slope 1 (identity, or quantization where nothing clamps) z cancels and only the
    difference d and the two error bands remain.
    """
    return DiffLines(
        lz=g.lower_slope - f.upper_slope,
        ld=g.lower_slope,
        lb=g.lower_bias_or_zero() - f.upper_bias,
        uz=g.upper_slope - f.lower_slope,
        ud=g.upper_slope,
        ub=g.upper_bias - f.lower_bias_or_zero(),
    )


def identity_lines(like: torch.Tensor) -> ActivationLines:
    """y = z, as lines (the side of a twin pair that has no quantizer where the other has one)."""
    one, zero = torch.ones_like(like), torch.zeros_like(like)
    return ActivationLines(one, one, zero, zero)


def quantize_lines(layer, l: torch.Tensor, u: torch.Tensor) -> ActivationLines:
    """Relaxation of y = Q(z) = s (clamp(round(z / s) + zp, qmin, qmax) - zp) for z in [l, u] (METHODS.md 4).

    Q = C + e with C(z) = clamp(z, rmin, rmax), rmin = s (qmin - zp), rmax = s (qmax - zp), and
    |e| <= s / 2 + slack_steps * s (the slack covers runtimes whose integer requantization rounds
    differently; 0 for an exact fake-quantizer). Three sound candidates, the same slope for both lines:

      unit   slope 1:                        keeps a twin difference exact wherever nothing clamps;
      chord  slope (C(u) - C(l)) / (u - l):  for ranges crossing a clamp bound;
      flat   slope 0, y in `quantizer_interval` (Q(l), Q(u) without slack; exact inside one step).

    For a slope a the offsets are the extremes of C(z) - a z on [l, u] (piecewise linear: attained at l, u
    or a clamp bound inside) widened by the error bound. Per neuron the narrowest band wins; ties go to
    the unit slope, then the chord.
    """
    dt, dev = l.dtype, l.device
    t = lambda v: torch.as_tensor(v, dtype=dt, device=dev)  # noqa: E731
    s, rmin, rmax = t(layer.scale), t(layer.real_min), t(layer.real_max)
    slack = float(getattr(layer, "slack_steps", 0.0))
    err = s * (0.5 + slack) * (1 + 1e-9)

    def clamp(v: torch.Tensor) -> torch.Tensor:
        return torch.minimum(torch.maximum(v, rmin), rmax)

    pts = [l, u, torch.minimum(torch.maximum(rmin, l), u), torch.minimum(torch.maximum(rmax, l), u)]
    width = u - l
    chord = torch.where(width > 0, (clamp(u) - clamp(l)) / torch.where(width > 0, width, torch.ones_like(width)),
                        torch.zeros_like(width))

    def offsets(a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vals = torch.stack(torch.broadcast_tensors(*[clamp(p) - a * p for p in pts]))
        return vals.amax(0) + err, vals.amin(0) - err

    one = torch.ones_like(width)
    unit_hi, unit_lo = offsets(one)
    chord_hi, chord_lo = offsets(chord)
    flat_lo, flat_hi = quantizer_interval(layer, l, u)
    bands = torch.stack(torch.broadcast_tensors(unit_hi - unit_lo, chord_hi - chord_lo, flat_hi - flat_lo))
    pick = bands.argmin(0)
    slope = torch.where(pick == 0, one, torch.where(pick == 1, chord, torch.zeros_like(width)))
    hi = torch.where(pick == 0, unit_hi, torch.where(pick == 1, chord_hi, flat_hi))
    lo = torch.where(pick == 0, unit_lo, torch.where(pick == 1, chord_lo, flat_lo))
    return ActivationLines(slope, slope, hi, lo)


# ------------------------------------------------------------------------ forward (equation) rules
# The forward symbolic pass bounds each quantity by two input-space equations, U (upper) and L (lower).
# A ReLU is relaxed on each equation separately, using that equation's own concrete range (Neurify/ReluVal):
# relu(z) <= relu(U(x)) <= chord of relu over [min U, max U] applied to U(x), which is tighter than the chord
# over the quantity's overall range [min L, max U].


def relu_eq_upper(up: torch.Tensor, u_min: torch.Tensor, u_max: torch.Tensor) -> torch.Tensor:
    """Upper equation of relu(z) from z <= U: U where min U >= 0, 0 where max U <= 0, else the chord
    max U (U - min U) / (max U - min U).   up: (B, n+1, *shape), ranges (B, *shape)."""
    slope, bias = relu_upper_line(u_min, u_max)
    out = slope.unsqueeze(1) * up
    out[:, -1] += bias
    return out


def relu_eq_lower(lo: torch.Tensor, l_min: torch.Tensor, l_max: torch.Tensor) -> torch.Tensor:
    """Lower equation of relu(z) from z >= L: L where min L >= 0, 0 where max L <= 0, else lambda L with the
    parallel-chord slope lambda = max L / (max L - min L) (Neurify; relu(t) >= lambda t for lambda in [0, 1])."""
    return relu_upper_line(l_min, l_max)[0].unsqueeze(1) * lo


def diff_relu_eqs(
    z: tuple[torch.Tensor, torch.Tensor, tuple],
    g: tuple[torch.Tensor, torch.Tensor, tuple],
    d: tuple[torch.Tensor, torch.Tensor, tuple],
    relu_up: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Equations (U, L) of the difference neuron Delta = relu(z') - relu(z) (NeuroDiff's forward rules).

    Each argument is (U, L, (minU, maxU, minL, maxL)) for z, z' and delta. With zl = min L_z, zu = max U_z (same
    for z', delta) the case table is (ReluDiff ICSE'20 Table 1, NeuroDiff ASE'20 section 4):

        f \\ g     | active           | inactive           | unstable
        active    | delta            | -z                 | [L_delta, max(-zl, du)]
        inactive  | z'               | 0                  | [0, chord(U_z')]
        unstable  | [min(gl, dl), U_delta] | [-chord(U_z), 0] | [lower chord of min(0, L_delta), chord of max(0, U_delta)]

    Both-unstable: max(0, delta) <= chord of relu on the range of U_delta applied to U_delta, and
    min(0, delta) >= -(chord of relu(-t) on the range of -L_delta) applied to L_delta.
    `relu_up`: (relu_eq_upper of U_z, of U_z') when the caller has them already.
    """
    z_up, z_lo, (_, zu, zl, _) = z
    g_up, g_lo, (_, gu, gl, _) = g
    d_up, d_lo, (du_min, du, dl, dl_max) = d
    fa, fi = zl >= 0, zu <= 0
    ga, gi = gl >= 0, gu <= 0
    fu, gun = ~(fa | fi), ~(ga | gi)
    zero = torch.zeros_like(d_up)

    def const(v: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(d_up)
        out[:, -1] = v
        return out

    def m(mask: torch.Tensor) -> torch.Tensor:
        return mask.unsqueeze(1)

    # both unstable (and the default): difference chords
    up = relu_eq_upper(d_up, du_min, du)
    lo = -relu_eq_upper(-d_lo, -dl_max, -dl)
    # one side unstable
    up = torch.where(m(fa & gun), const(torch.maximum(-zl, du)), up)
    lo = torch.where(m(fa & gun), d_lo, lo)
    z_relu_up, g_relu_up = relu_up or (relu_eq_upper(z_up, z[2][0], zu), relu_eq_upper(g_up, g[2][0], gu))
    up = torch.where(m(fi & gun), g_relu_up, up)
    lo = torch.where(m(fi & gun), zero, lo)
    up = torch.where(m(fu & ga), d_up, up)
    lo = torch.where(m(fu & ga), const(torch.minimum(gl, dl)), lo)
    up = torch.where(m(fu & gi), zero, up)
    lo = torch.where(m(fu & gi), -z_relu_up, lo)
    # both stable: exact
    up = torch.where(m(fa & ga), d_up, up)
    lo = torch.where(m(fa & ga), d_lo, lo)
    up = torch.where(m(fa & gi), -z_lo, up)
    lo = torch.where(m(fa & gi), -z_up, lo)
    up = torch.where(m(fi & ga), g_up, up)
    lo = torch.where(m(fi & ga), g_lo, lo)
    up = torch.where(m(fi & gi), zero, up)
    lo = torch.where(m(fi & gi), zero, lo)
    return up, lo
