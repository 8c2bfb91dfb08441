"""Outward rounding helpers, so a region computed in floating point always *contains* the exact one.

A region that is a hair too small could hide a counterexample, so every place that turns an exact value
(a decimal in a file, `c - r`, a normalization) into float64 rounds lower bounds down and upper bounds up.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

__all__ = ["fraction_down", "fraction_up", "sub_down", "add_up"]


def fraction_down(q: Fraction) -> float:
    """The largest float64 <= q (q exact). Rule: nearest float, stepped down one ulp if it lies above q."""
    f = float(q)
    if Fraction(f) > q:
        f = float(np.nextafter(f, -np.inf))
    return f


def fraction_up(q: Fraction) -> float:
    """The smallest float64 >= q (q exact)."""
    f = float(q)
    if Fraction(f) < q:
        f = float(np.nextafter(f, np.inf))
    return f


def _two_sum(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knuth's TwoSum: s = fl(a + b) and err with a + b = s + err exactly (no overflow)."""
    s = a + b
    bb = s - a
    err = (a - (s - bb)) + (b - bb)
    return s, err


def sub_down(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A float64 array <= a - b elementwise (the exact difference, rounded toward -inf)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    s, err = _two_sum(a, -b)
    return np.where(err < 0, np.nextafter(s, -np.inf), s)


def add_up(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A float64 array >= a + b elementwise (the exact sum, rounded toward +inf)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    s, err = _two_sum(a, b)
    return np.where(err > 0, np.nextafter(s, np.inf), s)
