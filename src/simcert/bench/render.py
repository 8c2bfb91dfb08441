"""Render docs/benchmarks.md from the CSVs that `simcert bench` wrote (docs/bench-data/ by default).

Anchors (what the competing tools achieved on this machine kind) are read from
$SIMCERT_BENCHMARKS/../docs/anchors when present.
"""

from __future__ import annotations

import csv
import datetime as _dt
import platform
import statistics
import subprocess
from collections import defaultdict
from pathlib import Path

from ..paths import benchmarks_dir
from . import cnn, kpixel, quantized

__all__ = ["render_benchmarks"]


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open() as fh:
        return list(csv.DictReader(fh))


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _anchors() -> Path | None:
    root = benchmarks_dir()
    if root is None:
        return None
    p = root.parent / "docs" / "anchors"
    return p if p.is_dir() else None


def _acas_section(rows: list[dict], eps: str, anchor_file: str | None) -> list[str]:
    if not rows:
        return [f"_No results for eps = {eps} yet (run `simcert bench acas --eps {eps}`)._", ""]
    out = []
    counts = defaultdict(int)
    for r in rows:
        counts[r["result"]] += 1
    total = sum(float(r["time_s"]) for r in rows)
    timeout = max(float(r["time_s"]) for r in rows)
    anchor = {}
    a_dir = _anchors()
    if anchor_file and a_dir and (a_dir / anchor_file).is_file():
        for a in _read(a_dir / anchor_file):
            anchor[(a["prop"].replace("16", "6a").replace("26", "6b"), a["net"])] = a
    out.append(f"Runs: {len(rows)}; **holds {counts['holds']}**, violated {counts['violated']}, "
               f"unknown {counts['unknown']}; total time **{total:,.0f} s** (unknown runs count their full time).")
    if anchor:
        both = [(r, anchor.get((r["prop"], r["net"]))) for r in rows]
        both = [(r, a) for r, a in both if a is not None]
        nd_total = sum(float(a["time_s"]) for _, a in both)
        nd_proven = sum(a["result"] == "verified" for _, a in both)
        ours_proven = sum(r["result"] == "holds" for r, _ in both)
        ratios = [float(r["time_s"]) / max(float(a["time_s"]), 1e-3) for r, a in both]
        faster = sum(x < 1 for x in ratios)
        out.append(f"NeuroDiff on the same {len(both)} runs (measured on this machine kind, ANCHORS.md): proven "
                   f"{nd_proven}, total {nd_total:,.0f} s. simcert: proven {ours_proven}, total "
                   f"{sum(float(r['time_s']) for r, _ in both):,.0f} s. Per-run time ratio simcert/NeuroDiff: median "
                   f"{statistics.median(ratios):.2f}, simcert faster on {faster} of {len(both)} runs.")
        solved = [(r, a) for r, a in both if r["result"] == "holds" and a["result"] == "verified"]
        if solved:
            out.append(f"On the {len(solved)} runs both tools prove: simcert "
                       f"{sum(float(r['time_s']) for r, _ in solved):,.0f} s, NeuroDiff "
                       f"{sum(float(a['time_s']) for _, a in solved):,.0f} s.")
        out.append("")
        out.append("| prop | runs | simcert holds | simcert time (s) | NeuroDiff proven | NeuroDiff time (s) | boxes (simcert) | splits (NeuroDiff) |")
        out.append("|---|---|---|---|---|---|---|---|")
        by_prop = defaultdict(list)
        for r, a in both:
            by_prop[r["prop"]].append((r, a))
        for prop in sorted(by_prop, key=lambda p: (len(p), p)):
            rs = by_prop[prop]
            out.append(
                f"| {prop} | {len(rs)} | {sum(r['result'] == 'holds' for r, _ in rs)} | "
                f"{sum(float(r['time_s']) for r, _ in rs):,.1f} | {sum(a['result'] == 'verified' for _, a in rs)} | "
                f"{sum(float(a['time_s']) for _, a in rs):,.1f} | {sum(int(r['boxes']) for r, _ in rs):,} | "
                f"{sum(int(a['splits']) for _, a in rs):,} |"
            )
        slow = sorted(both, key=lambda ra: -float(ra[0]["time_s"]))[:10]
        out += ["", "Slowest runs:", "", "| prop | net | simcert | time (s) | bound of g_t - f_t | NeuroDiff | time (s) |", "|---|---|---|---|---|---|---|"]
        for r, a in slow:
            out.append(f"| {r['prop']} | {r['net']} | {r['result']} | {float(r['time_s']):.1f} | "
                       f"[{float(r['lower']):.3g}, {float(r['upper']):.3g}] | {a['result']} | {float(a['time_s']):.1f} |")
    out.append(f"\nPer-run limit: {timeout:.0f} s or less.")
    out.append("")
    return out


