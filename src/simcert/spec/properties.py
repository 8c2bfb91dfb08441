"""Properties of a twin pair (f, g) and the linear specs whose bounds decide them.

Every deterministic property reduces to bounding linear specs `c1 . f(x) + c2 . g(x)` over the region
(METHODS.md section 2). `prop.specs(m)` returns the stack `(C1, C2)`, numpy arrays of shape (k, m), one
row per spec; `check_outputs(prop, fx, gx)` evaluates the property on concrete outputs (batched) to
confirm counterexamples.

| property             | spec rows (C1 | C2)                | holds when (bounds of each row)          |
|----------------------|------------------------------------|------------------------------------------|
| EpsEquivalence(eps)  | -e_k | +e_k      (g_k - f_k)       | -eps <= lower and upper <= eps           |
| Top1 (f's class c)   | e_c - e_j | 0, then 0 | e_c - e_j   | f_c - f_j > 0 proves c; g_c - g_j > 0    |
| DeltaTop1(delta)     | as Top1                            | as Top1 where f_c - f_j >= logit(delta)  |
| RsmSpec(c)           | e_c - e_j | -(e_c - e_j) (Pi_cj)   | lower >= 0 (local implication g => f)    |
| LinearSpec(c1,c2,b)  | c1 | c2 (+ offset b)               | lower + b >= 0                           |
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from ..errors import InputError

__all__ = [
    "EpsEquivalence",
    "Top1",
    "DeltaTop1",
    "RsmSpec",
    "LinearSpec",
    "Property",
    "top1_specs",
    "check_outputs",
    "property_from_json",
]


def _index_tuple(values: Any, name: str) -> tuple[int, ...]:
    try:
        items = [values] if np.ndim(values) == 0 else list(np.asarray(values).reshape(-1))
    except (TypeError, ValueError):
        raise InputError(f"{name} must be output indices, got {values!r}") from None
    out = []
    for v in items:
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise InputError(f"{name} must be non-negative integers, got {v!r}") from None
        if isinstance(v, (bool, np.bool_)) or not fv.is_integer() or fv < 0:
            raise InputError(f"{name} must be non-negative integers, got {v!r}")
        out.append(int(fv))
    if not out:
        raise InputError(f"{name} must not be empty")
    if len(set(out)) != len(out):
        raise InputError(f"{name} has repeated indices: {out}")
    return tuple(out)


def _check_indices(indices: tuple[int, ...], m: int, what: str) -> None:
    bad = [i for i in indices if i >= m]
    if bad:
        raise InputError(f"{what} index {bad[0]} is out of range for a model with {m} outputs")


def _n_outputs(m: Any) -> int:
    if int(m) != m or m < 1:
        raise InputError(f"number of outputs must be a positive integer, got {m!r}")
    return int(m)


def _positive_finite(value: Any, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise InputError(f"{name} must be finite and > 0, got {value!r}")
    return v


# ------------------------------------------------------------------------------------------ properties
@dataclass(frozen=True)
class EpsEquivalence:
    """`max_x |g_k(x) - f_k(x)| <= eps` for every chosen output k (all outputs when `outputs` is None).

    >>> C1, C2 = EpsEquivalence(0.1, outputs=[1]).specs(3)
    >>> C1.tolist(), C2.tolist()
    ([[0.0, -1.0, 0.0]], [[0.0, 1.0, 0.0]])
    """

    eps: float
    outputs: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "eps", _positive_finite(self.eps, "eps"))
        if self.outputs is not None:
            object.__setattr__(self, "outputs", _index_tuple(self.outputs, "outputs"))

    def indices(self, n_outputs: int) -> tuple[int, ...]:
        """The checked outputs for a model with `n_outputs` outputs."""
        m = _n_outputs(n_outputs)
        if self.outputs is None:
            return tuple(range(m))
        _check_indices(self.outputs, m, "output")
        return self.outputs

    def specs(self, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows (C1, C2) = (-e_k, +e_k): the spec g_k - f_k, which must stay within [-eps, eps]."""
        m = _n_outputs(n_outputs)
        idx = self.indices(m)
        c1, c2 = np.zeros((len(idx), m)), np.zeros((len(idx), m))
        c1[np.arange(len(idx)), idx] = -1.0
        c2[np.arange(len(idx)), idx] = 1.0
        return c1, c2

    def describe(self) -> str:
        which = "every output k" if self.outputs is None else f"k in {list(self.outputs)}"
        return f"eps-equivalence: |g_k(x) - f_k(x)| <= {self.eps:g} for {which}"

    def to_json(self) -> dict[str, Any]:
        outputs = None if self.outputs is None else list(self.outputs)
        return {"type": "eps-equivalence", "eps": self.eps, "outputs": outputs}


