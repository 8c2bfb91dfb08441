"""Vision CNN benchmark: a small convolutional digit classifier trained here, and its compressed twins.

Model (`train_cnn`, seeded, ~3 s on one core, regenerated at every run, nothing shipped): input (1, 8, 8)
in [0, 1]; Conv2d(1, 8, 3) - ReLU - Conv2d(8, 16, 3, stride 2) - ReLU - Flatten - Dense(64, 32) - ReLU -
Dense(32, 10). Data: the procedural 8x8 digits of `simcert.demo.make_digits` (scikit-learn is not a
dependency; the shared MNIST folder holds only 100 test images, too few to train on): 4,000 training
images (seed 11), test images from seed 12. Training: 1,000 Adam steps (lr 0.01, cosine schedule) on
mini-batches of 256 (torch seed 0), float32, one thread.

Twins (`TWINS`, built by `simcert.compress.compress`): float16 weights, int8 weights (per channel) and 30%
unstructured magnitude pruning (without fine-tuning, 50% pruning changes the top-1 class on ~5% of test
images, so 30% is the "still usable" point).

Rows (`cnn_suite`), one CSV schema for three kinds:
- kind "model": per network, its test accuracy (`lower`), top-1 agreement with the reference (`upper`) and
  the largest |g_k - f_k| over 1,000 test images (`width`);
- kind "bound": per twin, radius r/255, image and engine, one pass (no search) on the L-inf ball clipped to
  [0, 1]: certified [lower, upper] of g_label - f_label, its width and time; `sampled_lower/upper` is the
  range of g_label - f_label seen on 1,000 uniform points and the centre (every sound bound contains it);
  `milp` runs with a time limit on the first `milp_images` images only (`result`: "optimal" or "time limit");
- kind "verify": `simcert.verify` (method auto) of eps-equivalence on all outputs (eps `EPS`) and of top-1
  equivalence, with a per-run timeout: verdict, time, boxes bounded and the certified bound range.

`render_section(rows)` renders the docs/benchmarks.md section.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict
from functools import lru_cache
from typing import Any, Iterator, Sequence

import numpy as np
import torch

from ..errors import InputError, UnsupportedOpError
from ..network import Network
from ..spec import Box, EpsEquivalence, Top1
from ..twin import Twin

__all__ = ["TWINS", "EPS", "RADII", "METHODS", "train_cnn", "digits_test_set", "cnn_twins", "cnn_suite",
           "engine_pass", "sampled_range", "bound_is_sound", "render_section"]

# name -> compress() options
TWINS: dict[str, dict[str, Any]] = {
    "float16": {"to": "float16"},
    "int8": {"to": "int8", "per_channel": True},
    "pruned30": {"prune": 0.3},
}
EPS = 0.25
RADII = (1, 2, 4)  # in units of 1/255
METHODS = ("interval", "crown", "alpha-crown", "diff-forward", "diff", "milp")
TRAIN_SEED, TEST_SEED = 11, 12
SAMPLES = 1000

_COLUMNS = ("kind", "twin", "radius_255", "img", "label", "method", "property", "lower", "upper", "width",
            "sampled_lower", "sampled_upper", "result", "time_s", "boxes")


def _row(**kw: Any) -> dict:
    return {c: kw.get(c, "") for c in _COLUMNS}


@lru_cache(maxsize=2)
def train_cnn(steps: int = 1000, seed: int = 0) -> Network:
    """The reference CNN (module docstring), trained deterministically; cached per process."""
    from torch import nn

    from ..demo import make_digits
    from ..network.io import load

    x, y = make_digits(4000, seed=TRAIN_SEED)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(), nn.Flatten(),
            nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10),
        )
        xt = torch.tensor(x, dtype=torch.float32).reshape(-1, 1, 8, 8)
        yt = torch.tensor(y, dtype=torch.long)
        opt = torch.optim.Adam(model.parameters(), lr=0.01)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
        gen = torch.Generator().manual_seed(seed)
        for _ in range(steps):
            idx = torch.randint(0, len(xt), (256,), generator=gen)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
            sched.step()
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return load(model, input_shape=(1, 8, 8), name="digits_cnn")


def digits_test_set(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first n test digits (flattened to 64, in [0, 1]) and their labels."""
    from ..demo import make_digits

    return make_digits(n, seed=TEST_SEED)


