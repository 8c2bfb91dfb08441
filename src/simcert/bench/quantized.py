"""Fully quantized twins made by ONNX Runtime's quantizer, against weight-only twins of the same bit width.

Twins (`TWINS`) of each reference network f:
- "ort-int8": `ort_quantize` QDQ, int8 symmetric weights with 7-bit codes (|q| <= 64, its default, so that ORT's
  x86 kernels without VNNI cannot saturate), uint8 activations (w8/a8), min/max calibration;
- "ort-int4": `ort_quantize` QDQ, int4 weights, uint4 activations (w4/a4);
- "w-int8", "w-int4": `quantize_weights` (weights only, per tensor, activations stay float).
Calibration: ACAS Xu, 500 uniform points of the normalized input domain ((min - mean) / range ..
(max - mean) / range of the .nnet header, seed 0); MNIST 3x100, test images 10..99 (the bound and verify
rows use images 0..images-1, so calibration and evaluation images are disjoint).

Rows (`quantized_suite`), one CSV schema (`COLUMNS`), by `kind`:
- "bound": ACAS Xu, every net, twin, property box in `BOUND_PROPS` and engine: certified [lower, upper] of
  g_t - f_t from one engine pass (no split); `sampled_*`: range of g_t - f_t over 10,000 uniform points of
  the box (float32-representable, simcert's float64 forward pass of both models); `ort_sampled_*`: the same
  with g run by onnxruntime itself on the written model (ORT twins only). `sound` = 1 iff the certified
  bound contains both sampled ranges (simcert's engines model ORT's integer rounding with `slack_steps`).
- "verify": ACAS Xu, `simcert.verify` (method auto) of eps-equivalence on the target output, eps =
  factor x (sampled max |g_t - f_t|), factor in `EPS_FACTORS`, per-run timeout. "violated" rows carry the
  confirmed counterexample's deviation (`cex_deviation`) and whether onnxruntime's own execution of g
  confirms it too (`cex_ort_confirmed`).
- "certify": SimCert violation-rate certificates (confidence 1 - 1e-6, fixed time budget) for runs whose
  verify verdict was not "holds": certified upper (and lower) bound of Pr[|g_t - f_t| > eps] under the
  uniform distribution on the box; `lower`/`upper` there are the deterministic range of |g_t - f_t| on the
  box that certify proves first.
- "mnist-bound", "mnist-verify": MNIST 3x100, L-inf balls r/255 (clipped to [0, 1]) around test images:
  g_label - f_label per engine (one pass) with sampled ranges (1,000 points and the centre), and `verify`
  at eps = 1 on the label output.

`render_section(rows)` writes the docs/benchmarks.md section.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import statistics
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = ["TWINS", "BOUND_PROPS", "VERIFY_PROPS", "EPS_FACTORS", "COLUMNS", "QuantConfig", "quantized_suite",
           "row_is_sound", "render_section"]

TWINS: dict[str, dict[str, Any]] = {
    "ort-int8": {"ort": True, "weight_bits": 8, "activation_bits": 8},
    "ort-int4": {"ort": True, "weight_bits": 4, "activation_bits": 4},
    "w-int8": {"ort": False, "bits": 8},
    "w-int4": {"ort": False, "bits": 4},
}
ENGINES_USED = ("interval", "crown", "diff")
BOUND_PROPS = ("1", "3")
VERIFY_PROPS = ("1", "3")
EPS_FACTORS = (0.5, 1.5, 4.0)
CONFIDENCE = 1 - 1e-6
ACAS_SAMPLES = 10_000
MNIST_SAMPLES = 1_000
COLUMNS = ("kind", "twin", "net", "prop", "img", "radius_255", "target", "method", "eps_factor", "eps", "lower",
           "upper", "width", "sampled_lower", "sampled_upper", "ort_sampled_lower", "ort_sampled_upper", "sound",
           "result", "time_s", "boxes", "cex_deviation", "cex_ort_confirmed", "rate_upper", "rate_lower",
           "samples", "violations", "proven_fraction")
# default subset for the verify/certify rows (every 5th network; the bound rows use all 45)
VERIFY_NETS = ("1_1", "1_6", "2_2", "2_7", "3_3", "3_8", "4_4", "4_9", "5_5")
MNIST_NET = "reludiff-icse2020/nnet/mnist_relu_3_100.nnet"


@dataclass(frozen=True)
class QuantConfig:
    """What one run of the suite covers (defaults: the documented benchmark)."""

    twins: tuple[str, ...] = tuple(TWINS)
    methods: tuple[str, ...] = ENGINES_USED
    nets: tuple[str, ...] | None = None          # bound rows; None = all 45
    verify_nets: tuple[str, ...] = VERIFY_NETS
    certify_nets: tuple[str, ...] = ("1_1",)
    timeout: float = 5.0
    certify_budget: float = 6.0
    acas_samples: int = ACAS_SAMPLES
    mnist_images: int = 10
    mnist_radii: tuple[int, ...] = (1, 2)
    mnist_timeout: float = 3.0


def _row(**kw: Any) -> dict:
    return {c: kw.get(c, "") for c in COLUMNS}


def _f(v: Any) -> float:
    return float(v) if v not in ("", None) else float("nan")


def row_is_sound(row: dict, tol: float = 1e-9) -> bool:
    """The certified [lower, upper] contains the sampled ranges (simcert's and onnxruntime's), up to `tol`
    absolute plus 1e-6 relative slack for the float32 ORT outputs; rows without a bound pass."""
    if row.get("lower", "") in ("", None) or row.get("sampled_lower", "") in ("", None):
        return True
    lo, hi = _f(row["lower"]), _f(row["upper"])
    ok = lo <= _f(row["sampled_lower"]) + tol and hi >= _f(row["sampled_upper"]) - tol
    if row.get("ort_sampled_lower", "") not in ("", None):
        slo, shi = _f(row["ort_sampled_lower"]), _f(row["ort_sampled_upper"])
        rel = 1e-6 * (1 + max(abs(slo), abs(shi)))
        ok = ok and lo <= slo + tol + rel and hi >= shi - tol - rel
    return bool(ok)


# ------------------------------------------------------------------------------------------ twins


@contextmanager
def _quiet_ort():
    """ORT's quantizer logs advice on the root logger at WARNING; silence it while quantizing."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