@dataclass(frozen=True)
class Top1:
    """Top-1 equivalence: `argmax f(x) = argmax g(x)` for all x in the region."""

    def specs(self, n_outputs: int, label: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """`top1_specs(label, m)` when f's class `label` is known, else all pairwise f and g differences.

        Without a label the rows are f_i - f_j then g_i - g_j for all i < j: from their bounds one can
        read off whether f has one class c on the whole region and whether g keeps it.
        """
        m = _n_outputs(n_outputs)
        if label is not None:
            return top1_specs(label, m)
        pairs = [(i, j) for i in range(m) for j in range(i + 1, m)]
        d = np.zeros((len(pairs), m))
        for r, (i, j) in enumerate(pairs):
            d[r, i], d[r, j] = 1.0, -1.0
        z = np.zeros_like(d)
        return np.vstack([d, z]), np.vstack([z, d])

    def describe(self) -> str:
        return "top-1 equivalence: argmax g(x) = argmax f(x)"

    def to_json(self) -> dict[str, Any]:
        return {"type": "top1"}


@dataclass(frozen=True)
class DeltaTop1:
    """delta-top-1: wherever softmax(f(x)) gives its top class probability >= delta, g picks that class.

    A confident region for class c lies inside `{f_c - f_j >= logit(delta) for all j}`
    (p_c >= delta gives p_c / p_j >= delta / (1 - delta)), see `margin_threshold`.
    """

    delta: float

    def __post_init__(self) -> None:
        try:
            d = float(self.delta)
        except (TypeError, ValueError):
            raise InputError(f"delta must be a number, got {self.delta!r}") from None
        if not 0.5 <= d < 1.0:
            raise InputError(f"delta must be in [0.5, 1), got {self.delta!r}")
        object.__setattr__(self, "delta", d)

    def margin_threshold(self) -> float:
        """logit(delta) = log(delta / (1 - delta)): f_c - f_j is at least this where class c is confident."""
        return math.log(self.delta / (1.0 - self.delta))

    def specs(self, n_outputs: int, label: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The same rows as `Top1.specs`."""
        return Top1().specs(n_outputs, label)

    def describe(self) -> str:
        return f"delta-top-1 (delta = {self.delta:g}): where max softmax(f(x)) >= {self.delta:g}, argmax g = argmax f"

    def to_json(self) -> dict[str, Any]:
        return {"type": "delta-top1", "delta": self.delta}


@dataclass(frozen=True)
class RsmSpec:
    """Relative safety margins `Pi_cj(x) = (f_c - f_j) - (g_c - g_j)` for label c and each j in `others`.

    It holds (local implication g => f: f is right wherever g is right) when `min_x Pi_cj >= 0` for all j.
    """

    label: int
    others: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        (label,) = _index_tuple(self.label, "label")
        object.__setattr__(self, "label", label)
        if self.others is not None:
            others = _index_tuple(self.others, "others")
            if label in others:
                raise InputError(f"others must not contain the label {label}")
            object.__setattr__(self, "others", others)

    def other_indices(self, n_outputs: int) -> tuple[int, ...]:
        m = _n_outputs(n_outputs)
        _check_indices((self.label,), m, "label")
        if self.others is None:
            return tuple(j for j in range(m) if j != self.label)
        _check_indices(self.others, m, "others")
        return self.others

    def specs(self, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows C1 = e_c - e_j, C2 = -(e_c - e_j): one Pi_cj per j."""
        m = _n_outputs(n_outputs)
        js = self.other_indices(m)
        d = np.zeros((len(js), m))
        d[:, self.label] = 1.0
        d[np.arange(len(js)), js] = -1.0
        return d, 0.0 - d

    def describe(self) -> str:
        return f"relative safety margin for label {self.label}: (f_c - f_j) - (g_c - g_j) >= 0"

    def to_json(self) -> dict[str, Any]:
        return {"type": "rsm", "label": self.label, "others": None if self.others is None else list(self.others)}


@dataclass(frozen=True, eq=False)
class LinearSpec:
    """User linear specs `c1 . f(x) + c2 . g(x) + offset`, required to be >= 0 on the whole region.

    `c1`, `c2` are one row (m,) or a stack (k, m); `offset` a scalar or one value per row.
    """

    c1: np.ndarray
    c2: np.ndarray
    offset: Any = 0.0

    def __post_init__(self) -> None:
        c1 = np.atleast_2d(np.array(self.c1, dtype=np.float64))
        c2 = np.atleast_2d(np.array(self.c2, dtype=np.float64))
        if c1.ndim != 2 or c1.shape != c2.shape or c1.size == 0:
            raise InputError(
                f"c1 and c2 must have the same shape (m,) or (k, m), got {np.shape(self.c1)} and {np.shape(self.c2)}"
            )
        off = np.array(self.offset, dtype=np.float64).reshape(-1)
        if off.size == 1:
            off = np.full(c1.shape[0], off[0])
        if off.size != c1.shape[0]:
            raise InputError(f"offset has {off.size} values for {c1.shape[0]} spec rows")
        for name, arr in (("c1", c1), ("c2", c2), ("offset", off)):
            if not np.all(np.isfinite(arr)):
                raise InputError(f"{name} contains NaN or infinite values")
            arr.setflags(write=False)
        object.__setattr__(self, "c1", c1)
        object.__setattr__(self, "c2", c2)
        object.__setattr__(self, "offset", off)

    def specs(self, n_outputs: int) -> tuple[np.ndarray, np.ndarray]:
        m = _n_outputs(n_outputs)
        if self.c1.shape[1] != m:
            raise InputError(f"linear spec has {self.c1.shape[1]} coefficients per network, the model has {m} outputs")
        return self.c1.copy(), self.c2.copy()

    def describe(self) -> str:
        return f"{self.c1.shape[0]} linear spec(s) c1 . f(x) + c2 . g(x) + offset >= 0"

    def to_json(self) -> dict[str, Any]:
        return {"type": "linear", "c1": self.c1.tolist(), "c2": self.c2.tolist(), "offset": self.offset.tolist()}


Property = Union[EpsEquivalence, Top1, DeltaTop1, RsmSpec, LinearSpec]


def top1_specs(c: int, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Specs for top-1 with f's class c: 2(m-1) rows, first f_c - f_j then g_c - g_j (j != c, ascending).

    f keeps class c on a region when every f-row has lower bound > 0; g agrees when every g-row does.

    >>> C1, C2 = top1_specs(0, 2)
    >>> C1.tolist(), C2.tolist()
    ([[1.0, -1.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, -1.0]])
    """
    m = _n_outputs(m)
    (c,) = _index_tuple(c, "class")
    _check_indices((c,), m, "class")
    js = [j for j in range(m) if j != c]
    d = np.zeros((len(js), m))
    d[:, c] = 1.0
    d[np.arange(len(js)), js] = -1.0
    z = np.zeros_like(d)
    return np.vstack([d, z]), np.vstack([z, d])


# ------------------------------------------------------------------------------------------ concrete checks
def _outputs(fx: Any, gx: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    f = np.asarray(fx, dtype=np.float64)
    g = np.asarray(gx, dtype=np.float64)
    if f.shape != g.shape or f.ndim not in (1, 2) or f.shape[-1] == 0:
        raise InputError(f"f and g outputs must have the same shape (m,) or (B, m), got {f.shape} and {g.shape}")
    if not (np.all(np.isfinite(f)) and np.all(np.isfinite(g))):
        raise InputError("network outputs contain NaN or infinite values")
    single = f.ndim == 1
    return np.atleast_2d(f), np.atleast_2d(g), single


def _softmax_top(f: np.ndarray) -> np.ndarray:
    z = f - f.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e.max(axis=1) / e.sum(axis=1)


def check_outputs(prop: Property, fx: Any, gx: Any) -> np.ndarray:
    """Whether concrete outputs violate `prop`: bool array (B,) for (B, m) inputs, 0-d for (m,).

    Rules: eps: max_k |g_k - f_k| > eps over the chosen outputs; top-1: argmax f != argmax g (numpy's
    first-index rule on ties); delta-top-1: max softmax(f) >= delta and argmax differ; RSM: some
    Pi_cj < 0; linear: some row c1 . f + c2 . g + offset < 0.
    """
    f, g, single = _outputs(fx, gx)
    m = f.shape[1]
    if isinstance(prop, EpsEquivalence):
        idx = list(prop.indices(m))
        bad = np.max(np.abs(g[:, idx] - f[:, idx]), axis=1) > prop.eps
    elif isinstance(prop, Top1):
        bad = np.argmax(f, axis=1) != np.argmax(g, axis=1)
    elif isinstance(prop, DeltaTop1):
        bad = (_softmax_top(f) >= prop.delta) & (np.argmax(f, axis=1) != np.argmax(g, axis=1))
    elif isinstance(prop, (RsmSpec, LinearSpec)):
        c1, c2 = prop.specs(m)
        vals = f @ c1.T + g @ c2.T
        if isinstance(prop, LinearSpec):
            vals = vals + prop.offset
        bad = np.any(vals < 0, axis=1)
    else:
        raise InputError(f"unknown property type {type(prop).__name__}")
    return np.asarray(bad[0]) if single else bad


def property_from_json(data: dict[str, Any]) -> Property:
    """Inverse of each property's `to_json`."""
    if not isinstance(data, dict) or "type" not in data:
        raise InputError("property JSON needs a 'type'")
    kind = data["type"]
    if kind == "eps-equivalence":
        return EpsEquivalence(data["eps"], data.get("outputs"))
    if kind == "top1":
        return Top1()
    if kind == "delta-top1":
        return DeltaTop1(data["delta"])
    if kind == "rsm":
        return RsmSpec(data["label"], data.get("others"))
    if kind == "linear":
        return LinearSpec(data["c1"], data["c2"], data.get("offset", 0.0))
    raise InputError(f"unknown property type {kind!r}")