def cnn_twins(f: Network, names: Sequence[str] = tuple(TWINS)) -> dict[str, Network]:
    """The compressed twins of `f` named in `names` (keys of `TWINS`)."""
    from ..compress import compress

    bad = [n for n in names if n not in TWINS]
    if bad:
        raise InputError(f"unknown CNN twin {bad[0]!r}; choose from {', '.join(TWINS)}")
    return {n: compress(f, **TWINS[n]) for n in names}


def sampled_range(
    f: Network, g: Network, lo: np.ndarray, hi: np.ndarray, k: int, n: int, seed: int
) -> tuple[float, float]:
    """Min and max of g_k - f_k over n uniform points of [lo, hi] and its centre (float64 forward passes)."""
    rng = np.random.default_rng(seed)
    pts = np.concatenate([((lo + hi) / 2)[None], rng.uniform(lo, hi, (n, lo.size))])
    d = g(pts)[:, k] - f(pts)[:, k]
    return float(d.min()), float(d.max())


def engine_pass(
    twin: Twin, method: str, lo: np.ndarray, hi: np.ndarray, k: int, milp_time: float
) -> tuple[float, float, float, str]:
    """(lower, upper, seconds, note) of g_k - f_k over [lo, hi] from one engine call; note "" when plain."""
    t0 = time.perf_counter()
    if method == "milp":
        from ..bounds.milp import milp_bound_spec

        e = np.zeros(twin.output_size)
        e[k] = 1.0
        r = milp_bound_spec(twin.f, twin.g, lo, hi, -e[None], e[None], time_limit=milp_time)
        note = "optimal" if bool(r.optimal[0]) else "time limit"
        return float(r.lower[0]), float(r.upper[0]), time.perf_counter() - t0, note
    from .suites import _single_pass

    low, up, t = _single_pass(twin, method, lo, hi, k)
    return low, up, t, ""


def cnn_suite(
    methods: Sequence[str] = METHODS,
    images: int = 20,
    radii: Sequence[float] = RADII,
    twins: Sequence[str] = tuple(TWINS),
    eps: float = EPS,
    timeout: float = 2.0,
    milp_time: float = 5.0,
    milp_images: int = 5,
    samples: int = SAMPLES,
    verify_props: bool = True,
) -> Iterator[dict]:
    """The rows described in the module docstring (radii in units of 1/255)."""
    from ..verify import verify

    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise InputError(f"unknown engine {bad[0]!r}; choose from {', '.join(METHODS)}")
    f = train_cnn()
    gs = cnn_twins(f, twins)
    x_acc, y_acc = digits_test_set(1000)
    f_acc = f(x_acc)
    yield _row(kind="model", twin="reference", lower=float(np.mean(f_acc.argmax(1) == y_acc)), upper=1.0, width=0.0)
    for name, g in gs.items():
        g_acc = g(x_acc)
        yield _row(kind="model", twin=name, lower=float(np.mean(g_acc.argmax(1) == y_acc)),
                   upper=float(np.mean(g_acc.argmax(1) == f_acc.argmax(1))), width=float(np.abs(g_acc - f_acc).max()))
    x, y = digits_test_set(images)
    for name, g in gs.items():
        twin = Twin(f, g)
        for r in radii:
            for i in range(images):
                k = int(y[i])
                box = Box.linf(x[i], r / 255.0, clip=(0.0, 1.0))
                lo, hi = box.lower, box.upper
                s_lo, s_hi = sampled_range(f, g, lo, hi, k, samples, seed=1000 * i + int(r * 10))
                base = dict(twin=name, radius_255=r, img=i, label=k, sampled_lower=s_lo, sampled_upper=s_hi)
                for method in methods:
                    if method == "milp" and i >= milp_images:
                        continue
                    try:
                        low, up, t, note = engine_pass(twin, method, lo, hi, k, milp_time)
                    except (UnsupportedOpError, InputError) as exc:
                        yield _row(kind="bound", method=method, property=f"g_{k} - f_{k}",
                                   result=f"unsupported: {exc}", **base)
                        continue
                    yield _row(kind="bound", method=method, property=f"g_{k} - f_{k}", lower=low, upper=up,
                               width=up - low, result=note, time_s=round(t, 4), **base)
                if not verify_props:
                    continue
                for prop in (EpsEquivalence(eps), Top1()):
                    res = verify(f, g, box, prop, timeout=timeout)
                    name_p = "top1" if isinstance(prop, Top1) else f"eps{eps:g}"
                    yield _row(kind="verify", method=res.method, property=name_p,
                               lower=float(np.min(res.lower)), upper=float(np.max(res.upper)), result=res.verdict,
                               time_s=round(res.stats["time_s"], 3), boxes=res.stats["boxes_bounded"], **base)


