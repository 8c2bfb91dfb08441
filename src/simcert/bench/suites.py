"""Benchmark suites besides ACAS Xu: MNIST, HAR, VeryDiff pruned twins, a distilled student.

Each suite is a generator of CSV rows (dicts); `simcert bench SUITE --out FILE.csv` writes them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch

from ..bounds import ENGINES
from ..compress import to_float16
from ..network.io import load
from ..paths import benchmarks_dir
from ..spec import Box, DeltaTop1, EpsEquivalence, Top1, read_vnnlib
from ..twin import Twin
from ..verify import verify
from .cnn import cnn_suite
from .kpixel import mnist_kpixel
from .quantized import quantized_suite

__all__ = ["mnist_global", "har_box", "verydiff_pairs", "student_pair", "SUITES"]


def _root() -> Path:
    root = benchmarks_dir()
    if root is None:
        raise FileNotFoundError("shared benchmark data not found (set SIMCERT_BENCHMARKS)")
    return root


def _test_inputs(name: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    data = np.loadtxt(_root() / f"reludiff-icse2020/test_inputs/{name}_test.csv", delimiter=",")
    return data[:, 0].astype(int), data[:, 1:] / scale


def _single_pass(twin: Twin, engine: str, lower: np.ndarray, upper: np.ndarray, target: int) -> tuple[float, float, float]:
    m = twin.output_size
    e = torch.zeros(1, m, dtype=torch.float64)
    e[0, target] = 1.0
    t0 = time.perf_counter()
    with torch.no_grad() if engine != "alpha-crown" else torch.enable_grad():
        b = ENGINES[engine](twin, torch.tensor(lower)[None], torch.tensor(upper)[None], -e, e)
    return float(b.lower[0, 0]), float(b.upper[0, 0]), time.perf_counter() - t0


def mnist_global(
    methods: Sequence[str] = ("crown", "diff-forward", "diff"), images: int = 100, perturbations=range(1, 9)
) -> Iterator[dict]:
    """MNIST 3x100 vs its float16 twin, global +-P/255 on every pixel, eps = 1 on the label output, one pass, on
    the 100 test images (the anchors cover the first 20; the page reports both medians)."""
    root = _root()
    f = load(root / "reludiff-icse2020/nnet/mnist_relu_3_100.nnet")
    g = to_float16(load(root / "neurodiff-ase2020/compressed_nnets/mnist_relu_3_100_16bit.nnet"))
    twin = Twin(f, g)
    labels, x = _test_inputs("mnist", 255.0)
    for p in perturbations:
        for i in range(min(images, len(labels))):
            lo, hi = np.clip(x[i] - p / 255, 0, 1), np.clip(x[i] + p / 255, 0, 1)
            for method in methods:
                low, up, t = _single_pass(twin, method, lo, hi, labels[i])
                yield {"P": p, "img": i, "method": method, "lower": low, "upper": up, "width": up - low,
                       "proven_eps1": int(low >= -1 and up <= 1), "time_s": round(t, 4)}


def har_box(methods: Sequence[str] = ("crown", "diff-forward", "diff"), inputs: int = 100) -> Iterator[dict]:
    """HAR 561-500-6 vs its float16 twin: box +-0.1 around each of the 100 test vectors (clipped to [-1, 1]),
    eps 0.25."""
    root = _root()
    f = load(root / "reludiff-icse2020/nnet/HAR.nnet")
    g = to_float16(load(root / "nnequiv-experiments/benchmarks/HAR-trunc-mirror.nnet"))
    twin = Twin(f, g)
    labels, x = _test_inputs("har", 1.0)
    for i in range(min(inputs, len(labels))):
        lo, hi = np.clip(x[i] - 0.1, -1, 1), np.clip(x[i] + 0.1, -1, 1)
        for method in methods:
            rows = [_single_pass(twin, method, lo, hi, k) for k in range(twin.output_size)]
            low = min(r[0] for r in rows)
            up = max(r[1] for r in rows)
            yield {"input": i, "method": method, "lower": low, "upper": up,
                   "proven_eps0.25": int(low >= -0.25 and up <= 0.25), "time_s": round(sum(r[2] for r in rows), 4)}


def _verify_row(name: str, f, g, box: Box, prop, method: str, timeout: float) -> dict:
    res = verify(f, g, box, prop, method=method, timeout=timeout)
    return {"pair": name, "property": prop.describe(), "method": res.method, "result": res.verdict,
            "time_s": round(res.stats["time_s"], 3), "boxes": res.stats["boxes_bounded"],
            "bound_lower": float(np.min(res.lower)), "bound_upper": float(np.max(res.upper))}


def verydiff_pairs(methods: Sequence[str] = ("auto",), timeout: float = 60.0) -> Iterator[dict]:
    """VeryDiff's pruned twins: ACAS 1_1 on prop_1, MNIST 3x100 on its two local_15 regions, LHC on sigma_0.1."""
    root = _root() / "verydiff-release"
    cases = [
        ("acas_1_1_pruned5", "ACASXU_run2a_1_1_batch_2000", "prop_1.vnnlib", [EpsEquivalence(e) for e in (0.05, 0.5, 1.0)]),
        ("mnist_pruned5_img0", "mnist_relu_3_100", "mnist_0_local_15.vnnlib",
         [EpsEquivalence(e) for e in (0.5, 1.0, 2.0)] + [Top1(), DeltaTop1(0.9)]),
        ("mnist_pruned5_img7", "mnist_relu_3_100", "mnist_7_local_15.vnnlib",
         [EpsEquivalence(e) for e in (0.5, 1.0, 2.0)] + [Top1(), DeltaTop1(0.9)]),
        ("lhc_2_80_pruned", "2_80-1", "sigma_0.1.vnnlib", [EpsEquivalence(e) for e in (0.05, 0.5)] + [Top1(), DeltaTop1(0.9)]),
    ]
    for name, stem, spec, props in cases:
        f = load(root / "nets" / f"{stem}.onnx")
        g_path = root / "nets" / (f"{stem}_pruned5.onnx" if not stem.startswith("2_80") else "2_80-1-0.1.onnx")
        g = load(g_path)
        box = read_vnnlib(root / "specs" / spec, n_inputs=f.input_size).box
        for prop in props:
            for method in methods:
                yield _verify_row(name, f, g, box, prop, method, timeout)


def student_pair(methods: Sequence[str] = ("crown", "alpha-crown"), timeout: float = 60.0) -> Iterator[dict]:
    """A distilled student of a different architecture (nnequiv MNIST 8x8): the twin graph handles any widths."""
    root = _root() / "nnequiv-experiments/benchmarks"
    # teacher 64-100-80-60-40-20-10, student 64-40-40-10 (the "-mirror" file)
    f = load(root / "mnist8x8_100_80_60_40_20_10.onnx")
    g = load(root / "mnist8x8_100_80_60_40_20_10-mirror.onnx")
    rng = np.random.default_rng(0)
    for i in range(5):
        center = rng.uniform(0, 1, f.input_size)
        box = Box.linf(center, 0.01, clip=(0.0, 1.0))
        for method in methods:
            for eps in (0.5, 2.0):
                row = _verify_row(f"mnist8x8_student_{i}", f, g, box, EpsEquivalence(eps), method, timeout)
                yield row


SUITES = {
    "mnist-global": mnist_global,
    "har": har_box,
    "verydiff": verydiff_pairs,
    "student": student_pair,
    "mnist-kpixel": mnist_kpixel,
    "cnn": cnn_suite,
    "quantized": quantized_suite,
}
