"""Input distributions on a region, as seeded batched samplers (METHODS.md section 1, "input distribution").

Each sampler draws i.i.d. inputs of a fixed shape S: `sample(n, generator)` returns a float64 array of shape
`(n, *S)` that depends only on the generator's state (same seed, same samples), and every sample lies in the
sampler's box. `describe()` gives a one-line summary and `to_json()` a JSON-ready dict for certificates.

- `UniformBox(lower, upper)`: uniform on the box (coordinates with lower == upper are constant);
  `weights_of(boxes)` gives the probability mass of sub-boxes (for stratified sampling).
- `TruncatedGaussian(center, sigma, lower, upper)`: independent coordinates, N(center, sigma^2) conditioned
  on the box, drawn exactly by the inverse CDF in log space (stable far in the tails).
- `EmpiricalDataset(points, radius, lower, upper)`: a data row chosen uniformly with replacement, plus uniform
  noise in the L-inf ball of the given radius, then clipped to [lower, upper] (or, with
  `boundary="restrict"`, uniform on the ball intersected with the box).

`parse_distribution("uniform" | "gauss:SIGMA", box)` maps the CLI's `--distribution` option to a sampler.
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import log_ndtr, ndtri_exp

from ..errors import InputError

__all__ = [
    "Sampler",
    "UniformBox",
    "TruncatedGaussian",
    "EmpiricalDataset",
    "parse_distribution",
    "truncated_standard_normal_ppf",
]

GeneratorLike = np.random.Generator | int


def _generator(generator: GeneratorLike) -> np.random.Generator:
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, (int, np.integer)) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise InputError(f"generator must be a numpy Generator or an integer seed, got {type(generator).__name__}")


def _count(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise InputError(f"the number of samples must be a non-negative integer, got {n!r}")
    return int(n)


def _array(name: str, a: ArrayLike) -> np.ndarray:
    try:
        arr = np.array(a, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} is not numeric: {exc}") from None
    if not np.all(np.isfinite(arr)):
        raise InputError(f"{name} contains NaN or infinite values")
    arr.setflags(write=False)
    return arr


def _bounds(lower: ArrayLike, upper: ArrayLike, what: str = "box") -> tuple[np.ndarray, np.ndarray]:
    lo, hi = _array(f"{what} lower bound", lower), _array(f"{what} upper bound", upper)
    try:
        lo, hi = np.broadcast_arrays(lo, hi)
    except ValueError:
        raise InputError(f"{what} lower/upper shapes differ: {lo.shape} vs {hi.shape}") from None
    if np.any(lo > hi):
        i = int(np.flatnonzero((lo > hi).ravel())[0])
        raise InputError(f"{what} has lower > upper at coordinate {i} ({lo.ravel()[i]} > {hi.ravel()[i]})")
    lo, hi = np.array(lo), np.array(hi)
    lo.setflags(write=False)
    hi.setflags(write=False)
    return lo, hi


def _box_of(box: Any) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) of an object with `.lower`/`.upper` or of a (lower, upper) pair."""
    if hasattr(box, "lower") and hasattr(box, "upper"):
        return _bounds(box.lower, box.upper)
    if isinstance(box, (tuple, list)) and len(box) == 2:
        return _bounds(box[0], box[1])
    raise InputError(f"expected a box (an object with lower/upper, or a (lower, upper) pair), got {type(box).__name__}")


def _span(lo: np.ndarray, hi: np.ndarray) -> str:
    w = hi - lo
    return f"{lo.size}-dim box, widths {w.min():.3g}..{w.max():.3g}" if lo.size else "0-dim box"


def truncated_standard_normal_ppf(u: ArrayLike, alpha: ArrayLike, beta: ArrayLike) -> np.ndarray:
    """Inverse CDF of the standard normal truncated to [alpha, beta], at u in [0, 1].

    Formula: `x = Phi^-1(Phi(alpha) + u (Phi(beta) - Phi(alpha)))`, evaluated as
    `ndtri_exp(logaddexp(ln u + ln Phi(beta), ln(1-u) + ln Phi(alpha)))` so that far lower tails keep full
    precision; an interval in the upper tail (alpha >= 0) is mirrored to the lower one (with u -> 1 - u, so x
    stays increasing in u). The result is clipped into [alpha, beta] against rounding.

    >>> float(truncated_standard_normal_ppf(0.5, -1.0, 1.0))
    0.0
    >>> 30.0 <= float(truncated_standard_normal_ppf(0.5, 30.0, 40.0)) < 30.1
    True
    """
    u_a, a, b = np.broadcast_arrays(
        np.asarray(u, np.float64), np.asarray(alpha, np.float64), np.asarray(beta, np.float64)
    )
    flip = a >= 0
    lo = np.where(flip, -b, a)
    hi = np.where(flip, -a, b)
    log_lo, log_hi = log_ndtr(lo), log_ndtr(hi)
    with np.errstate(divide="ignore"):
        log_u, log_v = np.log(u_a), np.log1p(-u_a)
    log_p = np.where(flip, np.logaddexp(log_v + log_hi, log_u + log_lo), np.logaddexp(log_u + log_hi, log_v + log_lo))
    x = ndtri_exp(log_p)
    return np.clip(np.where(flip, -x, x), a, b)


