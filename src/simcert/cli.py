"""The `simcert` command line (DESIGN.md "Contracts").

Commands: verify, certify, rsm, compress, info, report, bench, demo. Exit codes, for every command:
0 the property holds / the certificate was issued, 1 violated (a confirmed counterexample), 2 bad input or
usage (one line `simcert: error: ...` on stderr, no traceback), 3 unknown (timeout, budget, inconclusive),
4 an internal error (a bug; `SIMCERT_DEBUG=1` shows the traceback).

Each command parses its options, then calls a small `_<command>_body` function that does the work; the
renderers live in `simcert.report.terminal`. Output: results go to stdout (a rich summary on a terminal,
plain `key: value` lines when stdout is piped, nothing but the JSON with `--json -`); progress goes to
stderr, only when stderr is a terminal and `--quiet` is not given.
"""

from __future__ import annotations

import os
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import click
import numpy as np

from . import __version__
from .errors import InputError
from .runtime import tune_allocator
from .verify import METHODS

__all__ = [
    "main",
    "cli",
    "EXIT_CODES",
    "RegionChoice",
    "resolve_region",
    "render_cli_docs",
    "write_cli_docs",
]

EXIT_CODES = {"holds": 0, "violated": 1, "unknown": 3}
EXIT_USAGE = 2
EXIT_INTERNAL = 4
COMMAND_ORDER = ("verify", "certify", "rsm", "compress", "info", "report", "bench", "demo")
COMPRESS_TARGETS = ("float16", "bfloat16", "int16", "int8", "int4")
CERTIFY_METHODS = ("clopper-pearson", "hoeffding", "bernstein", "simcert")
DOCS_WIDTH = 100


# ------------------------------------------------------------------------------------------ helpers


def _stdout_console() -> Any:
    from rich.console import Console

    return Console(file=sys.stdout, highlight=False)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(file=sys.stderr, highlight=False)


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(int(threads))


def _check_device(device: str) -> str:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: no CUDA device is available on this machine")
    return device


def _load_model(path: str) -> Any:
    from .network.io import load

    return load(path)


def _check_twins(f: Any, g: Any, ref: str, twin: str) -> None:
    if f.input_size != g.input_size:
        raise InputError(
            f"the twins read different inputs: {ref} has {f.input_size} inputs, {twin} has {g.input_size}"
        )
    if f.output_size != g.output_size:
        raise InputError(
            f"the twins have different output sizes: {ref} has {f.output_size}, {twin} has {g.output_size}"
        )


def _argv(ctx: click.Context) -> list[str]:
    obj = ctx.find_root().obj
    return list(obj.get("argv", [])) if isinstance(obj, dict) else []


def _emit_result(d: dict[str, Any], json_path: str | None, quiet: bool, title: str) -> None:
    """Result to stdout: nothing with --quiet or --json -, rich on a terminal, plain lines on a pipe."""
    if quiet or json_path == "-":
        return
    from .report.terminal import plain_result, render_result

    if sys.stdout.isatty():
        render_result(_stdout_console(), d, title=title)
    else:
        click.echo(plain_result(d))


# ------------------------------------------------------------------------------------------ regions


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


def _json_option(what: str = "the certificate") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "json_path", metavar="FILE", help=f"Write {what} as JSON here ('-' = stdout).")


def _quiet_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--quiet", "-q", is_flag=True, help="No progress and no result summary (exit code only).")(fn)


def _threads_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--threads", type=click.IntRange(min=1), default=1, show_default=True, metavar="N", help="torch CPU threads."
    )(fn)


# ------------------------------------------------------------------------------------------ the group


class _OrderedGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [c for c in COMMAND_ORDER if c in self.commands] + sorted(set(self.commands) - set(COMMAND_ORDER))


@click.group(cls=_OrderedGroup)
@click.version_option(__version__, prog_name="simcert")
def cli() -> None:
    """Certify that a compressed network g behaves like its original f.

    Exit codes: 0 holds / certificate issued, 1 violated, 2 bad input or usage, 3 unknown
    (timeout, budget, inconclusive), 4 internal error.
    """


# ------------------------------------------------------------------------------------------ verify


