"""The REGION options of `simcert verify`, `certify` and `rsm`: what was given (`RegionChoice`), the shared
click options, and `resolve_region`, which turns them into an input box for the reference model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import click
import numpy as np

from .errors import InputError


@dataclass
class RegionChoice:
    """The region options as given on the command line (exactly one kind must be set)."""

    vnnlib: str | None = None
    lower: str | None = None
    upper: str | None = None
    center: str | None = None
    radius: float | None = None
    clip: str | None = None
    acas_prop: str | None = None
    inputs: str | None = None  # rsm over a data set (--inputs CSV --radius R)


REGION_HELP = "--vnnlib FILE | --lower CSV --upper CSV | --center CSV --radius R [--clip LO,HI] | --acas-prop N"


def _parse_clip(text: str) -> tuple[float, float]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2:
        raise InputError(f"--clip must be LO,HI (two numbers), got {text!r}")
    try:
        lo, hi = float(parts[0]), float(parts[1])
    except ValueError:
        raise InputError(f"--clip must be LO,HI (two numbers), got {text!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError(f"--clip bounds must be finite, got {text!r}")
    if lo > hi:
        raise InputError(f"--clip range is empty: {lo} > {hi}")
    return lo, hi


def _same_normalization(f: Any, g: Any) -> bool:
    if f.nnet is None or g.nnet is None:
        return True
    return all(
        np.array_equal(np.asarray(getattr(f.nnet, k)), np.asarray(getattr(g.nnet, k)))
        for k in ("input_min", "input_max", "input_mean", "input_range")
    )


def resolve_region(rc: RegionChoice, f: Any, g: Any | None = None) -> tuple[Any, dict[str, Any], tuple[int, ...] | None]:
    """(box, source description, default outputs) for the region options; InputError unless exactly one
    region kind is given and it fits the model's input size.

    `--acas-prop N` normalizes the raw-unit property box with the reference's .nnet parameters (the
    standard ACAS Xu constants for models without them) and defaults the checked output to the
    property's target output.
    """
    from .certificate import file_sha256
    from .spec import Box, acas_property, acas_region, read_vector, read_vnnlib

    kinds = [
        name
        for name, given in (
            ("--vnnlib", rc.vnnlib is not None),
            ("--lower/--upper", rc.lower is not None or rc.upper is not None),
            ("--center/--radius", rc.center is not None),
            ("--acas-prop", rc.acas_prop is not None),
        )
        if given
    ]
    if len(kinds) != 1:
        what = "no region given" if not kinds else f"conflicting regions ({', '.join(kinds)})"
        raise InputError(f"{what}: give exactly one of {REGION_HELP}")
    kind = kinds[0]
    if rc.clip is not None and kind != "--center/--radius":
        raise InputError("--clip applies to --center/--radius regions only")
    if rc.radius is not None and kind != "--center/--radius":
        raise InputError("--radius applies to --center regions only")
    default_outputs: tuple[int, ...] | None = None
    source: dict[str, Any]
    if kind == "--vnnlib":
        assert rc.vnnlib is not None
        spec = read_vnnlib(rc.vnnlib, n_inputs=f.input_size)
        box = spec.box
        source = {"kind": "vnnlib", "path": rc.vnnlib, "sha256": file_sha256(rc.vnnlib),
                  "output_constraints": "ignored (the property comes from the command line)"}
    elif kind == "--lower/--upper":
        if rc.lower is None or rc.upper is None:
            raise InputError("--lower and --upper must be given together")
        box = Box.from_csv(rc.lower, rc.upper)
        source = {"kind": "csv", "lower": rc.lower, "upper": rc.upper}
    elif kind == "--center/--radius":
        assert rc.center is not None
        if rc.radius is None:
            raise InputError("--center needs --radius")
        center = read_vector(rc.center)
        clip = _parse_clip(rc.clip) if rc.clip is not None else None
        box = Box.linf(center, rc.radius, clip=clip)
        source = {"kind": "linf", "center": rc.center, "radius": rc.radius, "clip": list(clip) if clip else None}
    else:
        assert rc.acas_prop is not None
        if g is not None and not _same_normalization(f, g):
            raise InputError("--acas-prop: the twins' .nnet input normalizations differ; give the region explicitly")
        prop = acas_property(rc.acas_prop)
        box = acas_region(prop, f)
        default_outputs = (prop.target_output,)
        source = {
            "kind": "acas-property",
            "property": prop.name,
            "raw_lower": prop.lower_raw.tolist(),
            "raw_upper": prop.upper_raw.tolist(),
            "target_output": prop.target_output,
            "normalization": "reference .nnet header" if f.nnet is not None else "standard ACAS Xu constants",
        }
    box.check_model(f)
    return box, source, default_outputs


def region_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The shared REGION options (DESIGN.md): exactly one of them is required."""
    opts = [
        click.option("--vnnlib", metavar="FILE", help="Input box from a VNN-LIB file (its output part is ignored)."),
        click.option("--lower", metavar="CSV", help="Lower bounds of the input box (file of numbers)."),
        click.option("--upper", metavar="CSV", help="Upper bounds of the input box (file of numbers)."),
        click.option("--center", metavar="CSV", help="Center of an L-inf ball (file of numbers)."),
        click.option("--radius", type=float, metavar="R", help="L-inf radius around --center."),
        click.option("--clip", metavar="LO,HI", help="Clip the --center/--radius ball to [LO, HI]."),
        click.option(
            "--acas-prop",
            metavar="N",
            help="ACAS Xu property box (1, 3, 4, 5, 6a, 6b, 7..15) in raw units, normalized with the "
            "reference's .nnet parameters; also sets the default --output to the property's target.",
        ),
    ]
    for opt in reversed(opts):
        fn = opt(fn)
    return fn


def _region_choice(kw: dict[str, Any]) -> RegionChoice:
    return RegionChoice(
        vnnlib=kw.pop("vnnlib", None),
        lower=kw.pop("lower", None),
        upper=kw.pop("upper", None),
        center=kw.pop("center", None),
        radius=kw.pop("radius", None),
        clip=kw.pop("clip", None),
        acas_prop=kw.pop("acas_prop", None),
        inputs=kw.pop("inputs", None),
    )