class Sampler(ABC):
    """An input distribution: i.i.d. draws of shape `self.shape` inside `[self.lower, self.upper]`."""

    lower: np.ndarray
    upper: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape S of one input."""
        return tuple(self.lower.shape)

    @abstractmethod
    def sample(self, n: int, generator: GeneratorLike) -> np.ndarray:
        """n i.i.d. draws, float64 of shape (n, *S), reproducible from the generator's state."""

    def sample_torch(
        self, n: int, generator: GeneratorLike, dtype: torch.dtype = torch.float64, device: Any = None
    ) -> torch.Tensor:
        """`sample` as a torch tensor of the given dtype/device."""
        return torch.from_numpy(self.sample(n, generator)).to(dtype=dtype, device=device)

    @abstractmethod
    def describe(self) -> str:
        """One-line human summary."""

    @abstractmethod
    def to_json(self) -> dict[str, Any]:
        """JSON-ready description (for certificates)."""


class UniformBox(Sampler):
    """Uniform distribution on the box [lower, upper] (coordinates with zero width are constant).

    >>> s = UniformBox([0.0, 1.0], [1.0, 1.0])
    >>> x = s.sample(4, np.random.default_rng(0))
    >>> x.shape, bool(np.all(x[:, 1] == 1.0))
    ((4, 2), True)
    >>> s.weights_of([([0.0, 1.0], [0.25, 1.0]), ([0.25, 1.0], [1.0, 1.0])]).tolist()
    [0.25, 0.75]
    """

    def __init__(self, lower: ArrayLike, upper: ArrayLike) -> None:
        self.lower, self.upper = _bounds(lower, upper)

    def sample(self, n: int, generator: GeneratorLike) -> np.ndarray:
        u = _generator(generator).random((_count(n), *self.shape))
        return np.clip(self.lower + (self.upper - self.lower) * u, self.lower, self.upper)

    def restrict(self, lower: ArrayLike, upper: ArrayLike) -> UniformBox:
        """The uniform distribution on the intersection with the sub-box [lower, upper] (must be non-empty)."""
        lo, hi = _bounds(lower, upper, "sub-box")
        lo, hi = np.maximum(lo, self.lower), np.minimum(hi, self.upper)
        if np.any(lo > hi):
            raise InputError("the sub-box does not intersect the sampler's box")
        return UniformBox(lo, hi)

    def weights_of(
        self, boxes: Iterable[Any] | None = None, *, lower: ArrayLike | None = None, upper: ArrayLike | None = None
    ) -> np.ndarray:
        """Probability mass of each sub-box under this distribution (its volume fraction), shape (K,).

        Formula: `w_k = prod_i |[lo_ki, hi_ki] intersected with [L_i, U_i]| / (U_i - L_i)` over the coordinates
        with `U_i > L_i`; a zero-width coordinate contributes 1 if the sub-box contains it, else 0. Give
        `boxes` (each an object with `.lower`/`.upper` or a (lower, upper) pair) or batched arrays
        `lower`, `upper` of shape (K, *S). Sub-boxes that partition the box have weights summing to 1.
        """
        if boxes is not None:
            pairs = [_box_of(b) for b in boxes]
            if not pairs:
                return np.zeros(0)
            lo = np.stack([np.broadcast_to(p[0], self.shape) for p in pairs])
            hi = np.stack([np.broadcast_to(p[1], self.shape) for p in pairs])
        elif lower is not None and upper is not None:
            lo, hi = _bounds(lower, upper, "sub-box")
        else:
            raise InputError("weights_of needs boxes or lower= and upper=")
        if lo.shape[1:] != self.shape:
            raise InputError(f"sub-boxes have shape {lo.shape[1:]}, the sampler's box {self.shape}")
        k = lo.shape[0]
        lo, hi = lo.reshape(k, -1), hi.reshape(k, -1)
        big_lo, big_hi = self.lower.reshape(-1), self.upper.reshape(-1)
        width = big_hi - big_lo
        overlap = np.minimum(hi, big_hi) - np.maximum(lo, big_lo)
        flat = width == 0
        inside_flat = (overlap >= 0).astype(np.float64)
        frac = np.where(flat, inside_flat, np.clip(overlap, 0.0, None) / np.where(flat, 1.0, width))
        return np.prod(frac, axis=1)

    def describe(self) -> str:
        return f"uniform on a {_span(self.lower, self.upper)}"

    def to_json(self) -> dict[str, Any]:
        return {"kind": "uniform", "lower": self.lower.tolist(), "upper": self.upper.tolist()}