@cli.command()
@click.argument("ref", metavar="REF")
@click.argument("twin", metavar="TWIN")
@region_options
@click.option("--eps", type=float, metavar="E", help="eps-equivalence: |g_k(x) - f_k(x)| <= E.")
@click.option("--top1", is_flag=True, help="Top-1 equivalence: argmax g = argmax f.")
@click.option("--delta-top1", type=float, metavar="D", help="delta-top-1: where softmax(f) >= D, argmax g = argmax f.")
@click.option("--output", "outputs", type=int, multiple=True, metavar="K", help="Output index for --eps (repeatable).")
@click.option(
    "--method",
    type=click.Choice(list(METHODS)),
    default="auto",
    show_default=True,
    help="Bounding engine inside the branch and bound.",
)
@click.option("--timeout", type=float, default=60.0, show_default=True, metavar="S", help="Time limit in seconds.")
@_json_option()
@_quiet_option
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="torch device.")
@_threads_option
@click.pass_context
def verify(ctx: click.Context, **kw: Any) -> int:
    """Prove a property of the twin pair REF, TWIN on a region, or find a counterexample.

    REGION is one of --vnnlib FILE | --lower CSV --upper CSV | --center CSV --radius R [--clip LO,HI] |
    --acas-prop N.
    """
    rc = _region_choice(kw)
    return _verify_body(ctx, rc, **kw)


def _verify_property(eps: float | None, top1: bool, delta_top1: float | None, outputs: tuple[int, ...]) -> Any:
    from .spec import DeltaTop1, EpsEquivalence, Top1

    given = sum([eps is not None, bool(top1), delta_top1 is not None])
    if given != 1:
        raise InputError("give exactly one property: --eps E, --top1 or --delta-top1 D")
    if eps is not None:
        return EpsEquivalence(eps, outputs=list(outputs) if outputs else None)
    if outputs:
        raise InputError("--output applies to --eps only")
    return Top1() if top1 else DeltaTop1(delta_top1)


def _verify_body(
    ctx: click.Context,
    rc: RegionChoice,
    ref: str,
    twin: str,
    eps: float | None,
    top1: bool,
    delta_top1: float | None,
    outputs: tuple[int, ...],
    method: str,
    timeout: float,
    json_path: str | None,
    quiet: bool,
    device: str,
    threads: int,
) -> int:
    from .certificate import build_certificate, check_writable, write_json_atomic
    from .search.bab import SearchOptions
    from .verify import verify as run_verify

    _set_threads(threads)
    _check_device(device)
    if not (timeout > 0 and np.isfinite(timeout)):
        raise InputError(f"--timeout must be a positive number of seconds, got {timeout}")
    if json_path is not None:
        check_writable(json_path)
    _verify_property(eps, top1, delta_top1, outputs)  # option errors before loading anything
    f, g = _load_model(ref), _load_model(twin)
    _check_twins(f, g, ref, twin)
    box, source, default_outputs = resolve_region(rc, f, g)
    if eps is not None and not outputs and default_outputs is not None:
        outputs = default_outputs
    prop = _verify_property(eps, top1, delta_top1, outputs if eps is not None else ())
    if hasattr(prop, "indices"):
        prop.indices(f.output_size)  # output index range check: exit 2 before the search
    progress = None
    if not quiet and sys.stderr.isatty():
        from .report.terminal import SearchProgress

        rows = [f"g_{k} - f_{k}" for k in prop.indices(f.output_size)] if hasattr(prop, "indices") else None
        progress = SearchProgress(_stderr_console(), rows=rows)
    options = SearchOptions(device=device)
    if progress is not None:
        with progress:
            res = run_verify(f, g, box, prop, method=method, timeout=timeout, options=options, progress=progress)
    else:
        res = run_verify(f, g, box, prop, method=method, timeout=timeout, options=options)
    d = res.to_dict()
    d["method"] = {**d["method"], "requested": method, "timeout_s": timeout, "device": device, "threads": threads}
    if json_path is not None:
        cert = build_certificate(
            "verify", [(ref, f), (twin, g)], box, prop.to_json(), d, extra={"argv": _argv(ctx), "region_source": source}
        )
        write_json_atomic(json_path, cert)
    _emit_result(d, json_path, quiet, title=f"simcert verify {Path(ref).name} vs {Path(twin).name}")
    return EXIT_CODES.get(res.verdict, 3)