class _OrtModel:
    """onnxruntime's own execution of a written model (one thread), float32 in, float64 out."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        self.name = self.sess.get_inputs()[0].name
        self.shape = self.sess.get_inputs()[0].shape

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x32 = np.asarray(x, dtype=np.float32)
        per = [int(d) for d in self.shape[1:]] if self.shape and not isinstance(self.shape[0], int) else None
        if per is None:  # fixed shape: one row at a time
            return np.stack([self.sess.run(None, {self.name: r.reshape(self.shape)})[0].reshape(-1) for r in x32])
        out = [self.sess.run(None, {self.name: x32[i:i + 4096].reshape(-1, *per)})[0] for i in range(0, len(x32), 4096)]
        return np.concatenate(out).reshape(len(x32), -1).astype(np.float64)


def _make_twins(f: Any, calibration: np.ndarray, names: Sequence[str], tmp: Path) -> dict[str, tuple[Any, Any]]:
    """name -> (g as a simcert Network, onnxruntime runner or None) for the requested twins."""
    from ..compress import quantize_weights
    from ..compress.ort_quant import ort_quantize
    from ..network import load

    out: dict[str, tuple[Any, Any]] = {}
    for name in names:
        spec = TWINS[name]
        if spec["ort"]:
            path = tmp / f"{name}.onnx"
            with _quiet_ort():
                ort_quantize(f, path, calibration, weight_bits=spec["weight_bits"],
                             activation_bits=spec["activation_bits"], activation_type="uint8", fmt="qdq")
            out[name] = (load(path), _OrtModel(path))
        else:
            out[name] = (quantize_weights(f, spec["bits"]), None)
    return out


def _points(lo: np.ndarray, hi: np.ndarray, n: int, seed: int) -> np.ndarray:
    """The centre and n uniform points of [lo, hi], rounded to float32 (what ORT reads) and kept in the box."""
    rng = np.random.default_rng(seed)
    pts = np.concatenate([((lo + hi) / 2)[None], rng.uniform(lo, hi, (n, lo.size))])
    pts = pts.astype(np.float32).astype(np.float64)
    return pts[np.all((pts >= lo) & (pts <= hi), axis=1)]


def _ranges(f_out: np.ndarray, g: Any, ort: Any, pts: np.ndarray, k: int) -> dict[str, Any]:
    d = g(pts)[:, k] - f_out[:, k]
    res = {"sampled_lower": float(d.min()), "sampled_upper": float(d.max())}
    if ort is not None:
        do = ort(pts)[:, k] - f_out[:, k]
        res.update(ort_sampled_lower=float(do.min()), ort_sampled_upper=float(do.max()))
    return res


def _engine_rows(kind: str, twin_name: str, f: Any, g: Any, lo: np.ndarray, hi: np.ndarray, k: int,
                 methods: Sequence[str], base: dict, samp: dict) -> Iterator[dict]:
    from ..errors import InputError, UnsupportedOpError
    from ..twin import Twin
    from .suites import _single_pass

    twin = Twin(f, g)
    for m in methods:
        try:
            low, up, sec = _single_pass(twin, m, lo, hi, k)
        except (InputError, UnsupportedOpError) as exc:
            yield _row(kind=kind, twin=twin_name, method=m, target=k, result=f"unsupported: {exc}", **base, **samp)
            continue
        r = _row(kind=kind, twin=twin_name, method=m, target=k, lower=low, upper=up, width=up - low,
                 time_s=round(sec, 4), **base, **samp)
        r["sound"] = int(row_is_sound(r))
        yield r


# ------------------------------------------------------------------------------------------ ACAS Xu


def _acas_domain(f: Any) -> tuple[np.ndarray, np.ndarray]:
    """The normalized input domain the network reads: ((min - mean) / range, (max - mean) / range)."""
    from ..spec.acas import _normalization

    mins, maxes, means, ranges = _normalization(f)
    return (mins - means) / ranges, (maxes - means) / ranges


def _verify_row(twin_name: str, f: Any, g: Any, ort: Any, box: Any, k: int, eps: float, factor: float,
                timeout: float, base: dict) -> dict:
    from ..spec import EpsEquivalence
    from ..verify import verify

    res = verify(f, g, box, EpsEquivalence(eps, outputs=[k]), method="auto", timeout=timeout)
    r = _row(kind="verify", twin=twin_name, method=res.method, target=k, eps_factor=factor, eps=eps,
             lower=float(res.lower[0]), upper=float(res.upper[0]), width=float(res.upper[0] - res.lower[0]),
             result=res.verdict, time_s=round(res.stats["time_s"], 3), boxes=res.stats["boxes_bounded"],
             proven_fraction=round(res.stats["proven_fraction"], 6), **base)
    if res.counterexample is not None:
        cx = res.counterexample
        r["cex_deviation"] = float(cx.g_out[k] - cx.f_out[k])
        if ort is not None:
            r["cex_ort_confirmed"] = int(abs(float(ort(cx.x[None])[0, k]) - float(cx.f_out[k])) > eps)
    return r


def _certify_row(twin_name: str, f: Any, g: Any, box: Any, k: int, eps: float, factor: float, budget: float,
                 base: dict) -> dict:
    from ..stats.certify import certify

    t0 = time.perf_counter()
    res = certify(f, g, box, eps, confidence=CONFIDENCE, budget=budget, outputs=[k], seed=0)
    return _row(kind="certify", twin=twin_name, method=res.method, target=k, eps_factor=factor, eps=eps,
                result=res.verdict, time_s=round(time.perf_counter() - t0, 3), rate_upper=res.violation_rate_upper,
                rate_lower=res.violation_rate_lower, samples=res.samples, violations=res.violations,
                proven_fraction=round(res.proven_fraction, 6), lower=res.deviation_range[0],
                upper=res.deviation_range[1], **base)


def _acas_net_rows(net: str, cfg: QuantConfig) -> list[dict]:
    """Bound rows for one ACAS Xu network, and verify/certify rows when it is in cfg.verify_nets."""
    import torch

    from ..spec import acas_property, acas_region
    from .acas import acas_pair

    torch.set_num_threads(1)
    f, _ = acas_pair(net)
    lo_d, hi_d = _acas_domain(f)
    calibration = np.random.default_rng(0).uniform(lo_d, hi_d, (500, 5))
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="simcert-qbench-") as d:
        twins = _make_twins(f, calibration, cfg.twins, Path(d))
        props = [p for p in dict.fromkeys(BOUND_PROPS + VERIFY_PROPS) if net in acas_property(p).networks]
        for p in props:
            prop = acas_property(p)
            k = prop.target_output
            box = acas_region(p, f)
            lo, hi = box.lower, box.upper
            pts = _points(lo, hi, cfg.acas_samples, seed=int(p) * 1000 + 1)
            f_out = f(pts)
            base = {"net": net, "prop": p}
            for name, (g, ort) in twins.items():
                samp = _ranges(f_out, g, ort, pts, k)
                if p in BOUND_PROPS:
                    rows += list(_engine_rows("bound", name, f, g, lo, hi, k, cfg.methods, base, samp))
                if p not in VERIFY_PROPS or net not in cfg.verify_nets:
                    continue
                s_max = max(abs(samp["sampled_lower"]), abs(samp["sampled_upper"]),
                            abs(samp.get("ort_sampled_lower", 0.0)), abs(samp.get("ort_sampled_upper", 0.0)))
                s_max = max(s_max, 1e-6)
                open_runs = []
                for factor in EPS_FACTORS:
                    r = _verify_row(name, f, g, ort, box, k, factor * s_max, factor, cfg.timeout, base)
                    r.update({c: samp.get(c, "") for c in ("sampled_lower", "sampled_upper", "ort_sampled_lower",
                                                          "ort_sampled_upper")})
                    r["sound"] = int(row_is_sound(r))
                    rows.append(r)
                    if r["result"] != "holds":
                        open_runs.append(factor)
                if net in cfg.certify_nets and p == VERIFY_PROPS[0]:
                    for factor in open_runs[-2:]:
                        rows.append(_certify_row(name, f, g, box, k, factor * s_max, factor, cfg.certify_budget, base))
    return rows


# ------------------------------------------------------------------------------------------ MNIST


def _mnist_rows(cfg: QuantConfig) -> list[dict]:
    """MNIST 3x100 bound and verify rows (module docstring)."""
    import torch

    from ..network.io import load
    from ..spec import Box, EpsEquivalence
    from ..verify import verify
    from .suites import _root, _test_inputs

    torch.set_num_threads(1)
    f = load(_root() / MNIST_NET)
    labels, x = _test_inputs("mnist", 255.0)
    calibration = x[10:]
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="simcert-qbench-") as d:
        twins = _make_twins(f, calibration, cfg.twins, Path(d))
        for rad in cfg.mnist_radii:
            for i in range(min(cfg.mnist_images, 10, len(labels))):
                t = int(labels[i])
                box = Box.linf(x[i], rad / 255, clip=(0.0, 1.0))
                lo, hi = box.lower, box.upper
                pts = _points(lo, hi, MNIST_SAMPLES, seed=100 * i + rad)
                f_out = f(pts)
                base = {"net": "mnist_3x100", "img": i, "radius_255": rad}
                for name, (g, ort) in twins.items():
                    samp = _ranges(f_out, g, ort, pts, t)
                    for r in _engine_rows("mnist-bound", name, f, g, lo, hi, t, cfg.methods, base, samp):
                        if r["lower"] != "":
                            r["result"] = "proven" if r["lower"] >= -1 and r["upper"] <= 1 else "open"
                        rows.append(r)
                    res = verify(f, g, box, EpsEquivalence(1.0, outputs=[t]), method="auto", timeout=cfg.mnist_timeout)
                    r = _row(kind="mnist-verify", twin=name, method=res.method, target=t, eps=1.0,
                             lower=float(res.lower[0]), upper=float(res.upper[0]),
                             width=float(res.upper[0] - res.lower[0]), result=res.verdict,
                             time_s=round(res.stats["time_s"], 3), boxes=res.stats["boxes_bounded"], **base, **samp)
                    if res.counterexample is not None:
                        cx = res.counterexample
                        r["cex_deviation"] = float(cx.g_out[t] - cx.f_out[t])
                        if ort is not None:
                            r["cex_ort_confirmed"] = int(abs(float(ort(cx.x[None])[0, t]) - float(cx.f_out[t])) > 1.0)
                    r["sound"] = int(row_is_sound(r))
                    rows.append(r)
    return rows


# ------------------------------------------------------------------------------------------ driver


def _task(job: tuple[str, str | None, QuantConfig]) -> list[dict]:
    from ..runtime import tune_allocator

    tune_allocator()  # spawned workers do not inherit the parent's setting
    kind, net, cfg = job
    return _mnist_rows(cfg) if kind == "mnist" else _acas_net_rows(str(net), cfg)


def quantized_suite(
    methods: Sequence[str] = ENGINES_USED,
    timeout: float = 5.0,
    *,
    twins: Sequence[str] = tuple(TWINS),
    nets: Sequence[str] | None = None,
    verify_nets: Sequence[str] = VERIFY_NETS,
    certify_nets: Sequence[str] = ("1_1",),
    mnist: bool = True,
    mnist_images: int = 10,
    acas_samples: int = ACAS_SAMPLES,
    certify_budget: float = 6.0,
    workers: int = 1,
) -> Iterator[dict]:
    """Rows of the module docstring. `nets`: ACAS Xu networks for the bound rows (None: all 45, () none);
    `workers` > 1 runs the networks (and MNIST) in that many processes, one torch thread each."""
    from ..errors import InputError
    from ..spec import ACAS_NETWORK_IDS

    known = ENGINES_USED + ("alpha-crown", "diff-forward")
    bad = [t for t in twins if t not in TWINS] + [m for m in methods if m not in known]
    if bad:
        raise InputError(f"unknown twin or engine {bad[0]!r}; twins: {', '.join(TWINS)}")
    if timeout <= 0:
        raise InputError(f"timeout must be positive, got {timeout}")
    cfg = QuantConfig(twins=tuple(twins), methods=tuple(methods), nets=None if nets is None else tuple(nets),
                      verify_nets=tuple(verify_nets), certify_nets=tuple(certify_nets), timeout=float(timeout),
                      certify_budget=certify_budget, acas_samples=acas_samples, mnist_images=mnist_images,
                      mnist_timeout=min(3.0, float(timeout)))
    acas_nets = list(ACAS_NETWORK_IDS) if nets is None else list(nets)
    # the long jobs first (MNIST, then the verify nets), so parallel workers finish together
    jobs: list[tuple[str, str | None, QuantConfig]] = [("mnist", None, cfg)] if mnist else []
    jobs += sorted((("acas", n, cfg) for n in acas_nets), key=lambda j: j[1] not in cfg.verify_nets)
    if workers <= 1:
        for job in jobs:
            yield from _task(job)
        return
    with mp.get_context("spawn").Pool(workers, maxtasksperchild=10) as pool:
        for rows in pool.imap(_task, jobs):
            yield from rows


# ------------------------------------------------------------------------------------------ render


def _med(v: list[float]) -> str:
    return f"{statistics.median(v):.3g}" if v else "-"


def render_section(rows: list[dict]) -> list[str]:
    """The "Fully quantized twins" section of docs/benchmarks.md from the CSV rows."""
    out = ["## Fully quantized twins (ONNX Runtime's quantizer)", "",
           "`simcert bench quantized --timeout 5 --workers 2 --out docs/bench-data/quantized.csv`: twins of each "
           "network made by onnxruntime's `quantize_static` (QDQ; `ort-int8`: int8 weights with 7-bit codes (onnxruntime's `reduce_range`, "
           "`ort_quantize`'s default: ORT's x86 kernels without VNNI saturate with full 8-bit codes, see "
           "docs/quantization.md) / uint8 activations, "
           "`ort-int4`: int4 weights / uint4 activations; min/max calibration on 500 uniform points of the ACAS Xu "
           "input domain, on MNIST test images 10-99) and weight-only twins of the same bit width (`w-int8`, "
           "`w-int4`: `quantize_weights`, per tensor, float activations). Target: g_t - f_t on the property's "
           "target output. Sampled values come from 10,000 uniform points per ACAS box (1,000 per MNIST ball), "
           "with g run by simcert and, for ORT twins, by onnxruntime itself.", ""]
    if not rows:
        return out + ["_No results yet (run the command above)._", ""]
    kinds = defaultdict(list)
    for r in rows:
        kinds[r["kind"]].append(r)
    checked = [r for r in rows if r["kind"] in ("bound", "verify", "mnist-bound", "mnist-verify")]
    sound = sum(row_is_sound(r) for r in checked)
    out.append(f"Soundness check: **{sound} of {len(checked)}** certified bounds contain every sampled value "
               "(simcert's and onnxruntime's execution of g).")
    out.append("")
    twins = list(dict.fromkeys(r["twin"] for r in rows))
    bound = [r for r in kinds["bound"] if r["lower"] != ""]
    if bound:
        methods = list(dict.fromkeys(r["method"] for r in bound))
        props = sorted({r["prop"] for r in bound}, key=lambda p: (len(p), p))
        nets = len({r["net"] for r in bound})
        out += [f"ACAS Xu, {nets} networks, root box of each property, one engine pass (no split): median "
                "certified width of g_t - f_t per engine, median sampled width (a lower bound on the true width) "
                "and median sampled max |g_t - f_t|; mean time per pass.", "",
                "| twin | prop | runs | " + " | ".join(f"{m} width" for m in methods)
                + " | sampled width | sampled max abs | " + " | ".join(f"{m} s" for m in methods) + " |",
                "|---|---|---|" + "---|" * (2 * len(methods) + 2)]
        for t in twins:
            for p in props:
                rs = [r for r in bound if r["twin"] == t and r["prop"] == p]
                if not rs:
                    continue
                one = {r["net"]: r for r in rs}
                w = [_med([_f(r["width"]) for r in rs if r["method"] == m]) for m in methods]
                tm = [f"{statistics.mean(_f(r['time_s']) for r in rs if r['method'] == m):.3f}" for m in methods]
                sw = _med([_f(r["sampled_upper"]) - _f(r["sampled_lower"]) for r in one.values()])
                sm = _med([max(abs(_f(r["sampled_lower"])), abs(_f(r["sampled_upper"]))) for r in one.values()])
                out.append(f"| {t} | {p} | {len(one)} | " + " | ".join(w) + f" | {sw} | {sm} | "
                           + " | ".join(tm) + " |")
        out.append("")
        if "crown" in methods and "diff" in methods:
            width = {(r["twin"], r["net"], r["prop"], r["method"]): _f(r["width"]) for r in bound}
            for t in twins:
                keys = [k for k in width if k[0] == t and k[3] == "diff" and (t, k[1], k[2], "crown") in width]
                if keys:
                    n = sum(width[(t, k[1], k[2], "crown")] < width[k] for k in keys)
                    out.append(f"- `{t}`: CROWN on the twin graph is tighter than the differential engine on "
                               f"{n} of {len(keys)} boxes.")
            out.append("")
    ver = kinds["verify"]
    if ver:
        nets = sorted({r["net"] for r in ver})
        unk = [_f(r["time_s"]) for r in ver if r["result"] == "unknown"]
        limit = "no run timed out"
        if unk:
            limit = (f"unknown runs stopped at the per-run limit (`--timeout`; median time of unknown runs "
                     f"{statistics.median(unk):.1f} s, longest {max(unk):.1f} s on the loaded machine)")
        methods = ", ".join(sorted({r["method"] for r in ver}))
        out += [f"eps-equivalence on the target output, `simcert.verify` (method auto, which chose {methods}) on "
                f"{len(nets)} networks ({', '.join(nets)}), eps = factor x the sampled max |g_t - f_t| of that twin "
                f"and box; {limit}. proven / falsified (counterexample confirmed in float64 on both models) / "
                "unknown, and total time:", "",
                "| twin | prop | " + " | ".join(f"eps = {fa:g}x" for fa in EPS_FACTORS) + " | time (s) |",
                "|---|---|" + "---|" * (len(EPS_FACTORS) + 1)]
        for t in twins:
            for p in sorted({r["prop"] for r in ver}, key=lambda p: (len(p), p)):
                rs = [r for r in ver if r["twin"] == t and r["prop"] == p]
                if not rs:
                    continue
                cells = []
                for fa in EPS_FACTORS:
                    sub = [r for r in rs if _f(r["eps_factor"]) == fa]
                    c = defaultdict(int)
                    for r in sub:
                        c[r["result"]] += 1
                    cells.append(f"{c['holds']} / {c['violated']} / {c['unknown']}")
                out.append(f"| {t} | {p} | " + " | ".join(cells) + f" | {sum(_f(r['time_s']) for r in rs):.1f} |")
        cex = [r for r in ver if r["result"] == "violated"]
        ort_c = [r for r in cex if r["cex_ort_confirmed"] != ""]
        out += ["", f"Counterexamples: {len(cex)}, each confirmed in float64 on both models by `verify`; for the "
                f"ORT twins onnxruntime's own execution confirms {sum(int(r['cex_ort_confirmed']) for r in ort_c)} "
                f"of {len(ort_c)}.", ""]
    cert = kinds["certify"]
    if cert:
        out += ["SimCert violation-rate certificates where the worst case was not proven (uniform distribution on "
                f"the box, confidence 1 - 1e-6, {max(_f(r['time_s']) for r in cert):.0f} s budget each): "
                "certified bounds on Pr[|g_t - f_t| > eps].", "",
                "| twin | net | prop | eps (factor) | verify | rate upper | rate lower | samples | violations | "
                "proven mass |", "|---|---|---|---|---|---|---|---|---|---|"]
        vmap = {(r["twin"], r["net"], r["prop"], r["eps_factor"]): r["result"] for r in ver}
        for r in cert:
            out.append(f"| {r['twin']} | {r['net']} | {r['prop']} | {_f(r['eps']):.3g} ({_f(r['eps_factor']):g}x) | "
                       f"{vmap.get((r['twin'], r['net'], r['prop'], r['eps_factor']), '-')} | "
                       f"{_f(r['rate_upper']):.3g} | {_f(r['rate_lower']):.3g} | {int(_f(r['samples'])):,} | "
                       f"{r['violations']} | {_f(r['proven_fraction']):.3g} |")
        out.append("")
    mb = [r for r in kinds["mnist-bound"] if r["lower"] != ""]
    mv = kinds["mnist-verify"]
    if mb:
        methods = list(dict.fromkeys(r["method"] for r in mb))
        radii = sorted({int(_f(r["radius_255"])) for r in mb})
        n_img = len({r["img"] for r in mb})
        out += [f"MNIST 3x100, L-inf balls r/255 around {n_img} test images: median certified width of "
                "g_label - f_label per engine (one pass), median sampled width, and balls proven at eps = 1 "
                "(one pass of the best engine; `verify`, method auto, limit min(3 s, `--timeout`)).", "",
                "| twin | r | " + " | ".join(f"{m} width" for m in methods)
                + " | sampled width | proven (best pass) | proven (verify) | falsified (verify) |",
                "|---|---|" + "---|" * (len(methods) + 4)]
        for t in twins:
            for rad in radii:
                rs = [r for r in mb if r["twin"] == t and int(_f(r["radius_255"])) == rad]
                if not rs:
                    continue
                w = [_med([_f(r["width"]) for r in rs if r["method"] == m]) for m in methods]
                one = {r["img"]: r for r in rs}
                sw = _med([_f(r["sampled_upper"]) - _f(r["sampled_lower"]) for r in one.values()])
                best = len({r["img"] for r in rs if r["result"] == "proven"})
                vs = [r for r in mv if r["twin"] == t and int(_f(r["radius_255"])) == rad]
                out.append(f"| {t} | {rad} | " + " | ".join(w) + f" | {sw} | {best}/{len(one)} | "
                           f"{sum(r['result'] == 'holds' for r in vs)}/{len(vs)} | "
                           f"{sum(r['result'] == 'violated' for r in vs)}/{len(vs)} |")
        out.append("")
    out += _comparison(rows)
    return out


def _comparison(rows: list[dict]) -> list[str]:
    """One sentence per bit width comparing weight-only and fully quantized twins (from the data)."""
    per_net: dict[tuple[str, str], float] = {}
    proven: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if r["kind"] == "bound" and r["prop"] == "1":
            per_net[(r["twin"], r["net"])] = max(abs(_f(r["sampled_lower"])), abs(_f(r["sampled_upper"])))
        if r["kind"] == "verify":
            proven[r["twin"]].append(int(r["result"] == "holds"))
    dev: dict[str, list[float]] = defaultdict(list)
    for (twin, _), v in per_net.items():
        dev[twin].append(v)
    parts = []
    for bits in ("int8", "int4"):
        a, b = f"w-{bits}", f"ort-{bits}"
        if dev.get(a) and dev.get(b):
            s = (f"{bits}: the sampled max |g_0 - f_0| on the property 1 box has median "
                 f"{statistics.median(dev[a]):.3g} "
                 f"for the weight-only twin and {statistics.median(dev[b]):.3g} for the fully quantized one")
            if proven.get(a) and proven.get(b):
                s += (f"; verify proves {sum(proven[a])} of {len(proven[a])} (weight-only) against "
                      f"{sum(proven[b])} of {len(proven[b])} (fully quantized) eps-equivalence runs")
            parts.append(s + ".")
    mv: dict[str, list[int]] = defaultdict(list)
    for r in rows:
        if r["kind"] == "mnist-verify":
            mv[r["twin"]].append(int(r["result"] == "holds"))
    for bits in ("int8", "int4"):
        a, b = f"w-{bits}", f"ort-{bits}"
        if mv.get(a) and mv.get(b):
            parts.append(f"MNIST {bits}: eps = 1 proven on {sum(mv[a])} of {len(mv[a])} balls (weight-only) and "
                         f"{sum(mv[b])} of {len(mv[b])} (fully quantized).")
    if not parts:
        return []
    return ["Weight-only vs fully quantized at the same bit width: " + " ".join(parts), ""]