# ------------------------------------------------------------------------------------------ rendering


def _f(v: str) -> float:
    return float(v) if v not in ("", None) else float("nan")


def bound_is_sound(row: dict, tol: float = 1e-9) -> bool:
    """A bound row contains its sampled range (absolute slack `tol` for printing); unsupported rows pass."""
    if str(row["result"]).startswith("unsupported"):
        return True
    return _f(row["lower"]) <= _f(row["sampled_lower"]) + tol and _f(row["upper"]) >= _f(row["sampled_upper"]) - tol


def _exactness_table(bound: list[dict], methods: list[str], cols: list[tuple]) -> list[str]:
    """Median of width / exact width per engine, on the balls where the MILP finished (its width is exact)."""
    exact = {(r["twin"], _f(r["radius_255"]), r["img"]): _f(r["width"]) for r in bound
             if r["method"] == "milp" and r["result"] == "optimal" and _f(r["width"]) > 0}
    if not exact:
        return []
    ratio: dict[tuple, list[float]] = defaultdict(list)
    for r in bound:
        key = (r["twin"], _f(r["radius_255"]), r["img"])
        if key in exact and r["method"] != "milp" and not str(r["result"]).startswith("unsupported"):
            ratio[(r["method"], key[0], key[1])].append(_f(r["width"]) / exact[key])
    out = ["", f"Median ratio of each engine's width to the exact width (MILP solved to optimality), on the "
           f"{len(exact)} balls where it finished:", "",
           "| engine | " + " | ".join(f"{t} r={rr:g}" for t, rr in cols) + " |", "|---|" + "---|" * len(cols)]
    for m in methods:
        if m == "milp":
            continue
        vals = [f"{statistics.median(ratio[(m, t, rr)]):.3g}" if ratio[(m, t, rr)] else "-" for t, rr in cols]
        out.append(f"| {m} | " + " | ".join(vals) + " |")
    return out