# ------------------------------------------------------------------------------------------ certify


@cli.command()
@click.argument("ref", metavar="REF")
@click.argument("twin", metavar="TWIN")
@region_options
@click.option("--eps", type=float, metavar="E", help="Deviation bound |g_k(x) - f_k(x)| <= E.")
@click.option("--top1", is_flag=True, help="Certify the top-1 disagreement rate (argmax g != argmax f) instead.")
@click.option(
    "--confidence", type=float, default=0.999, show_default=True, metavar="C", help="Confidence level 1 - alpha."
)
@click.option("--rate", type=float, metavar="P", help="Target upper bound on the violation (or disagreement) rate.")
@click.option("--samples", type=int, metavar="N", help="Number of samples (exclusive with --budget).")
@click.option("--budget", type=float, metavar="S", help="Time budget in seconds (exclusive with --samples).")
@click.option(
    "--method", type=click.Choice(CERTIFY_METHODS), default="simcert", show_default=True, help="Statistical method."
)
@click.option(
    "--distribution", default="uniform", show_default=True, metavar="uniform|gauss:SIGMA", help="Input distribution."
)
@click.option("--output", "outputs", type=int, multiple=True, metavar="K", help="Output index (repeatable).")
@click.option("--seed", type=int, default=0, show_default=True, metavar="N", help="Random seed.")
@_json_option()
@_quiet_option
@_threads_option
@click.pass_context
def certify(ctx: click.Context, **kw: Any) -> int:
    """Issue a probabilistic certificate that |g - f| <= E (or, with --top1, argmax g = argmax f) on a
    region: the violation rate bounded with the given confidence.

    REGION is one of --vnnlib FILE | --lower CSV --upper CSV | --center CSV --radius R [--clip LO,HI] |
    --acas-prop N.
    """
    rc = _region_choice(kw)
    return _certify_body(ctx, rc, **kw)


def _certify_body(
    ctx: click.Context,
    rc: RegionChoice,
    ref: str,
    twin: str,
    eps: float | None,
    top1: bool,
    confidence: float,
    rate: float | None,
    samples: int | None,
    budget: float | None,
    method: str,
    distribution: str,
    outputs: tuple[int, ...],
    seed: int,
    json_path: str | None,
    quiet: bool,
    threads: int,
) -> int:
    try:
        from .stats.certify import certify as run_certify
    except ImportError:
        raise InputError("simcert certify is not available yet") from None
    from .certificate import build_certificate, check_writable, write_json_atomic
    from .spec import EpsEquivalence, Top1

    _set_threads(threads)
    if samples is not None and budget is not None:
        raise InputError("give at most one of --samples N and --budget S")
    if (eps is None) == (not top1):
        raise InputError("give exactly one property: --eps E or --top1")
    if top1 and outputs:
        raise InputError("--output applies to --eps only")
    if json_path is not None:
        check_writable(json_path)
    if eps is not None:
        EpsEquivalence(eps)  # eps > 0 and finite, checked before loading
    f, g = _load_model(ref), _load_model(twin)
    _check_twins(f, g, ref, twin)
    box, source, default_outputs = resolve_region(rc, f, g)
    outs: list[int] | None = None
    prop: Any = Top1()
    if eps is not None:
        outs = list(outputs) if outputs else (list(default_outputs) if default_outputs else None)
        prop = EpsEquivalence(eps, outputs=outs)
        prop.indices(f.output_size)
    view = None
    if not quiet and sys.stderr.isatty():
        from .report.terminal import CertifyProgressView

        view = CertifyProgressView(_stderr_console())
    kwargs: dict[str, Any] = dict(top1=top1, confidence=confidence, rate=rate, samples=samples, budget=budget,
                                  distribution=distribution, method=method, outputs=outs, seed=seed, progress=view)
    if view is not None:
        with view:
            res = run_certify(f, g, box, eps, **kwargs)
    else:
        res = run_certify(f, g, box, eps, **kwargs)
    d = res.to_dict()
    if json_path is not None:
        cert = build_certificate(
            "certify", [(ref, f), (twin, g)], box, d["property"] if top1 else prop.to_json(), d,
            extra={"argv": _argv(ctx), "region_source": source},
        )
        write_json_atomic(json_path, cert)
    _emit_result(d, json_path, quiet, title=f"simcert certify {Path(ref).name} vs {Path(twin).name}")
    return EXIT_CODES.get(str(res.verdict), 3)


