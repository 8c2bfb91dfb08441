"""The HTML report: one self-contained file (inline CSS, figures as `data:` URIs, no script, no network).

A report has one section per certificate (`simcert report CERT.json --html OUT.html` renders one; the demo
renders all of its certificates with a summary table on top). Each section opens with the verdict in plain
words, then the model summaries, the certified bounds of g - f against eps as a chart, the proven fraction of
the region, for probabilistic certificates the key numbers and a histogram of sampled deviations, for
low-dimensional regions a 2-D slice heat map of |g - f| with the counterexamples drawn, and for relative
safety margins a class-by-class matrix of margin bounds; the certificate JSON is at the end.

Figures that need the networks (heat map, histogram) are recomputed from the model files the certificate
names, found as given, relative to `base_dir`, or next to the certificate, and used only when their sha256
matches the certificate. Certificates store no per-sample deviations, so the histogram is drawn from a fresh,
seeded sample of the certificate's distribution and says so.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from . import plots
from .plots import Plot, finite
from .sentences import cert_eps, fmt_num, fmt_pct, fmt_vec, verdict_sentence

__all__ = [
    "load_certificate",
    "section_id",
    "verdict_sentence",
    "render_report",
    "write_report",
    "SLICE_MAX_DIM",
    "HISTOGRAM_SAMPLES",
]

SLICE_MAX_DIM = 8          # heat maps for regions with at most this many free inputs
SLICE_GRID = 161           # grid points per axis of the heat map
HISTOGRAM_SAMPLES = 20_000
_JSON_LIMIT = 200_000      # characters of certificate JSON shown in the page
VERDICT_WORDS = {"holds": "holds", "violated": "violated", "unknown": "unknown"}


# ------------------------------------------------------------------------------------------ input


def load_certificate(path: str | os.PathLike) -> dict[str, Any]:
    """A certificate read from a JSON file; InputError (one line, naming the file) for a missing file, bad
    JSON, or JSON that is not a simcert certificate (an object with `command` and a `verdict` of
    holds/violated/unknown)."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a certificate")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{p}: cannot read certificate ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        cert = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(cert, dict):
        raise InputError(f"{p}: not a simcert certificate (a JSON {type(cert).__name__}, expected an object)")
    if "command" not in cert or cert.get("verdict") not in VERDICT_WORDS:
        what = "no 'command' field" if "command" not in cert else f"verdict {cert.get('verdict')!r}"
        raise InputError(f"{p}: not a simcert certificate ({what}; expected a verdict of holds/violated/unknown)")
    return cert


def section_id(name: str) -> str:
    """The HTML id of a certificate's section, from its file name.

    >>> section_id("control/int8-a8.eps.cert.json")
    'cert-control-int8-a8-eps'
    """
    stem = re.sub(r"\.cert\.json$|\.json$", "", str(name))
    return "cert-" + (re.sub(r"[^A-Za-z0-9]+", "-", stem).strip("-") or "certificate")


# ------------------------------------------------------------------------------------------ models


def _arch(summary: dict[str, Any]) -> str:
    layers = [str(s) for s in summary.get("layers", [])]
    dense = [re.fullmatch(r"dense (\d+)->(\d+)", s) for s in layers]
    others = [s for s in layers if not s.startswith(("dense", "relu", "quantize-activation", "flatten"))]
    if not others and any(dense):
        sizes = [dense[i].group(1) for i in range(len(dense)) if dense[i]][:1]
        sizes += [m.group(2) for m in dense if m]
        return "-".join(sizes) + " MLP"
    return ", ".join(layers[:8]) + (", ..." if len(layers) > 8 else "")


def _activation_bits(summary: dict[str, Any]) -> str:
    acts = sorted({s.split(" ", 1)[1] for s in summary.get("layers", []) if s.startswith("quantize-activation ")})
    return ", ".join(acts) if acts else "float"


def _models_table(cert: dict[str, Any]) -> str:
    rows = []
    for m in cert.get("models") or []:
        s = m.get("summary") or {}
        sha = str(m.get("sha256") or "-")[:12]
        rows.append(
            f"<tr><td>{_e(m.get('role') or '')}</td><td><code>{_e(m.get('path') or '(in memory)')}</code></td>"
            f"<td>{_e(_arch(s))}</td><td class='num'>{int(s.get('parameters', 0)):,}</td>"
            f"<td class='num'>{fmt_pct(s.get('weight_sparsity', 0.0))}</td>"
            f"<td class='num'>{int(s.get('distinct_weight_values', 0)):,}</td>"
            f"<td>{'yes' if s.get('float16_exact') else 'no'}</td><td>{_e(_activation_bits(s))}</td>"
            f"<td><code>{_e(sha)}</code></td></tr>")
    if not rows:
        return ""
    head = ("<tr><th>role</th><th>file</th><th>architecture</th><th>parameters</th><th>zero weights</th>"
            "<th>distinct weight values</th><th>float16-exact</th><th>activations</th><th>sha256</th></tr>")
    return f"<table class='models'>{head}{''.join(rows)}</table>"


