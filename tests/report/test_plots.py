"""Figures: each function returns a decodable data URI whose content reflects the numbers it was given."""

from __future__ import annotations

import base64
import math

import numpy as np

from simcert.report import plots


def _svg(p: plots.Plot) -> str:
    assert p.uri.startswith("data:image/svg+xml;base64,")
    return base64.b64decode(p.uri.split(",", 1)[1]).decode()


def test_bounds_chart_colours_rows_by_verdict() -> None:
    ok = _svg(plots.bounds_chart(["a"], [-0.01], [0.02], eps=0.05))
    bad = _svg(plots.bounds_chart(["a"], [0.06], [0.08], eps=0.05))
    open_ = _svg(plots.bounds_chart(["a"], [-0.1], [0.02], eps=0.05))
    bar = "fill: {}; opacity: 0.85"  # the bars; the eps band is the same green at opacity 0.08
    assert bar.format(plots.HOLDS) in ok and bar.format(plots.VIOLATED) not in ok
    assert bar.format(plots.VIOLATED) in bad and bar.format(plots.HOLDS) not in bad
    assert bar.format(plots.UNKNOWN) in open_
    assert "eps = 0.05" in ok


def test_bounds_chart_handles_infinite_bounds() -> None:
    p = plots.bounds_chart(["a", "b"], ["-inf", -1.0], [1.0, math.inf], eps=0.5)
    assert "1 rows" not in p.alt and "0 of 2 within eps" in p.alt


def test_histogram_reports_the_sampled_share_and_the_certificate() -> None:
    d = np.concatenate([np.full(750, 0.01), np.full(250, 0.2)])
    svg = _svg(plots.deviation_histogram(d, eps=0.1, quantile_upper=0.25, quantile_p=0.01, rate_upper=0.3,
                                         confidence=0.999))
    assert "sampled share above eps: 25%" in svg
    assert "certified violation rate &lt;= 30% (99.9% confidence)" in svg
    assert "certified quantile bound (p = 0.01)" in svg


def test_heatmap_is_a_png_and_says_its_maximum() -> None:
    xs = np.linspace(-1, 1, 21)
    vals = np.abs(np.add.outer(xs, xs))
    p = plots.slice_heatmap(xs, xs, vals, 0.5, ("x0", "x1"), [(0.5, 0.5)])
    assert p.kind == "heatmap" and p.uri.startswith("data:image/png;base64,")
    assert base64.b64decode(p.uri.split(",", 1)[1])[:4] == b"\x89PNG"
    assert "max 2" in p.alt


def test_curve_and_rsm_matrix() -> None:
    xs = np.linspace(0, 1, 11)
    assert "max 0.5" in plots.deviation_curve(xs, xs / 2, 0.25, "x0", [0.8]).alt
    lo = np.array([[np.nan, 0.2, -0.1], [0.3, np.nan, 0.4]])
    p = plots.rsm_matrix(lo, -lo, [0, 1])
    svg = _svg(p)
    assert "certified lower bound of Pi_cj" in svg and "certified upper bound of Pi_cj" in svg
    assert "1 negative lower bounds" in p.alt and ">-0.4<" in svg


def test_figures_are_deterministic() -> None:
    a = plots.bounds_chart(["a"], [-0.01], [0.02], eps=0.05)
    b = plots.bounds_chart(["a"], [-0.01], [0.02], eps=0.05)
    assert a.uri == b.uri