class TruncatedGaussian(Sampler):
    """Independent coordinates `N(center_i, sigma_i^2)` conditioned on `[lower_i, upper_i]` (exact truncation).

    Drawn by the inverse CDF (`truncated_standard_normal_ppf`) of uniform variates, so no rejection and no
    loss of accuracy when the box lies far in a tail. `sigma` > 0 (scalar or per coordinate).

    >>> s = TruncatedGaussian(0.0, 1.0, [-1.0, 2.0], [1.0, 3.0])
    >>> x = s.sample(1000, np.random.default_rng(0))
    >>> bool(np.all((x >= [-1, 2]) & (x <= [1, 3])))
    True
    """

    def __init__(self, center: ArrayLike, sigma: ArrayLike, lower: ArrayLike, upper: ArrayLike) -> None:
        self.lower, self.upper = _bounds(lower, upper)
        c, s = _array("center", center), _array("sigma", sigma)
        try:
            c = np.broadcast_to(c, self.shape).copy()
            s = np.broadcast_to(s, self.shape).copy()
        except ValueError:
            raise InputError(
                f"center/sigma shapes {np.shape(center)}, {np.shape(sigma)} do not fit the box {self.shape}"
            ) from None
        if np.any(s <= 0):
            raise InputError(f"sigma must be > 0, got {sigma!r}")
        c.setflags(write=False)
        s.setflags(write=False)
        self.center, self.sigma = c, s
        self._alpha = (self.lower - c) / s
        self._beta = (self.upper - c) / s

    def sample(self, n: int, generator: GeneratorLike) -> np.ndarray:
        u = _generator(generator).random((_count(n), *self.shape))
        z = truncated_standard_normal_ppf(u, self._alpha, self._beta)
        return np.clip(self.center + self.sigma * z, self.lower, self.upper)

    def describe(self) -> str:
        s = self.sigma
        sig = f"{s.flat[0]:.3g}" if s.size and np.all(s == s.flat[0]) else f"{s.min():.3g}..{s.max():.3g}"
        return f"Gaussian (sigma {sig}) truncated to a {_span(self.lower, self.upper)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "truncated-gaussian",
            "center": self.center.tolist(),
            "sigma": self.sigma.tolist(),
            "lower": self.lower.tolist(),
            "upper": self.upper.tolist(),
        }


