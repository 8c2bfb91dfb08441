"""The HTML report: certificate loading, plain-words verdicts, sections, figures and self-containment."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from simcert.errors import InputError
from simcert.report.html import load_certificate, render_report, section_id, verdict_sentence, write_report


def _figures(page: str) -> dict[str, list[str]]:
    """kind -> data URIs of the <figure class='plot'> elements of a page."""
    out: dict[str, list[str]] = {}
    for kind, uri in re.findall(r"<figure class='plot' data-kind='([a-z-]+)'><img src='([^']+)'", page):
        out.setdefault(kind, []).append(uri)
    return out


def _decode(uri: str) -> bytes:
    head, data = uri.split(",", 1)
    assert head.endswith(";base64")
    return base64.b64decode(data)


# ------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize(
    "content, fragment",
    [
        (None, "no such file"),
        ("{not json", "not valid JSON (line 1"),
        ("[1, 2]", "a JSON list"),
        ('{"command": "verify"}', "verdict None"),
        ('{"verdict": "holds"}', "no 'command' field"),
        ('{"command": "verify", "verdict": "maybe"}', "verdict 'maybe'"),
    ],
)
def test_bad_certificate_is_an_input_error_naming_the_file(tmp_path: Path, content: str | None, fragment: str) -> None:
    path = tmp_path / "c.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError) as err:
        load_certificate(path)
    assert str(path) in str(err.value) and fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_directory_is_not_a_certificate(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        load_certificate(tmp_path)


def test_section_ids() -> None:
    assert section_id("control/int8-a8.eps.cert.json") == "cert-control-int8-a8-eps"
    assert section_id("a b.json") == "cert-a-b"
    assert section_id("control/x.cert.json") != section_id("digits/x.cert.json")


# ------------------------------------------------------------------------------------------ words


def test_verdict_sentences_say_what_was_found(certs: dict[str, Path]) -> None:
    holds = load_certificate(certs["holds"])
    s = verdict_sentence(holds)
    assert s.startswith("Proven: for every input in the region") and "within 10" in s
    worst = max(max(abs(b["lower"]), abs(b["upper"])) for b in holds["bounds"])
    assert f"{worst:.4g}" in s

    bad = load_certificate(certs["violated"])
    s = verdict_sentence(bad)
    ce = bad["counterexample"]
    dev = np.abs(np.asarray(ce["g"]) - np.asarray(ce["f"]))
    assert s.startswith("Violated: at x = (") and f"{dev.max():.4g} > eps = 0.001" in s
    assert f"output {int(np.argmax(dev))} of g" in s

    top1 = load_certificate(certs["top1"])
    assert top1["verdict"] == "violated"
    ce = top1["counterexample"]
    assert (f"reference picks class {int(np.argmax(ce['f']))} and the twin picks {int(np.argmax(ce['g']))}"
            in verdict_sentence(top1))

    prob = load_certificate(certs["certify"])
    s = verdict_sentence(prob)
    assert s.startswith("Certified (probabilistic). With 99.9% confidence")
    assert f"{100 * prob['violation_rate_upper']:.3g}% of inputs drawn uniformly" in s
    assert "not a proof for every input" in s


def test_unknown_and_rejected_sentences() -> None:
    unknown = {"command": "verify", "verdict": "unknown", "property": {"type": "eps-equivalence", "eps": 0.1},
               "bounds": [{"row": "g_0 - f_0", "lower": -0.3, "upper": 0.2}], "stats": {"proven_fraction": 0.25}}
    s = verdict_sentence(unknown)
    assert s.startswith("Not decided") and "0.3 against eps = 0.1" in s and "25% of the region" in s
    rejected = {"command": "certify", "verdict": "violated", "confidence": 0.99, "rate": 0.01,
                "violation_rate_upper": 0.2, "violation_rate_lower": 0.05,
                "property": {"type": "eps-equivalence", "eps": 0.1},
                "counterexample": {"input": [0.5], "f": [0.0], "g": [0.3]}}
    s = verdict_sentence(rejected)
    assert s.startswith("Rejected.") and "at least 5%" in s and "differs from f by 0.3 > eps = 0.1" in s


# ------------------------------------------------------------------------------------------ pages


def test_report_of_each_certificate_kind(certs: dict[str, Path], tmp_path: Path) -> None:
    pairs = [(p.name, load_certificate(p)) for p in certs.values()]
    page = render_report(pairs, title="t", base_dir=tmp_path)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<section class='certificate'") == 4
    for name, cert in pairs:
        assert f"id='{section_id(name)}' data-verdict='{cert['verdict']}'" in page
    figs = _figures(page)
    # a bounds chart per certificate, a heat map per certificate (2-D region), a histogram for certify
    assert len(figs["bounds"]) == 4 and len(figs["heatmap"]) == 4 and len(figs["histogram"]) == 1
    for uri in figs["bounds"] + figs["histogram"]:
        svg = _decode(uri)
        assert svg.lstrip().startswith(b"<?xml") and b"<svg" in svg
    for uri in figs["heatmap"]:
        assert _decode(uri)[:8] == b"\x89PNG\r\n\x1a\n"
    # the eps mark is in the chart as text (svg.fonttype none)
    assert b"eps = 0.001" in _decode(figs["bounds"][0])
    # proven fraction meter, model table, counterexample table, raw JSON
    assert "class='meter'" in page and "2-12-12-3 MLP" in page
    assert "Counterexample (confirmed by running both networks)" in page
    assert page.count("<details><summary>certificate JSON") == 4
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)=['"](?!data:|#)""", page)
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_single_certificate_puts_the_verdict_first(certs: dict[str, Path], tmp_path: Path) -> None:
    cert = load_certificate(certs["violated"])
    page = render_report([("v.cert.json", cert)], base_dir=tmp_path)
    first = page.index("verdict-text")
    assert page.index("<section") > first
    assert page[first:first + 400].count("Violated: at x = (") == 1
    assert page.count("class='verdict-text'") == 1  # not repeated inside the section


