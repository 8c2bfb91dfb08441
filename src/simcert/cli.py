"""The `simcert` command line (DESIGN.md "Contracts").

Commands: verify, certify, rsm, compress, info, report, bench, demo. Exit codes, for every command:
0 the property holds / the certificate was issued, 1 violated (a confirmed counterexample), 2 bad input or
usage (one line `simcert: error: ...` on stderr, no traceback), 3 unknown (timeout, budget, inconclusive),
4 an internal error (a bug; `SIMCERT_DEBUG=1` shows the traceback).

Each command parses its options, then calls a small `_<command>_body` function that does the work
(`simcert.cli_commands`; shared helpers in `simcert.cli_common`, the REGION options in `simcert.cli_region`);
the renderers live in `simcert.report.terminal`. Output: results go to stdout (a rich summary on a terminal,
plain `key: value` lines when stdout is piped, nothing but the JSON with `--json -`); progress goes to
stderr, only when stderr is a terminal and `--quiet` is not given.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

import click

from . import __version__
from .cli_commands.certify import _certify_body
from .cli_commands.compress import _compress_body
from .cli_commands.misc import _bench_body, _demo_body, _info_body, _report_body
from .cli_commands.rsm import _rsm_body
from .cli_commands.verify import _verify_body
from .cli_common import EXIT_CODES
from .cli_region import RegionChoice, _region_choice, region_options, resolve_region
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

EXIT_USAGE = 2
EXIT_INTERNAL = 4
COMMAND_ORDER = ("verify", "certify", "rsm", "compress", "info", "report", "bench", "demo")
COMPRESS_TARGETS = ("float16", "bfloat16", "int16", "int8", "int4")
CERTIFY_METHODS = ("clopper-pearson", "hoeffding", "bernstein", "simcert")
DOCS_WIDTH = 100


# ------------------------------------------------------------------------------------------ options


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
@click.option("--milp-fallback", is_flag=True,
              help="Regions with more than 16 free inputs: after half the time, bound the open rows by exact MILP.")
@click.option("--relu-split/--no-relu-split", default=True, show_default=True,
              help="Regions with more than 16 free inputs (differential engine): after half the time, split "
                   "ReLU phases (beta multipliers) on the open rows.")
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
@click.option("--full-range", is_flag=True,
              help="--quantizer onnxruntime --to int8: use all 8-bit weight codes (default: 7-bit codes, which "
              "ONNX Runtime's int8 kernels on x86 CPUs without VNNI compute without int16 saturation).")
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


# ------------------------------------------------------------------------------------------ info


@cli.command()
@click.argument("model", metavar="MODEL")
@_json_option("the model description")
def info(**kw: Any) -> int:
    """Describe MODEL: layers, shapes, parameter count, input domain, sparsity, distinct weight values,
    float16-exactness and activation quantization."""
    return _info_body(**kw)


# ------------------------------------------------------------------------------------------ report, bench


@cli.command()
@click.argument("cert", metavar="CERT.json")
@click.option("--html", metavar="OUT.html", help="Write an HTML report with plots.")
def report(**kw: Any) -> int:
    """Render a certificate (terminal summary, or an HTML report with --html)."""
    return _report_body(**kw)


@cli.command()
@click.argument("suite", metavar="SUITE")
@click.option("--out", metavar="CSV", help="Write the results as CSV (default docs/bench-data/SUITE.csv).")
@click.option("--method", "methods", multiple=True, metavar="NAME", help="Method to run (repeatable).")
@click.option("--timeout", type=float, metavar="S", help="Time limit per instance in seconds.")
@click.option("--limit", type=int, metavar="N", help="Run only the first N instances.")
@click.option("--eps", type=float, default=0.05, show_default=True, metavar="E", help="eps of the ACAS Xu suite.")
@click.option("--workers", type=int, default=2, show_default=True, metavar="N", help="Worker processes (ACAS Xu).")
@click.option("--threads", type=int, default=1, show_default=True, metavar="N",
              help="Torch threads per worker (ACAS Xu).")
def bench(**kw: Any) -> int:
    """Run a benchmark suite and write CSV results.

    SUITE is one of acas, acas-root, mnist-global, mnist-kpixel, har, verydiff, student, cnn, quantized,
    or render (regenerate docs/benchmarks.md from the CSVs in --out, default docs/bench-data).
    """
    return _bench_body(**kw)


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
