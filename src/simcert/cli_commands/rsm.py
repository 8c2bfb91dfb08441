"""`simcert rsm`: relative safety margins and local implication g => f, on a region or a data set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from ..cli_common import EXIT_CODES, _argv, _check_twins, _load_model, _set_threads
from ..cli_region import _region_choice, resolve_region
from ..errors import InputError


def _rsm_body(**kw: Any) -> int:
    """Local implication g => f is the property: exit 0 when proven, 1 when refuted by a confirmed witness,
    3 when undecided. With --inputs, exit 0 when it is proven on every sample."""
    from ..certificate import build_certificate, check_writable, dumps, write_json_atomic
    from ..rsm import rsm as run_rsm
    from ..rsm import rsm_dataset

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
