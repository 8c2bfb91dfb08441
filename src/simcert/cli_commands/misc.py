"""`simcert info`, `report`, `bench` and `demo`: describe a model, render a certificate, run a benchmark
suite, run the demo."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np

from .. import __version__
from ..cli_common import _emit_result, _load_model, _stderr_console, _stdout_console
from ..errors import InputError


def _info_body(model: str, json_path: str | None) -> int:
    from ..certificate import check_writable, model_record, to_strict_json, write_json_atomic
    from ..report.terminal import render_model_info

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


def _report_body(cert: str, html: str | None) -> int:
    from ..certificate import check_writable
    from ..report.html import load_certificate, write_report

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


def _bench_body(suite: str, out: str | None, methods: tuple[str, ...], timeout: float | None, limit: int | None,
                eps: float, workers: int, threads: int) -> int:
    import torch

    from ..bench.runner import run_suite

    torch.set_num_threads(1)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    if threads < 1:
        raise InputError(f"--threads must be at least 1, got {threads}")
    path = run_suite(suite, out, methods=methods, timeout=timeout, limit=limit, eps=eps, workers=workers,
                     threads=threads,
                     on_row=lambda row: click.echo(", ".join(f"{k}={v}" for k, v in row.items()), err=True))
    click.echo(str(path))
    return 0


def _demo_body(out_dir: str, retrain: bool, quiet: bool) -> int:
    from rich.table import Table

    from ..demo import run_demo
    from ..report.terminal import VERDICT_STYLES

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
