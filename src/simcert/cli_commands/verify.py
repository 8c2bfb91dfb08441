"""`simcert verify`: the property from the options, then a proof or counterexample on the region."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..cli_common import (
    EXIT_CODES,
    _argv,
    _check_device,
    _check_twins,
    _emit_result,
    _load_model,
    _set_threads,
    _stderr_console,
)
from ..cli_region import RegionChoice, resolve_region
from ..errors import InputError


def _verify_property(eps: float | None, top1: bool, delta_top1: float | None, outputs: tuple[int, ...]) -> Any:
    from ..spec import DeltaTop1, EpsEquivalence, Top1

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
    milp_fallback: bool,
    relu_split: bool,
    json_path: str | None,
    quiet: bool,
    device: str,
    threads: int,
) -> int:
    from ..certificate import build_certificate, check_writable, write_json_atomic
    from ..search.bab import SearchOptions
    from ..verify import verify as run_verify

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
        from ..report.terminal import SearchProgress

        rows = [f"g_{k} - f_{k}" for k in prop.indices(f.output_size)] if hasattr(prop, "indices") else None
        progress = SearchProgress(_stderr_console(), rows=rows)
    options = SearchOptions(device=device, milp_fallback=milp_fallback, relu_split=relu_split)
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
