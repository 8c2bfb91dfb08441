"""Result records of the relative-safety-margin analyses (`simcert.rsm`) and their JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .errors import InputError
from .network import Network
from .rsm_core import SIDES, confirmed_pi

__all__ = ["RsmResult", "RsmWitness", "json_float", "ratio", "check_label", "confirm_witness"]


def json_float(v: float) -> float | str:
    """A JSON-safe float: +-inf become the strings "inf" / "-inf" (NaN becomes "nan", which never occurs in a
    certified bound)."""
    v = float(v)
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def ratio(v: float) -> float | str:
    """exp(v) as a JSON-safe float ("inf" on overflow)."""
    if v == math.inf or v > 709.0:
        return "inf"
    return float(math.exp(v))


@dataclass(frozen=True)
class RsmWitness:
    """A point where one implication fails, confirmed by running both original models on it (float64).

    `row`: the class j with Pi_cj(x) on the wrong side (< 0 refutes g=>f, > 0 refutes f=>g); `pi`: all Pi_cj(x)
    (0 at c); `f_label`/`g_label`: both models' decisions at x (a *semantic* counterexample to g=>f is one where
    g_label == c != f_label).
    """

    side: str
    x: np.ndarray
    f_out: np.ndarray
    g_out: np.ndarray
    pi: np.ndarray
    row: int

    @property
    def f_label(self) -> int:
        return int(np.argmax(self.f_out))

    @property
    def g_label(self) -> int:
        return int(np.argmax(self.g_out))

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.x.tolist(),
            "f": self.f_out.tolist(),
            "g": self.g_out.tolist(),
            "pi": self.pi.tolist(),
            "row": self.row,
            "value": float(self.pi[self.row]),
            "f_label": self.f_label,
            "g_label": self.g_label,
        }


@dataclass
class RsmResult:
    """The answer of `rsm` for one region and label.

    lower/upper (K,): certified bounds of Pi_cj over the region for j in `others`; observed_lower/observed_upper
    (K,): the extreme values seen at concrete points (so the true min lies in [lower, observed_lower] and the
    true max in [observed_upper, upper]). `status[side]` is "proven", "refuted" (with `witnesses[side]`) or
    "unknown"; `verdict` is "both", "g=>f", "f=>g" or "neither" (neither proven).
    """

    label: int
    others: tuple[int, ...]
    lower: np.ndarray
    upper: np.ndarray
    observed_lower: np.ndarray
    observed_upper: np.ndarray
    status: dict[str, str]
    witnesses: dict[str, RsmWitness | None]
    method: str
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        gf, fg = (self.status[s] == "proven" for s in SIDES)
        return "both" if gf and fg else "g=>f" if gf else "f=>g" if fg else "neither"

    @property
    def rows(self) -> list[str]:
        return [f"Pi_{self.label},{j}" for j in self.others]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: no NaN/inf (infinite values are the strings "inf"/"-inf")."""
        bounds = []
        for i, j in enumerate(self.others):
            lo, hi = float(self.lower[i]), float(self.upper[i])
            bounds.append({
                "row": f"(f_{self.label} - f_{j}) - (g_{self.label} - g_{j})",
                "j": int(j),
                "lower": json_float(lo),
                "upper": json_float(hi),
                "observed_lower": json_float(self.observed_lower[i]),
                "observed_upper": json_float(self.observed_upper[i]),
                "ratio_lower": ratio(lo) if lo > -math.inf else 0.0,
                "ratio_upper": ratio(hi),
            })
        return {
            "property": {"type": "rsm", "label": self.label, "others": list(self.others)},
            "verdict": self.verdict,
            "implications": dict(self.status),
            "bounds": bounds,
            "min_lower": json_float(np.min(self.lower)),
            "max_upper": json_float(np.max(self.upper)),
            "witnesses": {s: (None if w is None else w.to_dict()) for s, w in self.witnesses.items()},
            "method": self.method,
            "stats": {k: (json_float(v) if isinstance(v, float) else v) for k, v in self.stats.items()},
        }


def check_label(label: Any, m: int) -> int:
    """A class index in [0, m), or InputError naming the bad value."""
    try:
        c = int(label)
    except (TypeError, ValueError):
        raise InputError(f"label must be a class index, got {label!r}") from None
    if c != label or not 0 <= c < m:
        raise InputError(f"label {label!r} is not a class index in [0, {m})")
    return c


def confirm_witness(
    f: Network, g: Network, x: torch.Tensor, label: int, others: tuple[int, ...], side: str
) -> RsmWitness | None:
    """The witness at x for `side` if, on the original models (float64), some row Pi_{label,j}, j in `others`, is
    on the wrong side (< 0 for "g=>f", > 0 for "f=>g"); None otherwise."""
    xn = x.detach().cpu().numpy().astype(np.float64).reshape(-1)
    fx, gx, pi = confirmed_pi(f, g, xn, label)
    vals = pi[list(others)]
    k = int(np.argmin(vals)) if side == "g=>f" else int(np.argmax(vals))
    bad = vals[k] < 0 if side == "g=>f" else vals[k] > 0
    return RsmWitness(side, xn, fx, gx, pi, int(others[k])) if bad else None