class _ModelCache:
    """Loads the networks a certificate names, once each, checking their sha256."""

    def __init__(self, base_dirs: Sequence[Path]) -> None:
        self.base_dirs = list(base_dirs)
        self.cache: dict[str, Any] = {}

    def get(self, rec: dict[str, Any]) -> tuple[Any, str | None]:
        from ..certificate import file_sha256
        from ..network.io import load

        raw = rec.get("path")
        if not raw:
            return None, "the certificate names no model file"
        p = Path(raw)
        candidates = [p] + [b / p for b in self.base_dirs if not p.is_absolute()] + [b / p.name for b in self.base_dirs]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            return None, f"model file {raw} not found"
        key = str(found.resolve())
        if key not in self.cache:
            if rec.get("sha256") and file_sha256(found) != rec["sha256"]:
                self.cache[key] = (None, f"{found} changed since the certificate was written (sha256 differs)")
            else:
                try:
                    self.cache[key] = (load(found), None)
                except InputError as exc:
                    self.cache[key] = (None, str(exc))
        return self.cache[key]

    def pair(self, cert: dict[str, Any]) -> tuple[Any, Any, str | None]:
        models = cert.get("models") or []
        if len(models) != 2:
            return None, None, "the certificate does not name a twin pair"
        (f, nf), (g, ng) = self.get(models[0]), self.get(models[1])
        return f, g, nf or ng


# ------------------------------------------------------------------------------------------ figures


