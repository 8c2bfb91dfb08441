"""The "quantized" benchmark suite on a tiny size: rows are well formed and every certified bound contains
the sampled deviations (simcert's forward pass and onnxruntime's own execution of the quantized twin)."""

from __future__ import annotations

import math

import pytest

from simcert.paths import benchmarks_dir

pytestmark = pytest.mark.skipif(benchmarks_dir() is None, reason="shared benchmark data not found")


def _num(v) -> float:
    return float(v) if v != "" else math.nan


def test_tiny_acas_rows_sane_and_sound():
    from simcert.bench.quantized import COLUMNS, render_section, row_is_sound, quantized_suite

    rows = list(quantized_suite(twins=("ort-int8",), nets=("1_1",), verify_nets=("1_1",), certify_nets=(),
                                mnist=False, acas_samples=500, timeout=1.0))
    bound = [r for r in rows if r["kind"] == "bound"]
    ver = [r for r in rows if r["kind"] == "verify"]
    assert len(bound) == 2 * 3 and len(ver) == 2 * 3   # props 1 and 3, three engines / three eps factors
    assert all(tuple(r) == COLUMNS for r in rows)
    for r in bound:
        assert r["method"] in ("interval", "crown", "diff")
        assert _num(r["lower"]) <= _num(r["sampled_lower"]) <= _num(r["sampled_upper"]) <= _num(r["upper"])
        # onnxruntime ran the ORT twin: its sampled deviation is there and inside the certified bound
        assert r["ort_sampled_lower"] != "" and r["sound"] == 1 and row_is_sound(r)
    for r in ver:
        assert r["result"] in ("holds", "violated", "unknown") and r["method"] == "diff"  # QDQ twin aligns
        s_max = max(abs(_num(r["sampled_lower"])), abs(_num(r["sampled_upper"])),
                    abs(_num(r["ort_sampled_lower"])), abs(_num(r["ort_sampled_upper"])))
        if r["result"] == "holds":   # a proof must not contradict a sampled point
            assert s_max <= _num(r["eps"])
        if r["result"] == "violated":
            assert abs(_num(r["cex_deviation"])) > _num(r["eps"]) and r["cex_ort_confirmed"] == 1
        assert row_is_sound(r)
    # eps below the sampled max can never be proven; the violation is found at once here
    below = [r for r in ver if r["eps_factor"] == 0.5]
    assert below and all(r["result"] == "violated" for r in below)
    text = "\n".join(render_section([{k: str(v) for k, v in r.items()} for r in rows]))
    assert "## Fully quantized twins (ONNX Runtime's quantizer)" in text and "| ort-int8 | 1 |" in text


def test_row_is_sound_detects_a_bound_that_misses_a_sample():
    from simcert.bench.quantized import _row, row_is_sound

    ok = _row(lower=-1.0, upper=1.0, sampled_lower=-0.5, sampled_upper=0.5, ort_sampled_lower=-0.5,
              ort_sampled_upper=0.9)
    assert row_is_sound(ok)
    assert not row_is_sound({**ok, "ort_sampled_upper": 1.1})
    assert not row_is_sound({**ok, "sampled_lower": -1.2})


def test_tiny_mnist_rows():
    from simcert.bench.quantized import quantized_suite, row_is_sound

    rows = list(quantized_suite(twins=("ort-int4",), nets=(), mnist=True, mnist_images=1, timeout=1.0))
    kinds = {r["kind"] for r in rows}
    assert kinds == {"mnist-bound", "mnist-verify"}
    assert len([r for r in rows if r["kind"] == "mnist-bound"]) == 2 * 3   # radii 1, 2 x three engines
    assert all(row_is_sound(r) and r["sound"] == 1 for r in rows)
