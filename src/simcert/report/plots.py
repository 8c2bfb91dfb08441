"""Figures of the HTML report, drawn with matplotlib (Agg, no pyplot state) and returned as data URIs.

Every function takes plain numbers (never models or files) and returns a `Plot`: the figure encoded as a
`data:` URI (SVG for charts, PNG for the heat map's raster), so the report is one self-contained file. The
output is deterministic: fixed SVG id salt, no creation date.
"""

from __future__ import annotations

import base64
import io
import math
from dataclasses import dataclass
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg", force=False)

import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = [
    "Plot",
    "bounds_chart",
    "deviation_histogram",
    "slice_heatmap",
    "deviation_curve",
    "rsm_matrix",
    "finite",
]

_RC = {"svg.fonttype": "none", "svg.hashsalt": "simcert", "font.size": 9, "axes.titlesize": 10}
HOLDS, VIOLATED, UNKNOWN, EPS_COLOR = "#1a7f37", "#cf222e", "#9a6700", "#cf222e"


@dataclass(frozen=True)
class Plot:
    """A rendered figure: `kind` (bounds, histogram, heatmap, curve, rsm-matrix), a `data:` URI and alt text."""

    kind: str
    uri: str
    alt: str


def finite(v: Any) -> float:
    """A float from a certificate value: the strings "inf"/"-inf"/"nan" become the floats; None becomes nan."""
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def _encode(fig: Figure, kind: str, alt: str, fmt: str = "svg") -> Plot:
    buf = io.BytesIO()
    with matplotlib.rc_context(_RC):
        if fmt == "svg":
            fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
            mime = "image/svg+xml"
        else:
            fig.savefig(buf, format="png", dpi=90, metadata={"Software": None}, bbox_inches="tight")
            mime = "image/png"
    return Plot(kind, f"data:{mime};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}", alt)


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(_RC):
        return Figure(figsize=(width, height))


def bounds_chart(
    rows: Sequence[str],
    lower: Sequence[float],
    upper: Sequence[float],
    eps: float | None = None,
    zero_line: bool = False,
    observed: Sequence[tuple[float, float]] | None = None,
    xlabel: str = "certified bounds of g - f over the region",
) -> Plot:
    """Certified interval [lower_k, upper_k] per row as a horizontal bar, against the band [-eps, eps].

    A bar inside the band is green (the row is proven), outside red or amber; infinite ends are drawn to
    the plot's edge with an arrow. `zero_line` marks 0 instead of a band (margins that must stay > 0);
    `observed` adds the values seen at concrete points as dots.
    """
    lo = np.array([finite(v) for v in lower])
    hi = np.array([finite(v) for v in upper])
    k = len(rows)
    with matplotlib.rc_context(_RC):
        fig = _figure(6.4, 0.9 + 0.32 * k)
        ax = fig.add_subplot()
        fin = np.concatenate([lo[np.isfinite(lo)], hi[np.isfinite(hi)]])
        ref = [abs(eps)] if eps is not None else []
        span = max([float(np.max(np.abs(fin))) if fin.size else 1.0, *ref, 1e-12])
        edge = 1.15 * span
        for i in range(k):
            a = lo[i] if np.isfinite(lo[i]) else -edge
            b = hi[i] if np.isfinite(hi[i]) else edge
            if eps is not None:
                ok = -eps <= lo[i] and hi[i] <= eps
            else:
                ok = lo[i] > 0 if zero_line else True
            color = HOLDS if ok else (VIOLATED if eps is not None and (lo[i] > eps or hi[i] < -eps) else UNKNOWN)
            ax.barh(i, b - a, left=a, height=0.55, color=color, alpha=0.85)
            if not np.isfinite(lo[i]):
                ax.annotate("", xy=(-edge, i), xytext=(-edge * 0.8, i), arrowprops={"arrowstyle": "->"})
            if not np.isfinite(hi[i]):
                ax.annotate("", xy=(edge, i), xytext=(edge * 0.8, i), arrowprops={"arrowstyle": "->"})
        if observed is not None:
            for i, (a, b) in enumerate(observed):
                ax.plot([finite(a), finite(b)], [i, i], "o", color="black", ms=3)
        if eps is not None:
            ax.axvspan(-eps, eps, color=HOLDS, alpha=0.08, lw=0)
            for s in (-eps, eps):
                ax.axvline(s, color=EPS_COLOR, ls="--", lw=1)
            ax.text(eps, k - 0.4, f" eps = {eps:g}", color=EPS_COLOR, va="bottom", ha="left")
        if zero_line:
            ax.axvline(0.0, color=EPS_COLOR, ls="--", lw=1)
        ax.set_yticks(range(k), list(rows))
        ax.set_ylim(-0.6, k - 0.4 + (0.5 if eps is not None else 0.0))
        ax.invert_yaxis()
        ax.set_xlim(-edge, edge)
        ax.set_xlabel(xlabel)
        ax.grid(axis="x", alpha=0.3)
    proven = sum(1 for i in range(k) if eps is not None and -eps <= lo[i] and hi[i] <= eps)
    alt = f"certified bounds of {k} rows" + (f"; {proven} of {k} within eps = {eps:g}" if eps is not None else "")
    return _encode(fig, "bounds", alt)