# ------------------------------------------------------------------------------------------ rsm


@cli.command()
@click.argument("ref", metavar="REF")
@click.argument("twin", metavar="TWIN")
@region_options
@click.option("--label", type=int, metavar="C", help="Class whose relative safety margins are bounded.")
@click.option("--inputs", metavar="CSV", help="Data set (one input per line) for per-input regions of --radius R.")
@click.option("--scale", type=float, default=1.0, show_default=True, metavar="S",
              help="Divide --inputs values by S (e.g. 255 for 0-255 pixels).")
@click.option("--method", type=click.Choice(list(METHODS)), default="auto", show_default=True, help="Bound engine.")
@click.option("--timeout", type=float, default=30.0, show_default=True, metavar="S", help="Time limit (per sample with --inputs).")
@_json_option()
@_quiet_option
@_threads_option
def rsm(**kw: Any) -> int:
    """Relative safety margins (f_c - f_j) - (g_c - g_j) and local implication g => f.

    REGION is one of --vnnlib FILE | --lower CSV --upper CSV | --center CSV --radius R [--clip LO,HI] |
    --acas-prop N, or --inputs CSV --radius R for a data set.
    """
    return _rsm_body(**kw)


def _not_available(command: str) -> int:
    raise InputError(f"simcert {command} is not available yet")


def _rsm_body(**kw: Any) -> int:
    """Local implication g => f is the property: exit 0 when proven, 1 when refuted by a confirmed witness,
    3 when undecided. With --inputs, exit 0 when it is proven on every sample."""
    from .certificate import build_certificate, check_writable, dumps, write_json_atomic
    from .rsm import rsm as run_rsm
    from .rsm import rsm_dataset

    ctx = click.get_current_context()
    rc = _region_choice(kw)
    _set_threads(kw["threads"])
    ref, twin, json_path, quiet = kw["ref"], kw["twin"], kw["json_path"], kw["quiet"]
    if not (kw["timeout"] > 0 and np.isfinite(kw["timeout"])):
        raise InputError(f"--timeout must be a positive number of seconds, got {kw['timeout']}")
    if json_path is not None:
        check_writable(json_path)
    f, g = _load_model(ref), _load_model(twin)
    _check_twins(f, g, ref, twin)
    if rc.inputs is not None:
        if rc.radius is None or not rc.radius >= 0:
            raise InputError("--inputs needs a non-negative --radius")
        data = np.atleast_2d(np.loadtxt(rc.inputs, delimiter=",", ndmin=2)) if Path(rc.inputs).is_file() else None
        if data is None:
            raise InputError(f"input file not found: {rc.inputs}")
        labels = None
        if data.shape[1] == f.input_size + 1:  # label column first, as in the shared test CSVs
            labels, data = data[:, 0].astype(int), data[:, 1:]
        elif data.shape[1] != f.input_size:
            raise InputError(f"--inputs rows have {data.shape[1]} values, model expects {f.input_size}")
        if not kw["scale"] > 0:
            raise InputError(f"--scale must be positive, got {kw['scale']}")
        clip = tuple(float(v) for v in rc.clip.split(",")) if rc.clip else None
        res = rsm_dataset(f, g, data / kw["scale"], labels, rc.radius, clip, method=kw["method"],
                          time_per_sample=kw["timeout"])
        d = res.to_dict()
        all_proven = res.summary.get("g=>f_proven", 0.0) == 1.0
        code = 0 if all_proven else 3
        if json_path is not None:
            write_json_atomic(json_path, {"command": "rsm", "argv": _argv(ctx), **d})
        if not quiet:
            click.echo(dumps(res.summary))
        return code
    box, source, _ = resolve_region(rc, f, g)
    res = run_rsm(f, g, box, kw["label"], method=kw["method"], timeout=kw["timeout"])
    d = res.to_dict()
    verdict = "holds" if res.status["g=>f"] == "proven" else ("violated" if res.status["g=>f"] == "refuted" else "unknown")
    d["verdict"] = verdict
    d["rsm_verdict"] = res.verdict
    if json_path is not None:
        cert = build_certificate("rsm", [(ref, f), (twin, g)], box, {"type": "local-implication g=>f", "label": res.label},
                                 d, extra={"argv": _argv(ctx), "region_source": source})
        write_json_atomic(json_path, cert)
    if not quiet:
        click.echo(f"verdict: {verdict} (RSM: {res.verdict}; label {res.label})")
        for j, lo, hi in zip(res.others, res.lower, res.upper):
            click.echo(f"Pi_{res.label},{j}: [{lo:.6g}, {hi:.6g}]")
    return EXIT_CODES.get(verdict, 3)


