"""ACAS Xu property boxes of the NeuroDiff suite (raw units) and their normalized regions.

The table is METHODS.md section 7 (NeuroDiff ASE'20 / ReluDiff ICSE'20 artifact): props 1, 3, 4, 5, 6a, 6b,
7..15, each a raw-unit box (rho, theta, psi, v_own, v_int), the target output whose difference `g_t - f_t`
is checked, and the networks the suite runs it on. 143 (property, network) runs in all.

Normalization is the .nnet rule `x_hat = (clip(x, min, max) - mean) / range`, computed exactly and rounded
outward so the region contains the exact image of the raw box.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import InputError
from .box import Box
from .rounding import fraction_down, fraction_up

__all__ = [
    "AcasProperty",
    "ACAS_NORMALIZATION",
    "ACAS_NETWORK_IDS",
    "acas_property",
    "acas_properties",
    "acas_region",
    "acas_regions",
    "acas_suite",
    "acas_network_id",
    "acas_property_names",
]

ACAS_NETWORK_IDS: tuple[str, ...] = tuple(f"{a}_{b}" for a in range(1, 6) for b in range(1, 10))

# Standard ACAS Xu input normalization (the .nnet headers of all 45 networks; checked in the tests).
ACAS_NORMALIZATION: dict[str, tuple[float, ...]] = {
    "means": (19791.091, 0.0, 0.0, 650.0, 600.0),
    "ranges": (60261.0, 6.28318530718, 6.28318530718, 1100.0, 1200.0),
    "mins": (0.0, -3.141593, -3.141593, 100.0, 0.0),
    "maxes": (60760.0, 3.141593, 3.141593, 1200.0, 1200.0),
}

_ALL = ACAS_NETWORK_IDS
_NOT_1_789 = tuple(n for n in ACAS_NETWORK_IDS if n not in ("1_7", "1_8", "1_9"))

# name: (lower raw, upper raw, target output, networks) -- copied from METHODS.md section 7.
_P1 = ((55947.691, -3.141592, -3.141592, 1145.0, 0.0), (60760.0, 3.141592, 3.141592, 1200.0, 60.0))
_P5 = ((250.0, 0.2, -3.1415926, 100.0, 0.0), (400.0, 0.4, -3.1365926, 400.0, 400.0))
_TABLE: dict[str, tuple[tuple[float, ...], tuple[float, ...], int, tuple[str, ...]]] = {
    "1": (*_P1, 0, _ALL),
    "3": ((1500.0, -0.06, 3.10, 980.0, 960.0), (1800.0, 0.06, 3.141592, 1200.0, 1200.0), 0, _NOT_1_789),
    "4": ((1500.0, -0.06, 0.0, 1000.0, 700.0), (1800.0, 0.06, 0.0, 1200.0, 800.0), 0, _NOT_1_789),
    "5": (*_P5, 4, ("1_1",)),
    "6a": ((12000.0, 0.7, -3.141592, 100.0, 0.0), (62000.0, 3.141592, -3.136592, 200.0, 1200.0), 0, ("1_1",)),
    "6b": ((12000.0, -3.141592, -3.141592, 100.0, 0.0), (62000.0, -0.7, -3.136592, 200.0, 1200.0), 0, ("1_1",)),
    "7": ((0.0, -3.141592, -3.141592, 100.0, 0.0), (60760.0, 3.141592, 3.141592, 1200.0, 1200.0), 4, ("1_9",)),
    "8": ((0.0, -3.141592, -0.1, 600.0, 600.0), (60760.0, -2.356194, 0.1, 1200.0, 1200.0), 1, ("2_9",)),
    "9": ((2000.0, -0.4, -3.141592, 100.0, 0.0), (7000.0, -0.14, -3.131592, 150.0, 150.0), 3, ("3_3",)),
    "10": ((36000.0, 0.7, -3.141592, 900.0, 600.0), (60760.0, 3.141592, -3.131592, 1200.0, 1200.0), 0, ("4_5",)),
    "11": (*_P5, 4, ("1_1",)),
    "12": (*_P1, 0, ("3_3",)),
    "13": ((60000.0, -3.141592, -3.141592, 0.0, 0.0), (60760.0, 3.141592, 3.141592, 360.0, 360.0), 0, ("1_1",)),
    "14": (*_P5, 4, ("4_1", "5_1")),
    "15": ((250.0, -0.4, -3.1415926, 100.0, 0.0), (400.0, -0.2, -3.1365926, 400.0, 400.0), 3, ("4_1", "5_1")),
}


@dataclass(frozen=True, eq=False)
class AcasProperty:
    """One ACAS Xu property of the NeuroDiff suite: a raw-unit input box, target output, network ids."""

    name: str
    lower_raw: np.ndarray
    upper_raw: np.ndarray
    target_output: int
    networks: tuple[str, ...]

    def __post_init__(self) -> None:
        for attr in ("lower_raw", "upper_raw"):
            arr = np.array(getattr(self, attr), dtype=np.float64)
            arr.setflags(write=False)
            object.__setattr__(self, attr, arr)

    def region(self, net: Any = None) -> Box:
        """The normalized box for `net` (see `acas_region`)."""
        return acas_region(self, net)

    def describe(self) -> str:
        return (
            f"ACAS Xu property {self.name}: raw box {self.lower_raw.tolist()} .. {self.upper_raw.tolist()}, "
            f"target output {self.target_output}, networks {_describe_nets(self.networks)}"
        )


def _describe_nets(nets: tuple[str, ...]) -> str:
    if nets == _ALL:
        return "all 45"
    if nets == _NOT_1_789:
        return "all but 1_7, 1_8, 1_9"
    return ", ".join(nets)


def acas_property_names() -> list[str]:
    """The property names in table order: 1, 3, 4, 5, 6a, 6b, 7, ..., 15."""
    return list(_TABLE)


def _key(n: int | str) -> str:
    text = str(n).strip().lower()
    text = re.sub(r"^(prop(erty)?|phi)[ _-]?", "", text)
    return text


def acas_property(n: int | str) -> AcasProperty:
    """The property named `n` (1, "3", "6a", "prop_7", ...). Property 6 has two boxes: ask for "6a"/"6b"."""
    key = _key(n)
    if key == "6":
        raise InputError('ACAS Xu property 6 is a union of two boxes: use "6a" or "6b" (or acas_properties(6))')
    if key not in _TABLE:
        raise InputError(f"unknown ACAS Xu property {n!r}; the NeuroDiff suite has {', '.join(_TABLE)}")
    lo, hi, target, nets = _TABLE[key]
    return AcasProperty(key, np.array(lo), np.array(hi), target, nets)


def acas_properties(n: int | str) -> list[AcasProperty]:
    """[acas_property(n)], or both halves [6a, 6b] for property 6."""
    if _key(n) == "6":
        return [acas_property("6a"), acas_property("6b")]
    return [acas_property(n)]


def _normalization(net: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mins, maxes, means, ranges) from a Network's .nnet header, an NnetNormalization, or the standard ones."""
    nnet = net
    if net is not None and hasattr(net, "input_size"):
        if int(net.input_size) != 5:
            name = getattr(net, "name", "")
            raise InputError(f"ACAS Xu regions have 5 inputs, model {name!r} expects {net.input_size}")
        nnet = getattr(net, "nnet", None)
    if nnet is None:
        c = ACAS_NORMALIZATION
        mins, maxes, means, ranges = (np.array(c[k], dtype=np.float64) for k in ("mins", "maxes", "means", "ranges"))
        return mins, maxes, means, ranges
    arrays = tuple(
        np.asarray(getattr(nnet, k), dtype=np.float64).reshape(-1)
        for k in ("input_min", "input_max", "input_mean", "input_range")
    )
    if any(a.size != 5 for a in arrays):
        raise InputError("the model's .nnet normalization does not have 5 inputs")
    if np.any(arrays[3] <= 0) or not all(np.all(np.isfinite(a)) for a in arrays):
        raise InputError("the model's .nnet input ranges must be finite and positive")
    return arrays  # type: ignore[return-value]


