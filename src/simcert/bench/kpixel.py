"""MNIST 3x100 K-pixel benchmark (METHODS.md, MNIST): K pixels free in [0, 1], every other pixel fixed.

Definition (ReluDiff/NeuroDiff's "random pixels" experiment): for test image i, the freed pixels are the first K
entries of row i of NeuroDiff's table `neurodiff-ase2020/test_inputs/mnist_random_pixels_30.csv` (its `-x K`
option frees the same ones); each freed pixel ranges over [0, 1] (pixels/255), the rest keep the image's value.
Networks: `mnist_relu_3_100` (784-100-100-10-10) against its float16 twin (re-rounded to exact float16), as in
`mnist_global`. Target: g_label - f_label, eps = 1, one engine pass without splitting.

Rows (`mnist_kpixel`): K, image, engine, certified [lower, upper] and width, proven at eps 1, time, and the range
of g_label - f_label sampled on 1,000 uniform points of the region and its centre (every sound bound contains
it). `milp` (exact, HiGHS) runs with a time limit on the first `milp_images` images for K in `milp_ks` only.
No anchor numbers for this variant were measured on this machine (ANCHORS.md has none).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..compress import to_float16
from ..errors import InputError, UnsupportedOpError
from ..network.io import load
from ..twin import Twin
from .cnn import bound_is_sound, engine_pass, sampled_range

__all__ = ["KS", "METHODS", "random_pixels", "kpixel_box", "mnist_kpixel", "render_section"]

KS = (5, 10, 15, 20, 25, 30)
METHODS = ("interval", "crown", "alpha-crown", "diff-forward", "diff", "milp")
PIXEL_TABLE = "neurodiff-ase2020/test_inputs/mnist_random_pixels_30.csv"


def random_pixels(root: Path) -> np.ndarray:
    """NeuroDiff's random-pixel table: (100, 30) pixel indices, row i for test image i."""
    data = np.loadtxt(root / PIXEL_TABLE, delimiter=",", skiprows=1).astype(int)
    if not (data[:, 0] == np.arange(len(data))).all():
        raise InputError(f"{PIXEL_TABLE}: rows are not in image order")
    return data[:, 1:]


