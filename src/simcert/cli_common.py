"""Helpers shared by the `simcert` commands: exit codes, consoles, threads and device, model loading, the
twin check, the recorded argv and the result summary on stdout."""

from __future__ import annotations

import sys
from typing import Any

import click

from .errors import InputError

EXIT_CODES = {"holds": 0, "violated": 1, "unknown": 3}


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
    """The model at `path`; its loader's warnings (e.g. a runtime that may not follow the ONNX semantics) go
    to stderr, one line each."""
    from .network.io import load

    net = load(path)
    for warning in net.meta.get("warnings", ()):
        click.echo(f"warning: {path}: {warning}", err=True)
    return net


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


def _not_available(command: str) -> int:
    raise InputError(f"simcert {command} is not available yet")
