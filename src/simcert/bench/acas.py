"""ACAS Xu NeuroDiff suite: 143 eps-equivalence runs of each network against its float16 twin.

Twins: `neurodiff-ase2020/compressed_nnets/*_16bit.nnet`, re-rounded to exact float16 (the files print the
shortest decimal, see the benchmarks README). Regions: the raw-unit property boxes of METHODS.md section 7,
normalized with the .nnet parameters; target output per property. One process per worker, `threads` torch
threads each (NeuroDiff's anchor times are one run at a time on 2 threads: compare with workers=1, threads=2).
"""

from __future__ import annotations

import csv
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..compress import to_float16
from ..network.io import load
from ..paths import benchmarks_dir
from ..spec import EpsEquivalence, acas_property, acas_region, acas_suite

__all__ = ["AcasRun", "acas_pair", "run_acas_suite", "root_width_rows"]

FIELDS = ["prop", "net", "eps", "method", "result", "time_s", "boxes", "lower", "upper", "proven_fraction"]


@dataclass(frozen=True)
class AcasRun:
    prop: str
    net: str
    eps: float
    method: str = "auto"
    timeout: float = 300.0
    threads: int = 1  # torch threads of the worker running it


def acas_pair(net_id: str, root: Path | None = None):
    """(f, g) for an ACAS Xu network id like "1_1": the original and its exact float16 twin."""
    root = root or benchmarks_dir()
    if root is None:
        raise FileNotFoundError("shared benchmark data not found")
    f = load(root / f"reludiff-icse2020/nnet/ACASXU_run2a_{net_id}_batch_2000.nnet")
    g = load(root / f"neurodiff-ase2020/compressed_nnets/ACASXU_run2a_{net_id}_batch_2000_16bit.nnet")
    g16 = to_float16(g)
    g16.nnet = g.nnet
    return f, g16


def _run_one(run: AcasRun) -> dict:
    import torch

    from ..runtime import tune_allocator
    from ..verify import verify

    torch.set_num_threads(run.threads)
    tune_allocator()
    f, g = acas_pair(run.net)
    prop = acas_property(run.prop)
    region = acas_region(run.prop, f)
    t0 = time.perf_counter()
    res = verify(f, g, region, EpsEquivalence(run.eps, outputs=[prop.target_output]), method=run.method,
                 timeout=run.timeout)
    return {
        "prop": run.prop,
        "net": run.net,
        "eps": run.eps,
        "method": res.method,
        "result": res.verdict,
        "time_s": round(time.perf_counter() - t0, 4),
        "boxes": res.stats["boxes_bounded"],
        "lower": float(res.lower[0]),
        "upper": float(res.upper[0]),
        "proven_fraction": round(res.stats["proven_fraction"], 6),
    }


def run_acas_suite(
    eps: float,
    out_csv: Path,
    *,
    timeout: float = 300.0,
    workers: int = 2,
    threads: int = 1,
    method: str = "auto",
    select: Callable[[str, str], bool] | None = None,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run the suite (or the runs `select(prop, net)` keeps) and write one CSV row per run as it finishes."""
    runs = [AcasRun(p, n, eps, method, timeout, threads) for p, n in acas_suite() if select is None or select(p, n)]
    # longest first (prop 1 and the big boxes), so the workers finish together
    runs.sort(key=lambda r: (r.prop != "1", r.prop, r.net))
    out_csv = Path(out_csv)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with out_csv.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, maxtasksperchild=20) as pool:
            for row in pool.imap_unordered(_run_one, runs):
                writer.writerow(row)
                fh.flush()
                rows.append(row)
                if on_result is not None:
                    on_result(row)
    return rows


def root_width_rows(methods: Iterable[str], props: Iterable[str] = ("1", "3", "4")) -> list[dict]:
    """Root-box bound width of g_t - f_t per engine (no search), and CROWN on f and g separately subtracted."""
    import torch

    from ..bounds import ENGINES
    from ..twin import Twin

    torch.set_num_threads(1)
    rows = []
    for prop_name, net in acas_suite():
        if prop_name not in props:
            continue
        f, g = acas_pair(net)
        twin = Twin(f, g)
        prop = acas_property(prop_name)
        box = acas_region(prop_name, f)
        lo, hi = box.to_torch(torch.float64)
        lo, hi = lo[None], hi[None]
        m = twin.output_size
        e = torch.zeros(1, m, dtype=torch.float64)
        e[0, prop.target_output] = 1.0
        xs = box.sample(20000, np.random.default_rng(0))
        d = (g(xs) - f(xs))[:, prop.target_output]
        row = {"prop": prop_name, "net": net, "sampled_width": float(d.max() - d.min())}
        for name in methods:
            t0 = time.perf_counter()
            b = ENGINES[name](twin, lo, hi, -e, e)
            row[f"{name}_width"] = float(b.upper[0, 0] - b.lower[0, 0])
            row[f"{name}_time_s"] = round(time.perf_counter() - t0, 4)
        # separate CROWN bounds of f_t and g_t, subtracted (what a product network without twin structure gets)
        zero = torch.zeros_like(e)
        bf = ENGINES["crown"](twin, lo, hi, e, zero)
        bg = ENGINES["crown"](twin, lo, hi, zero, e)
        row["crown_separate_width"] = float((bg.upper - bf.lower) - (bg.lower - bf.upper))
        rows.append(row)
    return rows