def kpixel_box(image: np.ndarray, pixels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper): `image` with its pixels `pixels[:k]` free in [0, 1]."""
    if not 0 < k <= len(pixels):
        raise InputError(f"K must be in 1..{len(pixels)}, got {k}")
    lo, hi = image.astype(np.float64).copy(), image.astype(np.float64).copy()
    lo[pixels[:k]], hi[pixels[:k]] = 0.0, 1.0
    return lo, hi


def mnist_kpixel(
    methods: Sequence[str] = METHODS,
    images: int = 20,
    ks: Sequence[int] = KS,
    milp_images: int = 5,
    milp_ks: Sequence[int] = (5, 10),
    milp_time: float = 5.0,
    samples: int = 1000,
) -> Iterator[dict]:
    """The rows described in the module docstring."""
    from .suites import _root, _test_inputs

    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise InputError(f"unknown engine {bad[0]!r}; choose from {', '.join(METHODS)}")
    root = _root()
    f = load(root / "reludiff-icse2020/nnet/mnist_relu_3_100.nnet")
    g = to_float16(load(root / "neurodiff-ase2020/compressed_nnets/mnist_relu_3_100_16bit.nnet"))
    twin = Twin(f, g)
    labels, x = _test_inputs("mnist", 255.0)
    pix = random_pixels(root)
    for k in ks:
        for i in range(min(images, len(labels))):
            t = int(labels[i])
            lo, hi = kpixel_box(x[i], pix[i], k)
            s_lo, s_hi = sampled_range(f, g, lo, hi, t, samples, seed=100 * i + k)
            for method in methods:
                if method == "milp" and (i >= milp_images or k not in milp_ks):
                    continue
                base = {"K": k, "img": i, "label": t, "method": method}
                try:
                    low, up, sec, note = engine_pass(twin, method, lo, hi, t, milp_time)
                except (UnsupportedOpError, InputError) as exc:
                    yield {**base, "lower": "", "upper": "", "width": "", "proven_eps1": 0, "time_s": "",
                           "sampled_lower": s_lo, "sampled_upper": s_hi, "result": f"unsupported: {exc}"}
                    continue
                yield {**base, "lower": low, "upper": up, "width": up - low, "proven_eps1": int(low >= -1 and up <= 1),
                       "time_s": round(sec, 4), "sampled_lower": s_lo, "sampled_upper": s_hi, "result": note}


def render_section(rows: list[dict]) -> list[str]:
    """The "K-pixel" section of docs/benchmarks.md from the rows of `mnist_kpixel` (as read from the CSV)."""
    out = ["## MNIST 3x100, float16 twin, K random pixels free in [0, 1]", "",
           "`simcert bench mnist-kpixel --out docs/bench-data/mnist_kpixel.csv`: for test image i the first K "
           "pixels of row i of NeuroDiff's `mnist_random_pixels_30.csv` range over [0, 1], every other pixel is "
           "fixed; target g_label - f_label, eps = 1, one engine pass, no splitting. No anchor (NeuroDiff, "
           "ReluDiff) was measured on this variant here, and the papers report it only on networks we do not have.",
           ""]
    if not rows:
        return out + ["_No results yet (run the command above)._", ""]
    ok = [r for r in rows if not str(r.get("result", "")).startswith("unsupported")]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    ks = sorted({int(r["K"]) for r in rows})
    width: dict[tuple, list[float]] = defaultdict(list)
    proven: dict[tuple, int] = defaultdict(int)
    count: dict[tuple, int] = defaultdict(int)
    times: dict[str, list[float]] = defaultdict(list)
    samp: dict[int, dict[str, float]] = defaultdict(dict)
    for r in ok:
        key = (r["method"], int(r["K"]))
        width[key].append(float(r["width"]))
        proven[key] += int(r["proven_eps1"])
        count[key] += 1
        times[r["method"]].append(float(r["time_s"]))
        samp[int(r["K"])][r["img"]] = float(r["sampled_upper"]) - float(r["sampled_lower"])
    sound = sum(bound_is_sound(r) for r in rows)
    n_img = len({r["img"] for r in rows})
    out += [f"Median certified width of g_label - f_label over {n_img} test images (`milp`: exact MILP, HiGHS "
            "with a 5 s limit per run, on fewer images and K values: see the run counts below); last row: median "
            "width seen on 1,000 random points "
            f"(a lower bound on the true width). Bounds containing every sampled value: **{sound} of {len(rows)}**.",
            "", "| engine | " + " | ".join(f"K={k}" for k in ks) + " | mean time (s) |",
            "|---|" + "---|" * len(ks) + "---|"]
    for m in methods:
        vals = [f"{statistics.median(width[(m, k)]):.4g}" if width[(m, k)] else "-" for k in ks]
        mt = f"{statistics.mean(times[m]):.3f}" if times[m] else "n/a"
        out.append(f"| {m} | " + " | ".join(vals) + f" | {mt} |")
    out.append("| sampled | " + " | ".join(f"{statistics.median(samp[k].values()):.4g}" for k in ks) + " | |")
    out += ["", "Images proven for eps = 1 (proven / runs):", "",
            "| engine | " + " | ".join(f"K={k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for m in methods:
        cells = [f"{proven[(m, k)]}/{count[(m, k)]}" if count[(m, k)] else "-" for k in ks]
        out.append(f"| {m} | " + " | ".join(cells) + " |")
    exact = {(r["K"], r["img"]): float(r["width"]) for r in ok if r["method"] == "milp" and r["result"] == "optimal"}
    if exact:
        ratios = {m: statistics.median(float(r["width"]) / exact[(r["K"], r["img"])] for r in ok
                                       if r["method"] == m and (r["K"], r["img"]) in exact)
                  for m in methods if m != "milp"}
        out.append(f"\nWhere the MILP finished ({len(exact)} runs, exact width), median width / exact width: "
                   + ", ".join(f"{m} {v:.3g}" for m, v in ratios.items()) + ".")
    limited = [r for r in ok if r.get("result") == "time limit"]
    if limited:
        out.append(f"\n`milp`: {len(limited)} of {sum(r['method'] == 'milp' for r in ok)} runs hit the time limit "
                   "(their bounds are HiGHS's proved dual bounds, sound but not exact).")
    bad = [r for r in rows if str(r.get("result", "")).startswith("unsupported")]
    for m in dict.fromkeys(r["method"] for r in bad):
        out.append(f"\n`{m}`: {next(r['result'] for r in bad if r['method'] == m)}")
    out.append("")
    return out