def test_heat_map_draws_counterexamples_and_needs_the_same_model_files(pair, certs: dict[str, Path],
                                                                       tmp_path: Path) -> None:
    cert = load_certificate(certs["violated"])
    page = render_report([("v", cert)], base_dir=tmp_path)
    assert "x: counterexamples" in page and len(_figures(page)["heatmap"]) == 1
    # a changed model file is not used (its sha256 differs from the certificate's)
    pair.twin.write_bytes(pair.twin.read_bytes() + b"\0")
    page = render_report([("v", cert)], base_dir=tmp_path)
    assert "heatmap" not in _figures(page) and "changed since the certificate was written" in page
    # a missing one is reported, not an error
    pair.ref.unlink()
    page = render_report([("v", cert)], base_dir=tmp_path)
    assert "not found" in page and "bounds" in _figures(page)


def test_models_are_found_next_to_the_certificate(certs: dict[str, Path], tmp_path: Path) -> None:
    cert = load_certificate(certs["holds"])
    for m in cert["models"]:
        m["path"] = "/nonexistent/dir/" + Path(m["path"]).name
    assert "heatmap" in _figures(render_report([("h", cert)], base_dir=tmp_path))
    assert "heatmap" not in _figures(render_report([("h", cert)], base_dir=tmp_path / "elsewhere"))


def test_high_dimensional_regions_get_no_slice(certs: dict[str, Path], tmp_path: Path) -> None:
    cert = load_certificate(certs["holds"])
    cert["region"] = {"type": "box", "dim": 20, "lower": [0.0] * 20, "upper": [1.0] * 20}
    page = render_report([("h", cert)], base_dir=tmp_path)
    assert "heatmap" not in _figures(page) and "the region has 20 free inputs" in page


def test_rsm_dataset_matrix() -> None:
    samples = [
        {"label": 0, "lower": [0.0, 0.5, -0.2], "upper": [0.0, 0.9, 0.1]},
        {"label": 0, "lower": [0.0, 0.1, 0.3], "upper": [0.0, 0.4, 0.6]},
        {"label": 2, "lower": [-1.0, "-inf", 0.0], "upper": [1.0, "inf", 0.0]},
    ]
    cert = {"command": "rsm", "verdict": "unknown", "property": {"type": "rsm-dataset"}, "samples": samples,
            "summary": {"samples": 3, "radius": 0.01,
                        "implications": {"g=>f": {"proven": 1 / 3, "refuted": 1 / 3, "unknown": 1 / 3},
                                         "f=>g": {"proven": 0.0, "refuted": 1.0, "unknown": 0.0}}}}
    page = render_report([("r", cert)])
    figs = _figures(page)
    assert list(figs) == ["rsm-matrix"]
    svg = _decode(figs["rsm-matrix"][0]).decode()
    # row 0 lower bounds: min over the two balls of label 0 -> 0.1 and -0.2; row 2: -1 and -inf
    for text in (">0.1<", ">-0.2<", ">-1<", ">-inf<", ">0.9<", ">0.6<"):
        assert text in svg, text
    assert "proven on 33.3% of them" in page and "f =&gt; g is proven on 0%" in page


def test_write_report_is_atomic_and_complete(certs: dict[str, Path], tmp_path: Path) -> None:
    out = write_report(tmp_path / "r.html", [("h", load_certificate(certs["holds"]))], base_dir=tmp_path)
    assert out.read_text().rstrip().endswith("</html>")
    assert not list(tmp_path.glob(".r.html.*"))


def test_certificate_json_is_escaped(certs: dict[str, Path]) -> None:
    cert = load_certificate(certs["holds"])
    cert["argv"] = ["<script>alert(1)</script>"]
    page = render_report([("h", cert)])
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert json.loads(json.dumps(cert))  # unchanged input