# ------------------------------------------------------------------------------------------ compress


@cli.command()
@click.argument("model", metavar="MODEL")
@click.option("--to", "target", type=click.Choice(COMPRESS_TARGETS), help="Weight format of the twin.")
@click.option("--per-channel", is_flag=True, help="One integer scale per output channel/neuron.")
@click.option("--asymmetric", is_flag=True, help="Asymmetric integer quantization (with a zero point).")
@click.option("--activations", type=int, metavar="BITS", help="Quantize activations after every ReLU to BITS bits.")
@click.option("--calibration", metavar="CSV", help="Calibration inputs for --activations (one input per line); "
              "default: 1,000 uniform samples of the model's input domain when it records one (.nnet, ACAS Xu).")
@click.option(
    "--quantizer", type=click.Choice(["simcert", "onnxruntime"]), default="simcert", show_default=True,
    help="Who quantizes for --activations: simcert's calibrated fake-quantizers, or ONNX Runtime's "
    "quantize_static (weights --to int8/int4, .onnx output).",
)
@click.option("--qformat", type=click.Choice(["qdq", "qoperator"]), default="qdq", show_default=True,
              help="ONNX form written by --quantizer onnxruntime.")
@click.option("--prune", type=float, metavar="FRACTION", help="Fraction of weights (or neurons) to prune, in [0, 1).")
@click.option("--structured", is_flag=True, help="Remove whole neurons/channels (smallest L1 norm) instead.")
@click.option(
    "--prune-scope", type=click.Choice(["global", "layer"]), default="global", show_default=True,
    help="Unstructured pruning threshold over all layers or per layer.",
)
@click.option("-o", "--out", "out", required=True, metavar="OUT", help="Output file (.onnx or .nnet).")
def compress(**kw: Any) -> int:
    """Build the compressed twin of MODEL and save it to OUT (.onnx or .nnet).

    ONNX weights are written in float64, so the saved twin is exactly the one built (float32 with
    --activations, which the QuantizeLinear form requires).
    """
    return _compress_body(**kw)


def _domain_samples(net: Any, model: str, n: int = 1000) -> np.ndarray:
    """Calibration inputs drawn uniformly (seed 0) from the model's recorded input domain."""
    if net.input_domain is None:
        raise InputError(f"{model}: no input domain recorded; give calibration inputs with --calibration CSV")
    lo, hi = (np.asarray(a, dtype=np.float64).reshape(-1) for a in net.input_domain)
    return np.random.default_rng(0).uniform(lo, hi, size=(n, lo.size))