class EmpiricalDataset(Sampler):
    """A data row chosen uniformly (with replacement), perturbed uniformly in an L-inf ball, kept in a box.

    `points` has shape (N, *S). With `boundary="clip"` a draw is `clip(x_j + U[-r, r]^S, lower, upper)`
    (mass on the box faces); with `boundary="restrict"` it is uniform on
    `[max(x_j - r, lower), min(x_j + r, upper)]` (every row must then lie within r of the box). Missing
    lower/upper bounds mean "unbounded" on that side; `self.lower`/`self.upper` are the tightest box
    holding every draw.

    >>> d = EmpiricalDataset([[0.0, 0.0], [1.0, 1.0]], radius=0.1, lower=0.0, upper=1.0)
    >>> x = d.sample(5, np.random.default_rng(0))
    >>> bool(np.all((x >= 0) & (x <= 1)))
    True
    """

    def __init__(
        self,
        points: ArrayLike,
        radius: float = 0.0,
        lower: ArrayLike | None = None,
        upper: ArrayLike | None = None,
        boundary: Literal["clip", "restrict"] = "clip",
    ) -> None:
        pts = _array("points", points)
        if pts.ndim < 2 or pts.shape[0] == 0:
            raise InputError(f"points must have shape (N, *input_shape) with N >= 1, got {pts.shape}")
        if not (isinstance(radius, (int, float, np.floating, np.integer)) and math.isfinite(radius) and radius >= 0):
            raise InputError(f"radius must be a finite number >= 0, got {radius!r}")
        if boundary not in ("clip", "restrict"):
            raise InputError(f"boundary must be 'clip' or 'restrict', got {boundary!r}")
        shape = pts.shape[1:]
        lo = np.full(shape, -np.inf) if lower is None else np.broadcast_to(_array("lower bound", lower), shape)
        hi = np.full(shape, np.inf) if upper is None else np.broadcast_to(_array("upper bound", upper), shape)
        if np.any(lo > hi):
            raise InputError("dataset box has lower > upper")
        self.points, self.radius, self.boundary = pts, float(radius), boundary
        self._clip_lo, self._clip_hi = np.array(lo), np.array(hi)
        ball_lo, ball_hi = pts - self.radius, pts + self.radius
        if boundary == "restrict" and (np.any(ball_hi < lo) or np.any(ball_lo > hi)):
            raise InputError("with boundary='restrict' every data point must lie within radius of the box")
        # The support's bounding box: the balls' hull, cut to the box.
        self.lower = np.clip(ball_lo.min(axis=0), lo, hi)
        self.upper = np.clip(ball_hi.max(axis=0), lo, hi)
        for a in (self.lower, self.upper, self._clip_lo, self._clip_hi):
            a.setflags(write=False)

    def sample(self, n: int, generator: GeneratorLike) -> np.ndarray:
        g = _generator(generator)
        n = _count(n)
        base = self.points[g.integers(0, self.points.shape[0], size=n)]
        if self.radius == 0.0:
            return np.clip(base, self._clip_lo, self._clip_hi)
        u = g.random(base.shape)
        if self.boundary == "clip":
            x = base + self.radius * (2.0 * u - 1.0)
            return np.clip(x, self._clip_lo, self._clip_hi)
        lo = np.maximum(base - self.radius, self._clip_lo)
        hi = np.minimum(base + self.radius, self._clip_hi)
        return np.clip(lo + (hi - lo) * u, lo, hi)

    def describe(self) -> str:
        return (
            f"{self.points.shape[0]} data points of shape {self.shape}, uniform L-inf noise radius "
            f"{self.radius:.3g} ({self.boundary})"
        )

    def to_json(self) -> dict[str, Any]:
        def finite_or_none(a: np.ndarray) -> list | None:
            return a.tolist() if np.all(np.isfinite(a)) else None

        return {
            "kind": "empirical",
            "n_points": int(self.points.shape[0]),
            "shape": list(self.shape),
            "points_sha256": hashlib.sha256(np.ascontiguousarray(self.points).tobytes()).hexdigest(),
            "radius": self.radius,
            "boundary": self.boundary,
            "lower": finite_or_none(self._clip_lo),
            "upper": finite_or_none(self._clip_hi),
        }


def parse_distribution(spec: str, box: Any, center: ArrayLike | None = None) -> Sampler:
    """The sampler named by a CLI `--distribution` string, on `box` (`.lower`/`.upper` or a pair).

    `"uniform"` -> `UniformBox`; `"gauss:SIGMA"` (or `"gaussian:SIGMA"`) -> `TruncatedGaussian` with standard
    deviation SIGMA (> 0, in input units) around `center` (default: the box midpoint), truncated to the box.
    Anything else raises `InputError`.

    >>> parse_distribution("gauss:0.5", ([0.0], [2.0])).describe()
    'Gaussian (sigma 0.5) truncated to a 1-dim box, widths 2..2'
    """
    if not isinstance(spec, str):
        raise InputError(f"distribution must be a string, got {spec!r}")
    lo, hi = _box_of(box)
    text = spec.strip().lower()
    if text == "uniform":
        return UniformBox(lo, hi)
    name, sep, value = text.partition(":")
    if name in ("gauss", "gaussian") and sep:
        try:
            sigma = float(value)
        except ValueError:
            raise InputError(f"bad distribution {spec!r}: SIGMA in gauss:SIGMA must be a number") from None
        if not (math.isfinite(sigma) and sigma > 0):
            raise InputError(f"bad distribution {spec!r}: SIGMA must be a positive finite number")
        c = (lo + hi) / 2.0 if center is None else center
        return TruncatedGaussian(c, sigma, lo, hi)
    raise InputError(f"unknown distribution {spec!r} (expected 'uniform' or 'gauss:SIGMA')")
