"""`simcert bench SUITE`: run a suite, write its CSV; `simcert bench render` regenerates docs/benchmarks.md."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError

__all__ = ["run_suite", "SUITE_NAMES"]

SUITE_NAMES = ("acas", "acas-root", "mnist-global", "mnist-kpixel", "har", "verydiff", "student", "cnn", "quantized",
               "render")


def _write_rows(rows, out: Path, on_row: Callable[[dict], None] | None) -> int:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    n = 0
    writer = None
    with tmp.open("w", newline="") as fh:
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(fh, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            fh.flush()
            n += 1
            if on_row is not None:
                on_row(row)
    tmp.replace(out)
    return n


def run_suite(
    suite: str,
    out: str | None = None,
    *,
    methods: tuple[str, ...] = (),
    timeout: float | None = None,
    limit: int | None = None,
    eps: float = 0.05,
    workers: int = 2,
    threads: int = 1,
    on_row: Callable[[dict], None] | None = None,
) -> Path:
    """Run one suite and return the CSV path (docs/bench-data/<suite>.csv by default)."""
    from ..paths import benchmarks_dir

    if suite not in SUITE_NAMES:
        raise InputError(f"unknown benchmark suite {suite!r}; choose one of {', '.join(SUITE_NAMES)}")
    if suite == "render":
        from .render import render_benchmarks

        return render_benchmarks(Path(out) if out else Path("docs/bench-data"))
    if suite != "cnn" and benchmarks_dir() is None:  # the CNN suite trains and tests on generated digits
        raise InputError("benchmark data not found: set SIMCERT_BENCHMARKS or put it in ../shared/benchmarks")
    default_name = f"acas_eps{eps:g}.csv" if suite == "acas" else f"{suite.replace('-', '_')}.csv"
    path = Path(out) if out else Path("docs/bench-data") / default_name
    kw: dict[str, Any] = {}
    if suite == "acas":
        from .acas import run_acas_suite

        select = None
        if limit is not None:
            from ..spec import acas_suite

            keep = set(acas_suite()[:limit])
            select = lambda p, n: (p, n) in keep  # noqa: E731
        run_acas_suite(eps, path, timeout=timeout or 300.0, workers=workers,
                       threads=threads, method=methods[0] if methods else "auto", select=select, on_result=on_row)
        return path
    if suite == "acas-root":
        from .acas import root_width_rows

        rows = root_width_rows(methods or ("interval", "crown", "alpha-crown", "diff-forward", "diff"))
    else:
        from .suites import SUITES

        if methods:
            kw["methods"] = methods
        if timeout is not None and suite in ("verydiff", "student", "cnn", "quantized"):
            kw["timeout"] = timeout
        if suite == "quantized":
            kw["workers"] = workers
        rows = SUITES[suite](**kw)
    if limit is not None:
        rows = itertools.islice(rows, limit)
    _write_rows(rows, path, on_row)
    return path