def _ort_compress(model: str, net: Any, target: str | None, per_channel: bool, asymmetric: bool,
                  activations: int, calib: np.ndarray, qformat: str, out: str) -> int:
    """`--quantizer onnxruntime`: ONNX Runtime's quantize_static writes the fully quantized twin."""
    from .compress.ort_quant import ort_quantize
    from .network import load
    from .report.terminal import compress_summary_line

    if target not in ("int8", "int4"):
        raise InputError("--quantizer onnxruntime quantizes weights to --to int8 or --to int4")
    if asymmetric:
        raise InputError("--quantizer onnxruntime quantizes weights symmetrically; drop --asymmetric")
    import logging

    logging.disable(logging.WARNING)  # ONNX Runtime's quantizer advises pre-processing on the root logger
    try:
        ort_quantize(net, out, calib, weight_bits=int(target[3:]), activation_bits=activations,
                     per_channel=per_channel, fmt=qformat)
    finally:
        logging.disable(logging.NOTSET)
    twin = load(out)
    what = f"onnxruntime {qformat} {target}{' per-channel' if per_channel else ''} {activations}-bit-activation"
    click.echo(compress_summary_line(model, out, what, net.summary(), twin.summary()))
    return 0


def _read_calibration(path: str, n_inputs: int) -> np.ndarray:
    from .spec import read_vector

    flat = read_vector(path)
    if flat.size % n_inputs:
        raise InputError(f"{path}: {flat.size} values is not a whole number of inputs of size {n_inputs}")
    return flat.reshape(-1, n_inputs)


def _compress_body(
    model: str,
    target: str | None,
    per_channel: bool,
    asymmetric: bool,
    activations: int | None,
    calibration: str | None,
    quantizer: str,
    qformat: str,
    prune: float | None,
    structured: bool,
    prune_scope: str,
    out: str,
) -> int:
    from .certificate import check_writable
    from .compress import compress as run_compress
    from .network.io import MODEL_SUFFIXES, save
    from .report.terminal import compress_summary_line

    suffix = Path(out).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise InputError(f"{out}: unknown output format {suffix or '(no extension)'!r}; expected .onnx or .nnet")
    check_writable(out)
    if calibration is not None and activations is None:
        raise InputError("--calibration needs --activations BITS")
    if quantizer == "onnxruntime" and (activations is None or suffix != ".onnx" or prune is not None):
        raise InputError("--quantizer onnxruntime needs --activations BITS, an .onnx output and no pruning")
    net = _load_model(model)
    calib = _read_calibration(calibration, net.input_size) if calibration is not None else None
    if calib is None and activations is not None:
        calib = _domain_samples(net, model)
    if quantizer == "onnxruntime":
        return _ort_compress(model, net, target, per_channel, asymmetric, activations, calib, qformat, out)
    twin = run_compress(
        net, to=target, per_channel=per_channel, symmetric=not asymmetric, activations=activations,
        calibration=calib, prune=prune, structured=structured, prune_scope=prune_scope,  # type: ignore[arg-type]
    )
    # ONNX initializers in float64 keep every twin weight exact; the QuantizeLinear writer needs float32
    onnx_dtype = np.float32 if activations is not None else np.float64
    save(twin, out, dtype=onnx_dtype if suffix == ".onnx" else None)
    parts = []
    if prune is not None:
        parts.append(f"{prune:g}-{'structured' if structured else 'magnitude'}-pruned")
    if target is not None:
        parts.append(target + (" per-channel" if per_channel else "") + (" asymmetric" if asymmetric else ""))
    if activations is not None:
        parts.append(f"{activations}-bit-activation")
    click.echo(compress_summary_line(model, out, " ".join(parts), net.summary(), twin.summary()))
    return 0


# ------------------------------------------------------------------------------------------ info


@cli.command()
@click.argument("model", metavar="MODEL")
@_json_option("the model description")
def info(**kw: Any) -> int:
    """Describe MODEL: layers, shapes, parameter count, input domain, sparsity, distinct weight values,
    float16-exactness and activation quantization."""
    return _info_body(**kw)


def _info_body(model: str, json_path: str | None) -> int:
    from .certificate import check_writable, model_record, to_strict_json, write_json_atomic
    from .report.terminal import render_model_info

    if json_path is not None:
        check_writable(json_path)
    net = _load_model(model)
    domain = None if net.input_domain is None else [np.asarray(a).reshape(-1).tolist() for a in net.input_domain]
    raw = None
    if net.nnet is not None:
        raw = [np.asarray(net.nnet.input_min).tolist(), np.asarray(net.nnet.input_max).tolist()]
    if json_path is not None:
        record = {
            "simcert_version": __version__,
            "command": "info",
            "model": model_record(model, net),
            "shapes": [list(s) for s in net.shapes],
            "input_domain": domain,
            "raw_input_domain": raw,
        }
        write_json_atomic(json_path, to_strict_json(record))
    if json_path != "-":
        render_model_info(_stdout_console(), model, net.summary(), net.shapes, domain, raw)
    return 0