def render_section(rows: list[dict]) -> list[str]:
    """The "Vision CNN" section of docs/benchmarks.md from the rows of `cnn_suite` (as read from the CSV)."""
    out = ["## Vision CNN (trained here): 8x8 digits, Conv-Conv-Dense-Dense, float16 / int8 / pruned twins", "",
           "`simcert bench cnn --timeout 2 --out docs/bench-data/cnn.csv`: a 1-8-16 channel CNN "
           "(Conv2d 3x3, Conv2d 3x3 stride 2, Dense 32, Dense 10; 3,658 parameters; `simcert.bench.cnn`) "
           "trained in ~3 s on procedural 8x8 digits; L-inf balls of radius r/255 around test digits, clipped to "
           "[0, 1]. Convolutions stay convolutions in every engine (conv2d / transposed conv2d, no unrolling).", ""]
    if not rows:
        return out + ["_No results yet (run the command above)._", ""]
    model = [r for r in rows if r["kind"] == "model"]
    bound = [r for r in rows if r["kind"] == "bound"]
    ver = [r for r in rows if r["kind"] == "verify"]
    if model:
        out += ["| network | test accuracy (1,000 digits) | top-1 agreement with reference "
                "| max abs(g_k - f_k) on test set |",
                "|---|---|---|---|"]
        out += [f"| {r['twin']} | {_f(r['lower']):.3f} | {_f(r['upper']):.3f} | {_f(r['width']):.4g} |" for r in model]
        out.append("")
    if bound:
        twins = list(dict.fromkeys(r["twin"] for r in bound))
        radii = sorted({_f(r["radius_255"]) for r in bound})
        methods = list(dict.fromkeys(r["method"] for r in bound))
        cols = [(t, rr) for t in twins for rr in radii]
        n_img = len({r["img"] for r in bound})
        cell: dict[tuple, list[float]] = defaultdict(list)
        samp: dict[tuple, list[float]] = defaultdict(list)
        times: dict[str, list[float]] = defaultdict(list)
        notes: dict[str, set] = defaultdict(set)
        for r in bound:
            key = (r["method"], r["twin"], _f(r["radius_255"]))
            if str(r["result"]).startswith("unsupported"):
                notes[r["method"]].add(r["result"])
                continue
            cell[key].append(_f(r["width"]))
            times[r["method"]].append(_f(r["time_s"]))
            if r["result"] == "time limit":
                notes[r["method"]].add("time limit")
            samp[(r["twin"], _f(r["radius_255"]))].append(_f(r["sampled_upper"]) - _f(r["sampled_lower"]))
        sound = sum(bound_is_sound(r) for r in bound)
        n_milp = len({r["img"] for r in bound if r["method"] == "milp"})
        out += [f"Median certified width of g_label - f_label over {n_img} test digits (`milp`: exact MILP, "
                f"HiGHS with a 5 s limit per run, on the first {n_milp} digits only), one engine pass, no "
                "splitting; the last row is the median width seen on 1,000 random points per ball (a lower bound "
                f"on the true width). Bounds containing every sampled value: **{sound} of {len(bound)}**.", "",
                "| engine | " + " | ".join(f"{t} r={rr:g}" for t, rr in cols) + " | mean time (s) |",
                "|---|" + "---|" * len(cols) + "---|"]
        for m in methods:
            vals = [f"{statistics.median(cell[(m, t, rr)]):.3g}" if cell[(m, t, rr)] else "n/a" for t, rr in cols]
            mt = f"{statistics.mean(times[m]):.3f}" if times[m] else "n/a"
            out.append(f"| {m} | " + " | ".join(vals) + f" | {mt} |")
        out.append("| sampled | " + " | ".join(
            f"{statistics.median(samp[(t, rr)]):.3g}" if samp[(t, rr)] else "" for t, rr in cols) + " | |")
        out += _exactness_table(bound, methods, cols)
        for m, ns in notes.items():
            if "time limit" in ns:
                k = sum(r["method"] == m and r["result"] == "time limit" for r in bound)
                out.append(f"\n`{m}`: {k} of {sum(r['method'] == m for r in bound)} runs hit its time limit "
                           "(their bounds are the solver's proved dual bounds, still sound).")
            for n in sorted(x for x in ns if x != "time limit"):
                out.append(f"\n`{m}`: {n}")
        out.append("")
    if ver:
        keys = list(dict.fromkeys((r["twin"], _f(r["radius_255"]), r["property"]) for r in ver))
        out += [f"`simcert.verify` (method {', '.join(sorted({r['method'] for r in ver}))}) per ball; eps-equivalence "
                "bounds every output's g_k - f_k; top-1 means argmax g = argmax f on the whole ball. The timeout "
                "is `--timeout` per run; 'max time' shows how far a run can overshoot it (the search checks the "
                "clock between batches).", "",
                "| twin | r (/255) | property | holds | violated | unknown | mean time (s) | max time (s) |",
                "|---|---|---|---|---|---|---|---|"]
        for t, rr, p in keys:
            rs = [r for r in ver if (r["twin"], _f(r["radius_255"]), r["property"]) == (t, rr, p)]
            c = defaultdict(int)
            for r in rs:
                c[r["result"]] += 1
            ts = [_f(r["time_s"]) for r in rs]
            out.append(f"| {t} | {rr:g} | {p} | {c['holds']} | {c['violated']} | {c['unknown']} | "
                       f"{statistics.mean(ts):.3f} | {max(ts):.2f} |")
        out.append("")
    return out