def _region(cert: dict[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    reg = cert.get("region") or {}
    if "lower" not in reg or "upper" not in reg:
        return None
    return np.array([finite(v) for v in reg["lower"]]), np.array([finite(v) for v in reg["upper"]])


def _outputs(cert: dict[str, Any], m: int) -> list[int]:
    prop = cert.get("property") or {}
    outs = prop.get("outputs") if isinstance(prop, dict) else None
    return [int(o) for o in outs] if outs else list(range(m))


def _deviation(f: Any, g: Any, x: np.ndarray, outs: list[int]) -> np.ndarray:
    return np.abs(g(x)[:, outs] - f(x)[:, outs]).max(axis=1)


def _points(cert: dict[str, Any]) -> list[np.ndarray]:
    pts = []
    ce = cert.get("counterexample")
    if isinstance(ce, dict) and ce.get("input") is not None:
        pts.append(np.asarray(ce["input"], float))
    for ex in cert.get("examples") or []:
        if isinstance(ex, dict) and ex.get("input") is not None:
            pts.append(np.asarray(ex["input"], float))
    return pts


def _slice_figure(cert: dict[str, Any], models: _ModelCache) -> tuple[Plot | None, str]:
    """The heat map (2+ free inputs) or curve (1 free input) of |g - f| on the region, or why there is none."""
    reg = _region(cert)
    if reg is None:
        return None, "the region is not stored inline in the certificate"
    lo, hi = reg
    free = np.flatnonzero(hi > lo)
    if free.size == 0 or free.size > SLICE_MAX_DIM or not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None, f"no slice plot: the region has {free.size} free inputs (plots for 1 to {SLICE_MAX_DIM})"
    f, g, note = models.pair(cert)
    if f is None or g is None:
        return None, f"no slice plot: {note}"
    outs = _outputs(cert, f.output_size)
    eps = cert_eps(cert)
    centre = (lo + hi) / 2
    pts = [p for p in _points(cert) if p.shape == lo.shape]
    if free.size == 1:
        i = int(free[0])
        xs = np.linspace(lo[i], hi[i], 801)
        x = np.repeat(centre[None], xs.size, 0)
        x[:, i] = xs
        return plots.deviation_curve(xs, _deviation(f, g, x, outs), eps, f"x{i}", [p[i] for p in pts]), ""
    i, j = (int(v) for v in free[np.argsort(-(hi - lo)[free], kind="stable")[:2]])
    i, j = min(i, j), max(i, j)
    xs, ys = np.linspace(lo[i], hi[i], SLICE_GRID), np.linspace(lo[j], hi[j], SLICE_GRID)
    gx, gy = np.meshgrid(xs, ys)
    x = np.repeat(centre[None], gx.size, 0)
    x[:, i], x[:, j] = gx.ravel(), gy.ravel()
    vals = _deviation(f, g, x, outs).reshape(gx.shape)
    other = "" if free.size == 2 else f"; the other {free.size - 2} free inputs fixed at the region's centre"
    contour = eps is not None and float(np.nanmin(vals)) < eps < float(np.nanmax(vals))
    caption = (f"|g - f| over inputs x{i} and x{j}{other}"
               + ("; green contour: |g - f| = eps" if contour else "")
               + (f"; |g - f| stays below eps = {eps:g} on this slice" if eps is not None and not contour
                  and float(np.nanmax(vals)) <= eps else "")
               + (f"; x: counterexamples{' (projected)' if free.size > 2 else ''}" if pts else ""))
    return plots.slice_heatmap(xs, ys, vals, eps, (f"x{i}", f"x{j}"), [(p[i], p[j]) for p in pts]), caption


def _histogram_figure(cert: dict[str, Any], models: _ModelCache) -> tuple[Plot | None, str]:
    reg = _region(cert)
    if reg is None:
        return None, "no histogram: the region is not stored inline"
    f, g, note = models.pair(cert)
    if f is None or g is None:
        return None, f"no histogram: {note}"
    from ..spec import Box
    from ..stats.samplers import parse_distribution

    spec = str((cert.get("distribution") or {}).get("spec") or "uniform")
    try:
        sampler = parse_distribution(spec, Box(*reg))
        x = sampler.sample(HISTOGRAM_SAMPLES, np.random.default_rng(int(cert.get("seed") or 0) + 1))
    except (InputError, ValueError) as exc:
        return None, f"no histogram: cannot sample the distribution {spec!r} ({exc})"
    d = _deviation(f, g, x.reshape(x.shape[0], -1), _outputs(cert, f.output_size))
    plot = plots.deviation_histogram(
        d, cert_eps(cert) or 0.0, finite(cert.get("deviation_quantile_upper")), finite(cert.get("quantile_p")) or None,
        finite(cert.get("violation_rate_upper")), finite(cert.get("confidence")))
    return plot, (f"illustration: {HISTOGRAM_SAMPLES:,} fresh samples from the certificate's distribution "
                  f"({spec}), not the certificate's own samples; red bars lie above eps")


def _rsm_matrix(cert: dict[str, Any]) -> tuple[Plot | None, str]:
    """Class-by-class matrices: row c = label, column j; cells = the smallest certified lower bound and the
    largest certified upper bound of Pi_cj over the balls with label c (or over the one region)."""
    samples = cert.get("samples") if isinstance(cert.get("samples"), list) else None
    if samples and all(isinstance(s, dict) and "label" in s and "lower" in s for s in samples):
        m = len(samples[0]["lower"])
        labels = sorted({int(s["label"]) for s in samples})
        lo, hi = np.full((len(labels), m), np.nan), np.full((len(labels), m), np.nan)
        for r, c in enumerate(labels):
            mine = [s for s in samples if int(s["label"]) == c]
            lo[r] = np.array([[finite(v) for v in s["lower"]] for s in mine]).min(0)
            if all("upper" in s for s in mine):
                hi[r] = np.array([[finite(v) for v in s["upper"]] for s in mine]).max(0)
            lo[r, c] = hi[r, c] = np.nan
        note = ("Pi_cj = (f_c - f_j) - (g_c - g_j): row c bounds it over the balls whose label is c. Left: the "
                "smallest certified lower bound (a row of blue cells, >= 0, proves g => f: the reference keeps at "
                "least the twin's margin); right: the largest certified upper bound (a row <= 0 proves f => g).")
        return plots.rsm_matrix(lo, None if np.isnan(hi).all() else hi, labels), note
    prop = cert.get("property") or {}
    bounds = [b for b in cert.get("bounds") or [] if "j" in b]
    if prop.get("type") == "rsm" and bounds:
        c = int(prop.get("label", 0))
        m = max([int(b["j"]) for b in bounds] + [c]) + 1
        lo, hi = np.full((1, m), np.nan), np.full((1, m), np.nan)
        for b in bounds:
            lo[0, int(b["j"])], hi[0, int(b["j"])] = finite(b.get("lower")), finite(b.get("upper"))
        return (plots.rsm_matrix(lo, hi, [c]),
                "certified bounds of Pi_cj = (f_c - f_j) - (g_c - g_j) over the region for the label c")
    return None, ""


# ------------------------------------------------------------------------------------------ sections


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


def _figure_html(plot: Plot | None, caption: str) -> str:
    if plot is None:
        return f"<p class='note'>{_e(caption)}</p>" if caption else ""
    cap = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return (f"<figure class='plot' data-kind='{_e(plot.kind)}'><img src='{plot.uri}' alt='{_e(plot.alt)}'>"
            f"{cap}</figure>")


def _meter(fraction: Any, label: str) -> str:
    x = finite(fraction)
    if math.isnan(x):
        return ""
    x = min(max(x, 0.0), 1.0)
    return (f"<div class='meter-row'><span>{_e(label)}</span><div class='meter' data-fraction='{x:.6g}'>"
            f"<span style='width:{100 * x:.2f}%'></span></div><b>{100 * x:.3g}%</b></div>")


def _facts(cert: dict[str, Any]) -> str:
    from .terminal import _property_text  # the same words as the terminal

    reg = cert.get("region") or {}
    src = reg.get("source") or {}
    region = f"box in {reg.get('dim', '?')} inputs"
    if src.get("kind") == "linf":
        region = f"L-inf ball of radius {fmt_num(src.get('radius'))} ({reg.get('dim')} inputs)"
    elif src.get("kind") == "dataset":
        region = f"balls of radius {fmt_num(src.get('radius'))} around the inputs in {src.get('inputs')}"
    elif "lower" in reg and reg.get("dim", 99) <= 4:
        region = " x ".join(f"[{fmt_num(a)}, {fmt_num(b)}]" for a, b in zip(reg["lower"], reg["upper"]))
    method = cert.get("method")
    mname = method.get("name") if isinstance(method, dict) else method
    stats = cert.get("stats") or {}
    t = stats.get("time_s", (cert.get("time") or {}).get("total_s"))
    items = [("property", _property_text(cert.get("property"))), ("region", region), ("method", mname),
             ("time", f"{finite(t):.2f} s" if t is not None else None), ("command", cert.get("command")),
             ("created", cert.get("created")), ("simcert", cert.get("simcert_version"))]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in items if v is not None)
    return f"<table class='facts'>{rows}</table>"


def _certify_numbers(cert: dict[str, Any]) -> str:
    samples = cert.get("samples") or {}
    n = samples.get("total") if isinstance(samples, dict) else samples
    viol = samples.get("violations") if isinstance(samples, dict) else None
    items = [
        ("confidence", fmt_pct(cert.get("confidence"))),
        ("target violation rate", fmt_pct(cert.get("rate")) if cert.get("rate") is not None else "none"),
        ("certified violation rate (upper)", fmt_pct(cert.get("violation_rate_upper"))),
        ("violation rate (lower)", fmt_pct(cert.get("violation_rate_lower"))),
        ("proven part of the region", fmt_pct(cert.get("proven_fraction"))),
        ("refuted part of the region", fmt_pct(cert.get("refuted_fraction"))),
        ("samples (violations)", f"{fmt_num(n, 12)} ({fmt_num(viol, 12)})"),
        (f"deviation quantile bound (p = {fmt_num(cert.get('quantile_p'))})", fmt_num(cert.get("deviation_quantile_upper"))),
        ("expected deviation (upper)", fmt_num(cert.get("expected_deviation_upper"))),
        ("deviation range (deterministic)", fmt_vec(cert.get("deviation_range"))),
    ]
    rows = "".join(f"<tr><th>{_e(k)}</th><td class='num'>{_e(v)}</td></tr>" for k, v in items)
    return f"<table class='facts certify'>{rows}</table>"


def _counterexample_table(cert: dict[str, Any]) -> str:
    ce = cert.get("counterexample")
    if not isinstance(ce, dict) or ce.get("input") is None:
        return ""
    rows = "".join(f"<tr><th>{k}</th><td><code>{_e(fmt_vec(ce.get(key), 10))}</code></td></tr>"
                   for k, key in (("input x", "input"), ("f(x)", "f"), ("g(x)", "g")))
    return ("<h4>Counterexample (confirmed by running both networks)</h4>"
            f"<table class='facts counterexample'>{rows}</table>")


def _bounds_figure(cert: dict[str, Any]) -> tuple[Plot | None, str]:
    bounds = [b for b in cert.get("bounds") or [] if "lower" in b and "upper" in b and "j" not in b]
    if not bounds:
        return None, ""
    prop = cert.get("property") or {}
    rows = [str(b.get("row", i)) for i, b in enumerate(bounds)]
    lo, hi = [b["lower"] for b in bounds], [b["upper"] for b in bounds]
    if prop.get("type") in ("top1", "delta-top1"):
        return (plots.bounds_chart(rows, lo, hi, zero_line=True, xlabel="certified bounds of the class margins"),
                "top-1 is proven when every margin of the label against another class stays above 0 for both "
                "networks")
    eps = cert_eps(cert)
    extra = " (from the deterministic part of the certificate)" if cert.get("command") == "certify" else ""
    return plots.bounds_chart(rows, lo, hi, eps=eps), f"certified bounds of g_k - f_k over the region{extra}"


def _section(name: str, cert: dict[str, Any], models: _ModelCache, show_verdict: bool = True) -> str:
    verdict = str(cert.get("verdict"))
    title = (cert.get("demo") or {}).get("title") or f"{cert.get('command')}: {name}"
    parts = [f"<section class='certificate' id='{_e(section_id(name))}' data-verdict='{_e(verdict)}'>",
             f"<h2>{_e(title)}</h2>"]
    if show_verdict:
        parts.append(f"<div class='verdict verdict-{_e(verdict)}'><span class='badge'>{_e(verdict)}</span>"
                     f"<p class='verdict-text'>{_e(verdict_sentence(cert))}</p></div>")
    parts += [_facts(cert), "<h3>Models</h3>", _models_table(cert)]
    kind = (cert.get("property") or {}).get("type")
    if cert.get("command") == "certify":
        parts += ["<h3>Probabilistic certificate</h3>", _certify_numbers(cert),
                  _meter(cert.get("proven_fraction"), "region proven")]
        parts.append(_figure_html(*_histogram_figure(cert, models)))
    elif cert.get("command") == "verify":
        pf = (cert.get("stats") or {}).get("proven_fraction")
        if not (cert.get("verdict") == "violated" and not finite(pf)):
            parts.append(_meter(pf, "region proven"))
    if kind in ("rsm", "rsm-dataset") or cert.get("command") == "rsm":
        parts += ["<h3>Relative safety margins</h3>", _figure_html(*_rsm_matrix(cert))]
    else:
        plot, caption = _bounds_figure(cert)
        if plot is not None:
            parts += ["<h3>Certified bounds</h3>", _figure_html(plot, caption)]
        plot, caption = _slice_figure(cert, models)
        if plot is not None:
            parts += ["<h3>|g - f| on the region</h3>", _figure_html(plot, caption)]
        elif caption:
            parts.append(f"<p class='note'>{_e(caption)}</p>")
    parts.append(_counterexample_table(cert))
    text = json.dumps(cert, indent=2)
    if len(text) > _JSON_LIMIT:
        text = text[:_JSON_LIMIT] + "\n... (truncated)"
    parts += [f"<details><summary>certificate JSON ({_e(name)})</summary><pre>{_e(text)}</pre></details>",
              "</section>"]
    return "\n".join(p for p in parts if p)


def _summary_table(rows: Sequence[dict[str, Any]]) -> str:
    body = "".join(
        f"<tr data-verdict='{_e(r['verdict'])}'><td>{_e(r['model'])}</td><td>{_e(r['twin'])}</td>"
        f"<td>{_e(r['check'])}</td><td><span class='badge verdict-{_e(r['verdict'])}'>{_e(r['verdict'])}</span></td>"
        f"<td>{_e(r['detail'])}</td><td class='num'>{float(r['time_s']):.2f} s</td>"
        f"<td><a href='#{_e(r['section'])}'>details</a></td></tr>"
        for r in rows)
    head = ("<tr><th>model</th><th>twin</th><th>check</th><th>verdict</th><th>what we know</th><th>time</th>"
            "<th></th></tr>")
    return f"<table class='summary'>{head}{body}</table>"


def _headline(certs: Sequence[tuple[str, dict[str, Any]]]) -> tuple[str, str]:
    """(verdict class, sentence) at the top of the page."""
    if len(certs) == 1:
        cert = certs[0][1]
        return str(cert.get("verdict")), verdict_sentence(cert)
    proven = sum(1 for _, c in certs if c.get("verdict") == "holds" and c.get("command") != "certify")
    prob = sum(1 for _, c in certs if c.get("verdict") == "holds" and c.get("command") == "certify")
    violated = sum(1 for _, c in certs if c.get("verdict") == "violated")
    unknown = sum(1 for _, c in certs if c.get("verdict") == "unknown")
    return "summary", (f"{len(certs)} checks: {proven} proven for every input, {prob} certified for random inputs "
                       f"(probabilistic), {violated} violated (a confirmed counterexample or a rejected violation "
                       f"rate), {unknown} undecided. Each section below says what was checked and what it means.")


def render_report(
    certs: Sequence[tuple[str, dict[str, Any]]],
    *,
    title: str = "simcert report",
    base_dir: str | os.PathLike | None = None,
    summary: Sequence[dict[str, Any]] | None = None,
    notes: Sequence[str] = (),
) -> str:
    """The HTML document for (name, certificate) pairs; `summary` rows (model, twin, check, verdict, detail,
    time_s, section) add a table of all checks on top. Model files are looked up as named, then under
    `base_dir`."""
    base = [Path(base_dir)] if base_dir is not None else []
    models = _ModelCache(base)
    verdict, sentence = _headline(certs)
    body = [f"<header><h1>{_e(title)}</h1>",
            f"<div class='verdict verdict-{_e(verdict)}' id='headline'><span class='badge'>{_e(verdict)}</span>"
            f"<p class='verdict-text'>{_e(sentence)}</p></div></header>"]
    if summary:
        body.append("<h2>Summary</h2>" + _summary_table(summary))
    body += [f"<p class='note'>{_e(n)}</p>" for n in notes]
    body += [_section(name, cert, models, show_verdict=len(certs) > 1) for name, cert in certs]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    body.append(f"<footer>Generated by simcert on {stamp}. Proofs are sound for the stated region and "
                "networks; probabilistic certificates hold with the stated confidence for the stated input "
                "distribution only.</footer>")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head>"
            f"<body>\n{chr(10).join(body)}\n</body></html>\n")


