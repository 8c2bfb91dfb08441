"""`simcert certify`: a probabilistic certificate that the twins agree on the region."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..cli_common import EXIT_CODES, _argv, _check_twins, _emit_result, _load_model, _set_threads, _stderr_console
from ..cli_region import RegionChoice, resolve_region
from ..errors import InputError


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
        from ..stats.certify import certify as run_certify
    except ImportError:
        raise InputError("simcert certify is not available yet") from None
    from ..certificate import build_certificate, check_writable, write_json_atomic
    from ..spec import EpsEquivalence, Top1

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
        from ..report.terminal import CertifyProgressView

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