def acas_region(prop: int | str | AcasProperty, net: Any = None) -> Box:
    """The normalized box of an ACAS Xu property for `net`.

    Rule: `x_hat = (clip(x, min, max) - mean) / range` per input, with min/max/mean/range from `net.nnet`
    (a `Network` loaded from .nnet, or an `NnetNormalization`), else the standard ACAS Xu constants
    (`ACAS_NORMALIZATION`, for ONNX exports without them). Each bound is computed exactly from its
    float64 inputs and rounded outward. Property 6 ("6") is two boxes: use `acas_regions`.
    """
    p = prop if isinstance(prop, AcasProperty) else acas_property(prop)
    mins, maxes, means, ranges = _normalization(net)
    lo = [fraction_down(_normalize_exact(p.lower_raw[i], mins[i], maxes[i], means[i], ranges[i])) for i in range(5)]
    hi = [fraction_up(_normalize_exact(p.upper_raw[i], mins[i], maxes[i], means[i], ranges[i])) for i in range(5)]
    return Box(np.array(lo), np.array(hi))


def _normalize_exact(x: float, lo: float, hi: float, mean: float, rng: float) -> Fraction:
    """(clip(x, lo, hi) - mean) / rng in exact rational arithmetic on the float64 inputs."""
    clipped = min(max(float(x), float(lo)), float(hi))
    return (Fraction(clipped) - Fraction(float(mean))) / Fraction(float(rng))


def acas_regions(prop: int | str, net: Any = None) -> list[Box]:
    """All normalized boxes of a property (two for property 6, else one)."""
    return [acas_region(p, net) for p in acas_properties(prop)]


def acas_suite() -> list[tuple[str, str]]:
    """The NeuroDiff suite's (property, network id) runs: 143 pairs, in table order."""
    return [(name, net) for name, (_, _, _, nets) in _TABLE.items() for net in nets]


_NET_ID = re.compile(r"(?<![0-9])([1-5])_([1-9])(?![0-9])")


def acas_network_id(name: str) -> str:
    """The ACAS Xu network id "a_b" in a file name such as ACASXU_run2a_1_7_batch_2000.nnet."""
    stem = re.sub(r"\.(nnet|onnx)$", "", str(name).rsplit("/", 1)[-1])
    stem = stem.replace("run2a_", "")
    m = _NET_ID.search(stem)
    if not m:
        raise InputError(f"cannot find an ACAS Xu network id (like 1_7) in {name!r}")
    return f"{m.group(1)}_{m.group(2)}"
