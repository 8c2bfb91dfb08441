"""`Box`: an axis-aligned input region `{x : lower <= x <= upper}` over the flat input vector.

Every region simcert verifies on is a box (or a list of boxes): an L-inf ball around a point clipped to the
valid domain, an ACAS Xu property box, the input part of a VNN-LIB file, or two CSV files. Coordinates are
the network's own (normalized for .nnet / ACAS Xu ONNX models).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from .rounding import add_up, sub_down

__all__ = ["Box", "read_vector"]


def _vector(values: Any, name: str) -> np.ndarray:
    """A flat float64 copy of `values` (any shape), with a clear error for non-numeric input."""
    try:
        arr = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numeric: {exc}") from None
    return arr


def _per_coord(value: Any, n: int, name: str) -> np.ndarray:
    """`value` as n floats: a scalar is repeated, an array (any shape) must hold exactly n values."""
    arr = _vector(value, name)
    if arr.size == 1:
        return np.full(n, float(arr.reshape(-1)[0]))
    if arr.size != n:
        raise InputError(f"{name} has {arr.size} values, expected 1 or {n}")
    return arr.reshape(-1)


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


@dataclass(frozen=True, eq=False)
class Box:
    """The box `lower <= x <= upper` (float64, flat, read-only; lower == upper allowed per coordinate).

    Validation (InputError naming the first bad index): finite values, same shape, at least one
    coordinate, lower <= upper. Arrays of any shape are accepted and flattened (row-major), so an image
    box (1, 28, 28) becomes a 784-dimensional box.

    >>> b = Box([0.0, -1.0], [1.0, 1.0])
    >>> b.dim, b.center.tolist(), b.radius.tolist(), b.volume()
    (2, [0.5, 0.0], [0.5, 1.0], 2.0)
    """

    lower: np.ndarray
    upper: np.ndarray

    def __post_init__(self) -> None:
        lower = _vector(self.lower, "lower bound")
        upper = _vector(self.upper, "upper bound")
        if lower.shape != upper.shape:
            raise InputError(f"box bounds differ in shape: lower {lower.shape}, upper {upper.shape}")
        lower, upper = lower.reshape(-1), upper.reshape(-1)
        if lower.size == 0:
            raise InputError("box has no coordinates")
        for name, arr in (("lower", lower), ("upper", upper)):
            bad = ~np.isfinite(arr)
            if bad.any():
                i = _first_bad(bad)
                raise InputError(f"box {name} bound [{i}] is {arr[i]} (must be finite)")
        bad = lower > upper
        if bad.any():
            i = _first_bad(bad)
            raise InputError(f"box is empty at input [{i}]: lower {lower[i]!r} > upper {upper[i]!r}")
        lower.setflags(write=False)
        upper.setflags(write=False)
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)

    # ------------------------------------------------------------------ identity
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Box):
            return NotImplemented
        return bool(np.array_equal(self.lower, other.lower) and np.array_equal(self.upper, other.upper))

    def __hash__(self) -> int:
        return hash((self.lower.tobytes(), self.upper.tobytes()))

    def __repr__(self) -> str:
        if self.dim <= 6:
            return f"Box(lower={self.lower.tolist()}, upper={self.upper.tolist()})"
        return (
            f"Box(dim={self.dim}, lower in [{self.lower.min():.6g}, {self.lower.max():.6g}], "
            f"upper in [{self.upper.min():.6g}, {self.upper.max():.6g}])"
        )

    # ------------------------------------------------------------------ geometry
    @property
    def dim(self) -> int:
        """Number of input coordinates."""
        return int(self.lower.size)

    @property
    def center(self) -> np.ndarray:
        """(lower + upper) / 2 (computed without overflow)."""
        return self.lower + (self.upper - self.lower) / 2

    @property
    def radius(self) -> np.ndarray:
        """(upper - lower) / 2 per coordinate."""
        return (self.upper - self.lower) / 2

    @property
    def width(self) -> np.ndarray:
        """upper - lower per coordinate."""
        return self.upper - self.lower

    def volume(self) -> float:
        """prod_i (upper_i - lower_i); may over/underflow in high dimension, see `log_volume`."""
        return float(np.prod(self.width))

    def log_volume(self) -> float:
        """sum_i log(upper_i - lower_i) (-inf when some coordinate is fixed)."""
        w = self.width
        if np.any(w == 0):
            return -math.inf
        return float(np.sum(np.log(w)))

    def _points(self, x: Any) -> tuple[np.ndarray, bool]:
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim == 1 and arr.size == self.dim:
            return arr[None, :], True
        if arr.ndim >= 2 and int(np.prod(arr.shape[1:])) == self.dim:
            return arr.reshape(arr.shape[0], self.dim), False
        raise InputError(f"points of shape {arr.shape} do not match a box with {self.dim} inputs")

    def contains(self, x: Any, tol: float = 0.0) -> Any:
        """Whether `lower - tol <= x <= upper + tol` in every coordinate.

        `x` is one point (dim,) -> bool, or a batch (B, dim) / (B, *input_shape) -> bool array (B,).
        """
        pts, single = self._points(x)
        inside = np.all((pts >= self.lower - tol) & (pts <= self.upper + tol), axis=1)
        return bool(inside[0]) if single else inside

    def sample(self, n: int, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """`n` points drawn uniformly from the box, shape (n, dim); fixed coordinates are returned exactly."""
        if int(n) != n or n < 0:
            raise InputError(f"sample count must be a non-negative integer, got {n!r}")
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        u = gen.random((int(n), self.dim))
        pts = self.lower + u * self.width
        return np.clip(pts, self.lower, self.upper)  # lower + u*w can round past upper

    def check_model(self, net: Any) -> "Box":
        """Raise InputError unless the box has `net.input_size` coordinates; returns self."""
        expected = int(net.input_size)
        if self.dim != expected:
            name = getattr(net, "name", "model")
            raise InputError(f"region has {self.dim} inputs, model expects {expected} ({name})")
        return self

    def intersect(self, other: "Box") -> "Box | None":
        """The box `self ∩ other`, or None when they do not overlap."""
        if other.dim != self.dim:
            raise InputError(f"cannot intersect boxes with {self.dim} and {other.dim} inputs")
        lo = np.maximum(self.lower, other.lower)
        hi = np.minimum(self.upper, other.upper)
        if np.any(lo > hi):
            return None
        return Box(lo, hi)

    def to_torch(
        self, dtype: torch.dtype = torch.float64, device: str | torch.device = "cpu"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(lower, upper) as 1-D tensors, rounded *outward* when `dtype` is narrower than float64.

        Guarantee: the tensor box contains this box (lower rounded down, upper rounded up), so a bound
        computed on it is sound for this region.
        """
        lo64 = torch.tensor(self.lower, dtype=torch.float64)
        hi64 = torch.tensor(self.upper, dtype=torch.float64)
        lo, hi = lo64.to(dtype), hi64.to(dtype)
        if dtype != torch.float64:
            lo = torch.where(lo.double() > lo64, torch.nextafter(lo, torch.full_like(lo, -math.inf)), lo)
            hi = torch.where(hi.double() < hi64, torch.nextafter(hi, torch.full_like(hi, math.inf)), hi)
        return lo.to(device), hi.to(device)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def linf(cls, center: Any, radius: Any, clip: tuple[Any, Any] | None = None) -> "Box":
        """The L-inf ball `{x : |x - center|_inf <= radius}` intersected with `[clip[0], clip[1]]`.

        `radius` is a scalar or one value per coordinate (>= 0); `clip` holds scalars or arrays. The
        ball is rounded outward (`center - radius` down, `center + radius` up) so it always contains
        the exact ball. InputError when the clipped box is empty (center farther than radius outside).
        """
        c = _vector(center, "center").reshape(-1)
        r = _per_coord(radius, c.size, "radius")
        bad = ~np.isfinite(r) | (r < 0)
        if bad.any():
            i = _first_bad(bad)
            raise InputError(f"radius [{i}] is {r[i]} (must be finite and >= 0)")
        bad = ~np.isfinite(c)
        if bad.any():
            i = _first_bad(bad)
            raise InputError(f"center [{i}] is {c[i]} (must be finite)")
        lower = sub_down(c, r)
        upper = add_up(c, r)
        if clip is not None:
            try:
                lo_raw, hi_raw = clip
            except (TypeError, ValueError):
                raise InputError(f"clip must be a pair (lo, hi), got {clip!r}") from None
            lo = _per_coord(lo_raw, c.size, "clip low")
            hi = _per_coord(hi_raw, c.size, "clip high")
            bad = lo > hi
            if bad.any():
                i = _first_bad(bad)
                raise InputError(f"clip range is empty at input [{i}]: {lo[i]} > {hi[i]}")
            lower = np.maximum(lower, lo)
            upper = np.minimum(upper, hi)
            bad = lower > upper
            if bad.any():
                i = _first_bad(bad)
                raise InputError(
                    f"center [{i}] = {c[i]} lies more than the radius outside the clip range [{lo[i]}, {hi[i]}]"
                )
        return cls(lower, upper)

    @classmethod
    def from_csv(cls, lower_path: str | Path, upper_path: str | Path) -> "Box":
        """A box from two files of numbers (one per line or comma/space separated; `#` starts a comment)."""
        lower = read_vector(lower_path)
        upper = read_vector(upper_path)
        if lower.size != upper.size:
            raise InputError(f"{lower_path} has {lower.size} values but {upper_path} has {upper.size}")
        try:
            return cls(lower, upper)
        except InputError as exc:
            raise InputError(f"{lower_path}, {upper_path}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """A JSON-friendly dict; floats are written with full (round-trip) precision."""
        return {"type": "box", "dim": self.dim, "lower": self.lower.tolist(), "upper": self.upper.tolist()}

    @classmethod
    def from_json(cls, data: dict[str, Any] | str) -> "Box":
        """Inverse of `to_json` (a dict, or its JSON text)."""
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as exc:
                raise InputError(f"box JSON is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or "lower" not in data or "upper" not in data:
            raise InputError("box JSON needs 'lower' and 'upper' lists")
        if data.get("type", "box") != "box":
            raise InputError(f"expected a region of type 'box', got {data.get('type')!r}")
        box = cls(data["lower"], data["upper"])
        if "dim" in data and int(data["dim"]) != box.dim:
            raise InputError(f"box JSON says dim {data['dim']} but has {box.dim} values")
        return box


_SEPARATORS = re.compile(r"[,\s;]+")


def read_vector(path: str | Path) -> np.ndarray:
    """The numbers in a text file as a flat float64 array.

    Format: values separated by commas, semicolons or whitespace, on one line or many; blank lines and
    text after `#` are ignored. InputError with file and line for anything that is not a finite number.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None
    values: list[float] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        for tok in _SEPARATORS.split(line):
            if not tok:
                continue
            try:
                v = float(tok)
            except ValueError:
                raise InputError(f"{path}:{lineno}: {tok!r} is not a number") from None
            if not math.isfinite(v):
                raise InputError(f"{path}:{lineno}: {tok!r} is not a finite number")
            values.append(v)
    if not values:
        raise InputError(f"{path}: no values found")
    return np.array(values, dtype=np.float64)