# ------------------------------------------------------------------------------------------ report, bench


@cli.command()
@click.argument("cert", metavar="CERT.json")
@click.option("--html", metavar="OUT.html", help="Write an HTML report with plots.")
def report(**kw: Any) -> int:
    """Render a certificate (terminal summary, or an HTML report with --html)."""
    return _report_body(**kw)


def _report_body(cert: str, html: str | None) -> int:
    from .certificate import check_writable
    from .report.html import load_certificate, write_report

    if html is not None:
        if html == "-":
            raise InputError("--html needs a file name ('-' is not supported)")
        check_writable(html)
    data = load_certificate(cert)
    if html is None:
        _emit_result(data, None, False, title=f"simcert report: {cert}")
        return 0
    write_report(html, [(Path(cert).name, data)], title=f"simcert report: {Path(cert).name}",
                 base_dir=Path(cert).resolve().parent)
    click.echo(f"wrote {html}")
    return 0


@cli.command()
@click.argument("suite", metavar="SUITE")
@click.option("--out", metavar="CSV", help="Write the results as CSV (default docs/bench-data/SUITE.csv).")
@click.option("--method", "methods", multiple=True, metavar="NAME", help="Method to run (repeatable).")
@click.option("--timeout", type=float, metavar="S", help="Time limit per instance in seconds.")
@click.option("--limit", type=int, metavar="N", help="Run only the first N instances.")
@click.option("--eps", type=float, default=0.05, show_default=True, metavar="E", help="eps of the ACAS Xu suite.")
@click.option("--workers", type=int, default=2, show_default=True, metavar="N", help="Worker processes (ACAS Xu).")
def bench(**kw: Any) -> int:
    """Run a benchmark suite and write CSV results.

    SUITE is one of acas, acas-root, mnist-global, mnist-kpixel, har, verydiff, student, cnn, quantized,
    or render (regenerate docs/benchmarks.md from the CSVs in --out, default docs/bench-data).
    """
    return _bench_body(**kw)


def _bench_body(suite: str, out: str | None, methods: tuple[str, ...], timeout: float | None, limit: int | None,
                eps: float, workers: int) -> int:
    import torch

    from .bench.runner import run_suite

    torch.set_num_threads(1)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    path = run_suite(suite, out, methods=methods, timeout=timeout, limit=limit, eps=eps, workers=workers,
                     on_row=lambda row: click.echo(", ".join(f"{k}={v}" for k, v in row.items()), err=True))
    click.echo(str(path))
    return 0


# ------------------------------------------------------------------------------------------ demo


@cli.command()
@click.option("--out", "out_dir", default="simcert-demo", show_default=True, metavar="DIR", help="Output folder.")
@click.option("--retrain", is_flag=True, help="Train the two demo networks instead of loading the shipped ones.")
@_quiet_option
def demo(**kw: Any) -> int:
    """Run the whole story on two small shipped networks (a 2-input control network and an 8x8 digits
    classifier): build float16, int8, fully quantized and pruned twins, prove or refute eps-equivalence and
    top-1, certify probabilistically where the worst case fails, compute relative safety margins, and write
    models, JSON certificates and an HTML report (index.html) to DIR."""
    return _demo_body(**kw)