def deviation_histogram(
    deviations: np.ndarray,
    eps: float,
    quantile_upper: float | None = None,
    quantile_p: float | None = None,
    rate_upper: float | None = None,
    confidence: float | None = None,
    bins: int = 60,
) -> Plot:
    """Histogram (log counts) of sampled deviations max_k |g_k - f_k| with eps, the certified deviation
    quantile bound and the certified violation rate marked."""
    d = np.asarray(deviations, dtype=np.float64).reshape(-1)
    d = d[np.isfinite(d)]
    marks = [eps] + ([quantile_upper] if quantile_upper is not None and np.isfinite(quantile_upper) else [])
    top = max([float(d.max()) if d.size else 0.0, *marks]) * 1.05 or 1.0
    with matplotlib.rc_context(_RC):
        fig = _figure(6.4, 3.0)
        ax = fig.add_subplot()
        edges = np.linspace(0.0, top, bins + 1)
        counts, _ = np.histogram(d, edges)
        above = edges[:-1] >= eps
        ax.stairs(np.where(above, 0, counts), edges, fill=True, color="#57606a", alpha=0.85)
        ax.stairs(np.where(above, counts, 0), edges, fill=True, color=VIOLATED, alpha=0.85)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.axvline(eps, color=EPS_COLOR, lw=1.5, label=f"eps = {eps:g}")
        if quantile_upper is not None and np.isfinite(quantile_upper):
            p = "" if quantile_p is None else f" (p = {quantile_p:g})"
            ax.axvline(quantile_upper, color="#0969da", ls="--", lw=1.5, label=f"certified quantile bound{p}")
        share = float(np.mean(d > eps)) if d.size else 0.0
        text = f"sampled share above eps: {100 * share:.3g}%"
        if rate_upper is not None:
            conf = "" if confidence is None else f" ({100 * confidence:g}% confidence)"
            text += f"\ncertified violation rate <= {100 * rate_upper:.3g}%{conf}"
        ax.text(0.98, 0.95, text, transform=ax.transAxes, ha="right", va="top",
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "#d0d7de"})
        ax.set_xlabel("max_k |g_k(x) - f_k(x)| at sampled x")
        ax.set_ylabel("samples")
        ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.78), fontsize=8)
        ax.set_xlim(0.0, top)
    return _encode(fig, "histogram", f"histogram of {d.size} sampled deviations; {100 * share:.3g}% above eps {eps:g}")


