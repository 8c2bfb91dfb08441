"""`simcert certify --top1` and the certify progress view (stderr, only on a terminal, never with --quiet)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

import simcert.cli_commands.certify as certify_module  # the certify body looks up _stderr_console here
from simcert.stats.certify import CertifyProgress


def test_certify_top1_writes_a_top1_certificate(run, pair, tmp_path: Path) -> None:
    out = tmp_path / "c.json"
    r = run("certify", pair.ref, pair.twin, *pair.region(), "--top1", "--samples", 3000, "--json", out)
    assert r.code == 0, r.err
    cert = json.loads(out.read_text())
    assert cert["property"]["type"] == "top1" and cert["command"] == "certify"
    assert cert["top1_disagreement_rate_upper"] == cert["violation_rate_upper"]
    # the reported disagreement bound covers the disagreement measured on fresh samples
    x = np.random.default_rng(5).uniform(-1, 1, (20_000, 4))
    truth = float(np.mean(np.argmax(pair.f(x), axis=1) != np.argmax(pair.g(x), axis=1)))
    assert truth <= cert["violation_rate_upper"] + 0.01


@pytest.mark.parametrize("extra", [[], ["--top1", "--eps", "0.1"], ["--top1", "--output", "0"]])
def test_certify_property_options_are_checked(run, pair, extra) -> None:
    r = run("certify", pair.ref, pair.twin, *pair.region(), "--samples", 100, *extra)
    assert r.code == 2 and "error" in r.err


def _fake_terminal(monkeypatch) -> io.StringIO:
    buf = io.StringIO()
    monkeypatch.setattr(certify_module, "_stderr_console",
                        lambda: Console(file=buf, force_terminal=True, width=160, highlight=False))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    return buf


def test_progress_shows_on_a_terminal_and_not_with_quiet(run, pair, monkeypatch) -> None:
    buf = _fake_terminal(monkeypatch)
    r = run("certify", pair.ref, pair.twin, *pair.region(), "--eps", 3 * pair.sampled_max, "--samples", 20_000)
    assert r.code == 0
    shown = buf.getvalue()
    assert "samples" in shown and "strata" in shown and "rate <=" in shown
    buf.truncate(0)
    buf.seek(0)
    r = run("certify", pair.ref, pair.twin, *pair.region(), "--eps", 3 * pair.sampled_max, "--samples", 2000, "-q")
    assert r.code == 0 and buf.getvalue() == "" and r.out == ""


def test_no_progress_when_stderr_is_not_a_terminal(run, pair, monkeypatch) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(certify_module, "_stderr_console", lambda: Console(file=buf, force_terminal=True))
    r = run("certify", pair.ref, pair.twin, *pair.region(), "--eps", 3 * pair.sampled_max, "--samples", 2000)
    assert r.code == 0 and buf.getvalue() == "" and r.err == ""


def test_progress_view_status_lines() -> None:
    from simcert.report.terminal import CertifyProgressView

    buf = io.StringIO()
    view = CertifyProgressView(Console(file=buf, force_terminal=True, width=200), refresh_s=0.0)
    states = [
        CertifyProgress("partition", 0.1, 0.5, 0.01, 40, 0, 0, None, proof_rate_upper=0.51),
        CertifyProgress("sampling", 0.2, 0.5, 0.01, 40, 4096, 3, None, proof_rate_upper=0.51, target_samples=8192),
        CertifyProgress("done", 0.3, 0.5, 0.01, 40, 8192, 5, 0.0123, proof_rate_upper=0.51, target_samples=8192),
    ]
    texts = [CertifyProgressView.status(s) for s in states]
    assert texts[0] == "proven 0.5 | strata 40 | rate <= 0.51 (proofs)"
    assert "samples 4,096/8,192" in texts[1] and "violations 3" in texts[1]
    assert texts[2].endswith("rate <= 0.0123")
    with view:
        for s in states:
            view(s)
    assert "0.0123" in buf.getvalue()