def _demo_body(out_dir: str, retrain: bool, quiet: bool) -> int:
    from rich.table import Table

    from .demo import run_demo
    from .report.terminal import VERDICT_STYLES

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    show_progress = not quiet and sys.stderr.isatty()
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                      console=_stderr_console(), transient=True) as bar:
            task = bar.add_task("simcert demo", total=1)

            def progress(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total)

            result = run_demo(out, retrain=retrain, progress=progress)
    else:
        result = run_demo(out, retrain=retrain)
    if quiet:
        return 0
    console = _stdout_console()
    table = Table(title="simcert demo: does each compressed twin g behave like its original f?", title_justify="left")
    for col in ("model", "twin", "check", "verdict", "what we know", "time"):
        table.add_column(col, justify="right" if col == "time" else "left")
    for c in result.checks:
        table.add_row(c.model, c.twin, c.check, f"[{VERDICT_STYLES.get(c.verdict, 'bold')}]{c.verdict}[/]",
                      c.detail, f"{c.time_s:.2f} s")
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}", soft_wrap=True)
    console.print(f"models and certificates (*.cert.json) are in {out}/ ({result.time_s:.0f} s)", soft_wrap=True)
    console.print(f"report: {result.report}", soft_wrap=True)
    console.print(f"next: simcert report {out / 'control' / 'int8-a8.eps.cert.json'} --html report.html",
                  soft_wrap=True)
    console.print(
        f"      simcert verify {out / 'control' / 'reference.onnx'} {out / 'control' / 'int8.onnx'} "
        f"--lower {out / 'control' / 'region_lower.csv'} --upper {out / 'control' / 'region_upper.csv'} --eps 0.02",
        soft_wrap=True,
    )
    return 0


# ------------------------------------------------------------------------------------------ entry point


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _error(message: str) -> None:
    click.echo(f"simcert: error: {_one_line(message)}", err=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on `argv` (default sys.argv[1:]) and return the exit code (the console script exits with it).

    Bad input of any kind (InputError, click usage errors, unreadable files) prints one line
    `simcert: error: <message>` on stderr and returns 2, never a traceback.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    tune_allocator()  # a process-wide setting: fine for the command line, which owns the process
    try:
        rv = cli.main(args=args, prog_name="simcert", standalone_mode=False, obj={"argv": ["simcert", *args]})
    except click.exceptions.NoArgsIsHelpError as exc:  # `simcert` alone: show the help
        click.echo(exc.ctx.get_help() if exc.ctx is not None else str(exc), err=True)
        return EXIT_USAGE
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("simcert: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        _error(exc.format_message() + hint)
        return EXIT_USAGE
    except InputError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except OSError as exc:
        name = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        _error(f"{name}{exc.strerror or exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        click.echo("simcert: interrupted", err=True)
        return 130
    except Exception as exc:  # a bug: say so in one line, traceback on request
        if os.environ.get("SIMCERT_DEBUG"):
            traceback.print_exc()
        _error(f"internal error ({type(exc).__name__}: {exc}); this is a bug, set SIMCERT_DEBUG=1 for the traceback")
        return EXIT_INTERNAL
    return int(rv or 0)


# ------------------------------------------------------------------------------------------ docs


def render_cli_docs(width: int = DOCS_WIDTH) -> str:
    """docs/cli.md: the `--help` of `simcert` and of every command, at a fixed width (so it is reproducible)."""
    parts = [
        "# simcert command line",
        "",
        "Generated from the CLI by `simcert.cli.write_cli_docs()`; `tests/cli/test_docs.py` checks it is in sync.",
        "",
        "Exit codes (every command): **0** holds / certificate issued, **1** violated (confirmed counterexample),",
        "**2** bad input or usage (one line `simcert: error: ...` on stderr), **3** unknown (timeout, budget,",
        "inconclusive), **4** internal error (a bug). See [certificate.md](certificate.md) for the `--json` format.",
        "",
    ]
    root = click.Context(cli, info_name="simcert", terminal_width=width, max_content_width=width)
    parts += ["## simcert", "", "```text", cli.get_help(root).rstrip(), "```", ""]
    for name in cli.list_commands(root):
        cmd = cli.commands[name]
        sub = click.Context(cmd, info_name=name, parent=root, terminal_width=width, max_content_width=width)
        parts += [f"## simcert {name}", "", "```text", cmd.get_help(sub).rstrip(), "```", ""]
    return "\n".join(parts)


def write_cli_docs(path: str | os.PathLike | None = None) -> Path:
    """Write `render_cli_docs()` to docs/cli.md of the source tree (or `path`)."""
    target = Path(path) if path is not None else Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    target.write_text(render_cli_docs())
    return target


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