def _mnist_section(rows: list[dict]) -> list[str]:
    if not rows:
        return ["_No MNIST results yet (run `simcert bench mnist-global`)._", ""]
    anchors = {}
    a_dir = _anchors()
    for tool, fname in (("NeuroDiff", "neurodiff_mnist3x100_global.csv"), ("ReluDiff+", "reludiffplus_mnist3x100_global.csv")):
        if a_dir and (a_dir / fname).is_file():
            per = defaultdict(list)
            for a in _read(a_dir / fname):
                per[int(a["P"])].append(float(a["width"]))
            anchors[tool] = {p: statistics.median(v) for p, v in per.items()}
    methods = sorted({r["method"] for r in rows})
    ps = sorted({int(r["P"]) for r in rows})
    width = defaultdict(list)
    times = defaultdict(list)
    proven = defaultdict(int)
    for r in rows:
        width[(r["method"], int(r["P"]))].append(float(r["width"]))
        times[r["method"]].append(float(r["time_s"]))
        proven[(r["method"], int(r["P"]))] += int(r["proven_eps1"])
    n_img = len({r["img"] for r in rows})
    first20 = defaultdict(list)  # the anchors' images
    for r in rows:
        if int(r["img"]) < 20:
            first20[(r["method"], int(r["P"]))].append(float(r["width"]))

    def width_table(w: dict, with_anchors: bool) -> list[str]:
        t = ["| engine | " + " | ".join(f"P={p}" for p in ps) + " | mean time per image (s) |",
             "|---|" + "---|" * len(ps) + "---|"]
        for m in methods:
            t.append(f"| simcert {m} | " + " | ".join(f"{statistics.median(w[(m, p)]):.4f}" for p in ps)
                     + f" | {statistics.mean(times[m]):.3f} |")
        if with_anchors:
            for tool, med in anchors.items():
                t.append(f"| {tool} | " + " | ".join(f"{med[p]:.4f}" if p in med else "-" for p in ps) + " | |")
        return t

    out = ["Median certified width of g_label - f_label over the first 20 test images, one pass, no splitting "
           "(the anchors' images: their medians are over the same 20, measured on this machine kind).", ""]
    out += width_table(first20, True)
    if n_img > 20:
        out += ["", f"The same over all {n_img} test images:", ""]
        out += width_table(width, False)
    out += ["", "Images proven for eps = 1 (of %d):" % n_img, "",
            "| engine | " + " | ".join(f"P={p}" for p in ps) + " |", "|---|" + "---|" * len(ps)]
    for m in methods:
        out.append(f"| {m} | " + " | ".join(str(proven[(m, p)]) for p in ps) + " |")
    out.append("")
    return out


def _table(rows: list[dict], cols: list[str]) -> list[str]:
    if not rows:
        return ["_No results yet._", ""]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        vals = []
        for c in cols:
            v = r.get(c, "")
            try:
                fv = float(v)
                v = f"{fv:.4g}" if not fv.is_integer() or abs(fv) > 1e6 else str(int(fv))
            except (TypeError, ValueError):
                pass
            vals.append(str(v))
        out.append("| " + " | ".join(vals) + " |")
    out.append("")
    return out


def _har_section(rows: list[dict]) -> list[str]:
    if not rows:
        return ["_No HAR results yet (run `simcert bench har`)._", ""]
    by = defaultdict(list)
    for r in rows:
        by[r["method"]].append(r)
    out = ["| engine | inputs | proven (eps 0.25) | median max width | mean time (s) |", "|---|---|---|---|---|"]
    for m, rs in sorted(by.items()):
        out.append(f"| {m} | {len(rs)} | {sum(int(r['proven_eps0.25']) for r in rs)} | "
                   f"{statistics.median(float(r['upper']) - float(r['lower']) for r in rs):.4g} | "
                   f"{statistics.mean(float(r['time_s']) for r in rs):.3f} |")
    out.append("")
    return out


def _notes(path: Path) -> list[str]:
    """A hand-written note that belongs under one table (measurement remarks), if the file exists."""
    return [path.read_text().rstrip(), ""] if path.is_file() else []