def slice_heatmap(
    xs: np.ndarray,
    ys: np.ndarray,
    values: np.ndarray,
    eps: float | None,
    labels: tuple[str, str],
    points: Sequence[tuple[float, float]] = (),
    title: str = "",
) -> Plot:
    """|g - f| on a grid (values[i, j] at (xs[j], ys[i])) with the eps contour and counterexamples (x markers)."""
    v = np.asarray(values, dtype=np.float64)
    with matplotlib.rc_context(_RC):
        fig = _figure(5.2, 4.2)
        ax = fig.add_subplot()
        im = ax.imshow(v, origin="lower", aspect="auto", cmap="magma",
                       extent=(float(xs[0]), float(xs[-1]), float(ys[0]), float(ys[-1])))
        cb = fig.colorbar(im, ax=ax)
        cb.set_label("max_k |g_k - f_k|")
        if eps is not None and np.nanmin(v) < eps < np.nanmax(v):
            ax.contour(xs, ys, v, levels=[eps], colors=["#39d353"], linewidths=1.2)
            cb.ax.axhline(eps, color="#39d353", lw=2)
        if len(points):
            p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
            ax.plot(p[:, 0], p[:, 1], "x", color="#00e5ff", ms=9, mew=2.2, label="counterexample")
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        if title:
            ax.set_title(title)
    alt = f"heat map of |g - f| over {labels[0]} and {labels[1]}; max {np.nanmax(v):.4g}"
    return _encode(fig, "heatmap", alt, fmt="png")


def deviation_curve(
    xs: np.ndarray, values: np.ndarray, eps: float | None, label: str, points: Sequence[float] = ()
) -> Plot:
    """|g - f| along one input (1-D regions) with eps and counterexamples marked."""
    with matplotlib.rc_context(_RC):
        fig = _figure(6.4, 2.8)
        ax = fig.add_subplot()
        ax.plot(xs, values, color="#0969da")
        if eps is not None:
            ax.axhline(eps, color=EPS_COLOR, ls="--", label=f"eps = {eps:g}")
        for p in points:
            ax.axvline(float(p), color=VIOLATED, lw=1)
        ax.set_xlabel(label)
        ax.set_ylabel("max_k |g_k - f_k|")
        ax.grid(alpha=0.3)
        if eps is not None:
            ax.legend(fontsize=8)
    return _encode(fig, "curve", f"|g - f| along {label}; max {np.nanmax(values):.4g}")


def rsm_matrix(
    lower: np.ndarray,
    upper: np.ndarray | None,
    row_labels: Sequence[int | str],
) -> Plot:
    """Class-by-class matrices of margin bounds: row r is the label `row_labels[r]`, column j the other class;
    left the certified lower bound of Pi_cj, right (when given) the certified upper bound (NaN = no value,
    e.g. the diagonal). Diverging colours around 0: blue > 0 (f's margin larger than g's), red < 0. A row with
    every left cell >= 0 proves g => f for that label; every right cell <= 0 proves f => g."""
    mats = [("certified lower bound of Pi_cj", np.asarray(lower, dtype=np.float64))]
    if upper is not None:
        mats.append(("certified upper bound of Pi_cj", np.asarray(upper, dtype=np.float64)))
    rows, cols = mats[0][1].shape
    fin = np.concatenate([m[np.isfinite(m)] for _, m in mats])
    span = float(np.max(np.abs(fin))) if fin.size else 1.0
    span = span if span > 0 else 1.0
    with matplotlib.rc_context(_RC):
        fig = _figure(min(1.0 + 0.62 * cols, 7.5) * len(mats) + 0.8, min(1.2 + 0.45 * rows, 7.0))
        axes = fig.subplots(1, len(mats), squeeze=False)[0]
        for ax, (title, m) in zip(axes, mats):
            shown = np.where(np.isfinite(m), np.clip(m, -span, span), np.nan)
            im = ax.imshow(shown, cmap="RdBu", norm=TwoSlopeNorm(0.0, -span, span), aspect="auto")
            if rows * cols <= 144:
                for i in range(rows):
                    for j in range(cols):
                        val = m[i, j]
                        if np.isnan(val):
                            continue
                        txt = "-inf" if val == -np.inf else ("inf" if val == np.inf else f"{val:.2g}")
                        ax.text(j, i, txt, ha="center", va="center", fontsize=6.5,
                                color="white" if np.isfinite(val) and abs(val) > 0.6 * span else "black")
            ax.set_xticks(range(cols))
            ax.set_yticks(range(rows), [str(r) for r in row_labels])
            ax.set_xlabel("other class j")
            ax.set_ylabel("label c")
            ax.set_title(title)
        fig.colorbar(im, ax=list(axes), shrink=0.8)
    neg = int(np.sum(mats[0][1][np.isfinite(mats[0][1])] < 0))
    return _encode(fig, "rsm-matrix", f"{rows}x{cols} matrices of margin bounds; {neg} negative lower bounds")
