"""Bound engines on the twin graph. Each maps (twin, lower (B, n), upper (B, n), c1 (K, m), c2 (K, m)) to
`SpecBounds` of c1 . f(x) + c2 . g(x) over each box; `ENGINES` is the registry the search and CLI use."""

from __future__ import annotations

from functools import partial

from .common import SpecBounds
from .crown import alpha_crown_bounds, crown_bounds
from .diff import diff_bounds
from .interval import interval_bounds

ENGINES = {
    "interval": interval_bounds,
    "crown": crown_bounds,
    "alpha-crown": alpha_crown_bounds,
    "diff-forward": diff_bounds,
    "diff": partial(diff_bounds, intermediate="backward"),
}

__all__ = ["ENGINES", "SpecBounds", "interval_bounds", "crown_bounds", "alpha_crown_bounds", "diff_bounds"]