def write_report(path: str | os.PathLike, certs: Sequence[tuple[str, dict[str, Any]]], **kwargs: Any) -> Path:
    """Render `render_report(certs, **kwargs)` and write it atomically to `path`; returns the path."""
    from ..network.io import atomic_write

    text = render_report(certs, **kwargs)
    atomic_write(path, text.encode("utf-8"))
    return Path(path)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#1f2328;line-height:1.45}
h1{margin-bottom:.3em}h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:2em}h3{margin-bottom:.4em}
table{border-collapse:collapse;margin:.5em 0;font-size:.92em}th,td{border:1px solid #d0d7de;padding:.25em .6em;
text-align:left;vertical-align:top}th{background:#f6f8fa}td.num{text-align:right;font-variant-numeric:tabular-nums}
.verdict{display:flex;gap:1em;align-items:center;padding:.8em 1em;border-radius:8px;margin:.6em 0;
border:1px solid #d0d7de}.verdict p{margin:0;font-size:1.05em}
.badge{display:inline-block;padding:.15em .7em;border-radius:1em;font-weight:700;color:#fff;
text-transform:uppercase;font-size:.85em;white-space:nowrap;background:#57606a}
.verdict-holds{background:#dafbe1;border-color:#4ac26b}.verdict-holds .badge,.badge.verdict-holds{background:#1a7f37}
.verdict-violated{background:#ffebe9;border-color:#ff8182}.verdict-violated .badge,.badge.verdict-violated{background:#cf222e}
.verdict-unknown{background:#fff8c5;border-color:#d4a72c}.verdict-unknown .badge,.badge.verdict-unknown{background:#9a6700}
.badge.verdict-holds,.badge.verdict-violated,.badge.verdict-unknown{border:0}
figure{margin:.8em 0}figure img{max-width:100%;height:auto;border:1px solid #eaeef2}
figcaption,.note{color:#57606a;font-size:.9em}
.meter-row{display:flex;align-items:center;gap:.8em;margin:.6em 0}.meter{width:320px;height:14px;background:#eaeef2;
border-radius:7px;overflow:hidden}.meter span{display:block;height:100%;background:#1a7f37}
details{margin-top:1em}pre{background:#f6f8fa;padding:.8em;overflow:auto;max-height:30em;font-size:.8em}
footer{margin-top:3em;color:#57606a;font-size:.85em;border-top:1px solid #d0d7de;padding-top:.6em}
section.certificate{margin-bottom:2.5em}
"""
