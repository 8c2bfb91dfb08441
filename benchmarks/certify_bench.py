"""Probabilistic certification benchmark: SimCert vs plain Monte Carlo (Hoeffding, Clopper-Pearson), and throughput.

Usage:  python benchmarks/certify_bench.py OUT.csv [--quick] [--samples N] [--proof-time S] [--budget S]
                                               [--confidence C] [--only certify|samples_needed|throughput]

Rows (one CSV, column `kind`):

- kind=certify: one twin, region and eps. SimCert runs with a fixed number N of sampled network evaluations
  (after `--proof-time` seconds of deterministic partitioning); plain Clopper-Pearson and plain Monte Carlo
  + Hoeffding run separately with the same N (their own samples), and SimCert's certificate also carries both
  baselines computed on the plain sample embedded in its own draws (same evaluations). All at confidence
  1 - 1e-6 by default.
- kind=samples_needed: SimCert in budget mode (anytime, checkpoint schedule) with target rate 1e-4: the samples
  it needed to certify the rate (and the fixed N its partition implies when the samples are clean), against
  the ~138,000 clean samples plain Clopper-Pearson needs.
- kind=throughput: pairs of forward passes per second on the same inputs and batch sizes, for onnxruntime
  running the two exported models alone (one thread each), simcert's sampling forward path, and the whole
  sampling loop of `certify` (input generation, evaluation, float64 rechecks, statistics).

Data: $SIMCERT_BENCHMARKS or ../shared/benchmarks. Each run takes well under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from simcert.network import Network
from simcert.network.io import load, save
from simcert.paths import benchmarks_dir
from simcert.spec import Box, acas_region
from simcert.spec.acas import ACAS_NORMALIZATION
from simcert.stats import certify, samples_needed_clopper_pearson
from simcert.stats.certify import CertifyOptions
from simcert.stats.evaluate import TwinEvaluator
from simcert.twin import Twin

F16 = ("reludiff-icse2020/nnet/ACASXU_run2a_{}_batch_2000.nnet",
       "neurodiff-ase2020/compressed_nnets/ACASXU_run2a_{}_batch_2000_16bit.nnet")
VERYDIFF = ("verydiff-release/nets/ACASXU_run2a_1_1_batch_2000.onnx",
            "verydiff-release/nets/ACASXU_run2a_1_1_batch_2000_pruned5.onnx")


def acas_domain() -> Box:
    """The whole ACAS Xu input domain, normalized with the standard constants."""
    n = ACAS_NORMALIZATION
    lo = (np.array(n["mins"]) - np.array(n["means"])) / np.array(n["ranges"])
    hi = (np.array(n["maxes"]) - np.array(n["means"])) / np.array(n["ranges"])
    return Box(lo, hi)


def cases(root: Path, quick: bool) -> list[tuple[str, str, str, float, object, object]]:
    """(twin, region name, eps, f, g, region) for every certify row."""
    out = []
    nets = ["1_1", "2_1"] if quick else ["1_1", "2_1", "3_3", "4_6", "5_9"]
    for net in nets:
        f, g = load(root / F16[0].format(net)), load(root / F16[1].format(net))
        for eps in (0.01, 0.001):
            out.append((f"acas_{net}_f16", "prop1", eps, f, g, acas_region("1", f)))
    f, g = load(root / VERYDIFF[0]), load(root / VERYDIFF[1])
    out.append(("verydiff_acas_1_1_pruned5", "prop1", 0.05, f, g, acas_region("1", f)))
    out.append(("verydiff_acas_1_1_pruned5", "acas-domain", 0.05, f, g, acas_domain()))
    return out


def certify_rows(root: Path, n: int, proof_time: float, confidence: float, quick: bool) -> list[dict]:
    rows = []
    for twin, region_name, eps, f, g, region in cases(root, quick):
        sim = certify(f, g, region, eps, confidence=confidence, samples=n, seed=0,
                      options=CertifyOptions(proof_time=proof_time))
        cp = certify(f, g, region, eps, confidence=confidence, samples=n, seed=1, method="clopper-pearson")
        hf = certify(f, g, region, eps, confidence=confidence, samples=n, seed=1, method="hoeffding")
        emb = sim.comparison or {}
        row = {
            "kind": "certify", "twin": twin, "region": region_name, "eps": eps, "confidence": confidence,
            "samples": sim.samples, "engine": sim.stats["engine"],
            "proven_fraction": sim.proven_fraction, "refuted_fraction": sim.refuted_fraction,
            "open_fraction": sim.stats["open_fraction"], "strata": sim.strata,
            "simcert_violations": sim.violations,
            "simcert_rate_upper": sim.violation_rate_upper, "simcert_rate_lower": sim.violation_rate_lower,
            "plain_violations": cp.violations,
            "cp_rate_upper": cp.violation_rate_upper, "hoeffding_rate_upper": hf.violation_rate_upper,
            "embedded_cp_rate_upper": emb.get("clopper_pearson"),
            "embedded_hoeffding_rate_upper": emb.get("hoeffding"),
            "ratio_hoeffding_over_simcert": _ratio(hf.violation_rate_upper, sim.violation_rate_upper),
            "ratio_cp_over_simcert": _ratio(cp.violation_rate_upper, sim.violation_rate_upper),
            "simcert_quantile_upper": sim.deviation_quantile_upper, "cp_quantile_upper": cp.deviation_quantile_upper,
            "simcert_mean_upper": sim.expected_deviation_upper, "bernstein_mean_upper": cp.expected_deviation_upper,
            "hoeffding_mean_upper": hf.expected_deviation_upper,
            "simcert_proof_s": round(sim.time["proof_s"], 2), "simcert_total_s": round(sim.time["total_s"], 2),
            "plain_total_s": round(cp.time["total_s"], 2),
        }
        rows.append(row)
        print(f"{twin} {region_name} eps={eps}: simcert {sim.violation_rate_upper:.3g} "
              f"(proven {sim.proven_fraction:.4f}) | CP {cp.violation_rate_upper:.3g} | "
              f"Hoeffding {hf.violation_rate_upper:.3g}  [{sim.time['total_s']:.1f} s]", file=sys.stderr)
    return rows


def samples_needed_rows(root: Path, budget: float, confidence: float, quick: bool) -> list[dict]:
    rows = []
    delta = 1.0 - confidence
    cp_needed = samples_needed_clopper_pearson(1e-4, delta)
    nets = [("2_1", 0.01), ("3_3", 0.01)] if quick else [("2_1", 0.01), ("3_3", 0.01), ("4_6", 0.01), ("2_1", 0.001)]
    for net, eps in nets:
        f, g = load(root / F16[0].format(net)), load(root / F16[1].format(net))
        r = certify(f, g, acas_region("1", f), eps, confidence=confidence, rate=1e-4, budget=budget, seed=0)
        rows.append({
            "kind": "samples_needed", "twin": f"acas_{net}_f16", "region": "prop1", "eps": eps,
            "confidence": confidence, "rate": 1e-4, "verdict": r.verdict, "samples": r.samples,
            "fixed_samples_needed": r.stats["samples_needed_if_clean"], "cp_samples_needed": cp_needed,
            "ratio_cp_over_simcert": _ratio(cp_needed, max(r.samples, 1)),
            "proven_fraction": r.proven_fraction, "open_fraction": r.stats["open_fraction"],
            "simcert_rate_upper": r.violation_rate_upper, "delta_used": r.delta_used,
            "simcert_proof_s": round(r.time["proof_s"], 2), "simcert_total_s": round(r.time["total_s"], 2),
        })
        print(f"acas_{net}_f16 eps={eps}: {r.verdict} with {r.samples} samples (fixed-N plan: "
              f"{r.stats['samples_needed_if_clean']}; CP needs {cp_needed}); "
              f"proven {r.proven_fraction:.4f}  [{r.time['total_s']:.1f} s]", file=sys.stderr)
    return rows


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def _ort_sessions(f, g, tmp: str):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    twin = Twin(f, g)
    out = []
    for name, net in (("f", twin.f), ("g", twin.g)):
        batched = Network(net.layers, net.input_shape, name=net.name)   # no source meta: a batched [N, n] input
        path = save(batched, os.path.join(tmp, f"{name}.onnx"))
        out.append(ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"]))
    return out


def _rate(fn, x, reps: int) -> float:
    """Calls per second times rows, best of 3 rounds (the machine may be shared)."""
    fn(x)
    best = 0.0
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(reps):
            fn(x)
        best = max(best, reps * x.shape[0] / (time.perf_counter() - t0))
    return best


def throughput_rows(root: Path, quick: bool) -> list[dict]:
    rows = []
    pairs = [("acas_1_1_f16", load(root / F16[0].format("1_1")), load(root / F16[1].format("1_1"))),
             ("verydiff_acas_1_1_pruned5", load(root / VERYDIFF[0]), load(root / VERYDIFF[1]))]
    with tempfile.TemporaryDirectory() as tmp:
        for twin, f, g in pairs:
            region = acas_region("1", f)
            sessions = _ort_sessions(f, g, tmp)
            ev = TwinEvaluator(f, g, tuple(range(5)), 0.01)
            for bs in (4096, 65536):
                x = np.random.default_rng(0).uniform(region.lower, region.upper, (bs, 5)).astype(np.float32)
                xt = torch.from_numpy(x)
                reps = max(3, (100_000 if quick else 400_000) // bs)
                names = [s.get_inputs()[0].name for s in sessions]
                ort_rate = _rate(lambda a: [s.run(None, {nm: a}) for s, nm in zip(sessions, names)], x, reps)
                fast = ev._fast
                with torch.no_grad():
                    if fast is not None:
                        torch_rate = _rate(lambda a: (fast[0].forward(a), fast[1].forward(a)), xt, reps)
                    else:
                        torch_rate = _rate(lambda a: (ev._f.forward(a), ev._g.forward(a)), xt, reps)
                loop_rate = max(
                    certify(f, g, region, 0.01, samples=bs * reps, batch_size=bs, method="clopper-pearson",
                            seed=k).time["samples_per_s"]
                    for k in range(3)
                )
                rows.append({
                    "kind": "throughput", "twin": twin, "batch_size": bs,
                    "ort_pairs_per_s": round(ort_rate), "simcert_forward_pairs_per_s": round(torch_rate),
                    "certify_loop_samples_per_s": round(loop_rate),
                    "forward_vs_ort": round(torch_rate / ort_rate, 3), "loop_vs_ort": round(loop_rate / ort_rate, 3),
                })
                print(f"{twin} batch {bs}: ort {ort_rate:.0f}/s, simcert forward {torch_rate:.0f}/s, "
                      f"certify loop {loop_rate:.0f}/s", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="CSV file to write")
    ap.add_argument("--quick", action="store_true", help="fewer twins, shorter throughput runs")
    ap.add_argument("--samples", type=int, default=200_000, help="network evaluations per method (default 200000)")
    ap.add_argument("--proof-time", type=float, default=10.0, help="seconds of deterministic partitioning")
    ap.add_argument("--confidence", type=float, default=1 - 1e-6)
    ap.add_argument("--budget", type=float, default=30.0, help="seconds per anytime (samples-needed) run")
    ap.add_argument("--only", choices=["certify", "samples_needed", "throughput"], action="append",
                    help="run only these row kinds (repeatable)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    root = benchmarks_dir()
    if root is None:
        print("benchmark data not found: set SIMCERT_BENCHMARKS", file=sys.stderr)
        return 2
    kinds = set(args.only or ["certify", "samples_needed", "throughput"])
    rows: list[dict] = []
    if "certify" in kinds:
        rows += certify_rows(Path(root), args.samples, args.proof_time, args.confidence, args.quick)
    if "samples_needed" in kinds:
        rows += samples_needed_rows(Path(root), args.budget, args.confidence, args.quick)
    if "throughput" in kinds:
        rows += throughput_rows(Path(root), args.quick)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(args.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