def render_benchmarks(data_dir: Path = Path("docs/bench-data"), out: Path = Path("docs/benchmarks.md")) -> Path:
    """Write docs/benchmarks.md from the CSVs in `data_dir`."""
    d = Path(data_dir)
    lines = [
        "# simcert benchmarks",
        "",
        f"Generated {_dt.date.today().isoformat()} from the CSVs in `{d}` (commit {_commit()}, "
        f"{platform.machine()}, {platform.python_version()}; this machine kind has 2 cores). ACAS Xu runs are timed one "
        "at a time on 2 torch threads (`--workers 1 --threads 2`), as NeuroDiff's anchors were (one run at a time, "
        "2 OpenBLAS threads); the other suites run 2 workers of one thread each. Times are wall-clock on a shared "
        "machine: treat them as rough (see the note under the first table).",
        "",
        "Regenerate: run the `simcert bench SUITE` command shown under each table (each writes its CSV into "
        "docs/bench-data/), then `simcert bench render` rewrites this page; see docs/reproduce.md.",
        "",
        "## ACAS Xu NeuroDiff suite, float16 twins, eps = 0.05",
        "",
        "`simcert bench acas --eps 0.05 --timeout 300 --workers 1 --threads 2 --out docs/bench-data/acas_eps0.05.csv`",
        "",
    ]
    lines += _acas_section(_read(d / "acas_eps0.05.csv"), "0.05", "neurodiff_eps005.csv")
    lines += _notes(d / "acas_eps0.05.notes.md")
    lines += ["## ACAS Xu NeuroDiff suite, eps = 0.01", "",
              "`simcert bench acas --eps 0.01 --timeout 300 --workers 1 --threads 2 --out docs/bench-data/acas_eps0.01.csv`",
              ""]
    eps001 = _read(d / "acas_eps0.01.csv")
    lines += ["Every run with a 300 s limit. NeuroDiff's anchor covers props 3, 4, 5, 9, 11 (87 runs); its "
              "published full-suite result is 138/143 in 16,657 s with an 1800 s limit.", ""]
    lines += _acas_section(eps001, "0.01", "neurodiff_eps001_subset.csv")
    lines += _notes(d / "acas_eps0.01.notes.md")
    lines += ["## ACAS Xu root box: precision without search", "",
              "`simcert bench acas-root --out docs/bench-data/acas_root.csv`: width of the certified bound of "
              "g_t - f_t on the whole property box, per engine, against the sampled true width (20,000 points) "
              "and CROWN run on f and g separately then subtracted.", ""]
    root = _read(d / "acas_root.csv")
    if root:
        cols = [c for c in root[0] if c.endswith("_width") and c != "sampled_width"] + ["sampled_width"]
        agg = defaultdict(list)
        for r in root:
            agg[r["prop"]].append(r)
        lines += ["| prop | runs | " + " | ".join(f"median {c}" for c in cols) + " |", "|---|---|" + "---|" * len(cols)]
        for p, rs in sorted(agg.items()):
            lines.append(f"| {p} | {len(rs)} | " + " | ".join(f"{statistics.median(float(r[c]) for r in rs):.3g}" for c in cols) + " |")
        lines.append("")
    else:
        lines += ["_No results yet._", ""]
    lines += ["## MNIST 3x100, float16 twin, global perturbation +-P/255", "",
              "`simcert bench mnist-global --out docs/bench-data/mnist_global.csv`", ""]
    lines += _mnist_section(_read(d / "mnist_global.csv"))
    lines += kpixel.render_section(_read(d / "mnist_kpixel.csv"))
    lines += ["## HAR 561-500-6, float16 twin, box +-0.1, eps 0.25", "",
              "`simcert bench har --out docs/bench-data/har.csv` (single pass, all 6 outputs).", ""]
    lines += _har_section(_read(d / "har.csv"))
    lines += ["## VeryDiff pruned twins (pruned and fine-tuned: every weight differs)", "",
              "`simcert bench verydiff --timeout 60 --out docs/bench-data/verydiff.csv`", ""]
    lines += _table(_read(d / "verydiff.csv"), ["pair", "property", "method", "result", "time_s", "boxes", "bound_lower", "bound_upper"])
    lines += _notes(d / "verydiff.notes.md")
    lines += ["## A distilled student of a different architecture (nnequiv MNIST 8x8, 64-100-80-60-40-20-10 vs 64-40-40-10)", "",
              "`simcert bench student --out docs/bench-data/student.csv`: L-inf balls of radius 0.01 around 5 random points.", ""]
    lines += _table(_read(d / "student.csv"), ["pair", "property", "method", "result", "time_s", "boxes", "bound_lower", "bound_upper"])
    lines += cnn.render_section(_read(d / "cnn.csv"))
    lines += _notes(d / "cnn.notes.md")
    lines += quantized.render_section(_read(d / "quantized.csv"))
    lines += _notes(d / "quantized.notes.md")
    for extra in sorted(p for p in d.glob("*.md") if not p.name.endswith(".notes.md")):
        lines += [extra.read_text().rstrip(), ""]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    return out
