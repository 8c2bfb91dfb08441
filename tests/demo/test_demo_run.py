"""`simcert demo` end to end, run once as a user would (a subprocess), then its outputs are inspected."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simcert.demo import TWINS
from simcert.report.html import load_certificate, section_id


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("demo") / "simcert-demo"
    proc = subprocess.run([sys.executable, "-m", "simcert.cli", "demo", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    return proc, out


def test_demo_exits_0_and_prints_the_summary(demo_run) -> None:
    proc, out = demo_run
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress on a pipe
    assert "does each compressed twin g behave like its original f?" in proc.stdout
    assert f"report: {out / 'index.html'}" in proc.stdout
    for twin in TWINS:
        assert twin in proc.stdout


def test_demo_writes_models_and_parseable_certificates(demo_run) -> None:
    _, out = demo_run
    from simcert.network.io import load

    for model in ("control", "digits"):
        for name in ("reference", *TWINS):
            net = load(out / model / f"{name}.onnx")
            assert net.input_size == (2 if model == "control" else 64)
    certs = {p.relative_to(out).as_posix(): load_certificate(p) for p in out.glob("*/*.cert.json")}
    assert len(certs) >= 4 + 8 + 1
    for rel, cert in certs.items():
        assert cert["format"] == "simcert-certificate/1" and cert["verdict"] in ("holds", "violated", "unknown")
        for m in cert["models"]:
            assert Path(m["path"]).is_file(), (rel, m["path"])
    # every eps check that is not proven has a probabilistic certificate
    for rel, cert in certs.items():
        if rel.endswith(".eps.cert.json") and cert["verdict"] != "holds":
            prob = certs[rel.replace(".eps.", ".certify.")]
            assert prob["command"] == "certify" and prob["confidence"] == 0.999
            assert 0.0 <= prob["violation_rate_upper"] <= 1.0
    # float16 twins are proven equivalent; the rsm certificate covers 20 balls
    assert certs["control/float16.eps.cert.json"]["verdict"] == "holds"
    assert certs["digits/float16.top1.cert.json"]["verdict"] == "holds"
    assert certs["digits/int8.rsm.cert.json"]["summary"]["samples"] == 20
    # a counterexample in a certificate really violates eps on the saved models
    bad = [c for c in certs.values() if c["command"] == "verify" and c["verdict"] == "violated"]
    assert bad
    for c in bad:
        f, g = (load(m["path"]) for m in c["models"])
        x = np.asarray(c["counterexample"]["input"])[None]
        if c["property"]["type"] == "eps-equivalence":
            assert np.abs(g(x) - f(x)).max() > c["property"]["eps"]


def test_demo_report_links_every_certificate(demo_run) -> None:
    _, out = demo_run
    page = (out / "index.html").read_text()
    assert "<h2>Summary</h2>" in page
    for p in out.glob("*/*.cert.json"):
        sid = section_id(p.relative_to(out).as_posix())
        assert f"id='{sid}'" in page and f"href='#{sid}'" in page
    assert "data-kind='heatmap'" in page and "data-kind='histogram'" in page and "data-kind='rsm-matrix'" in page
    assert "https://" not in page


def test_demo_region_files_work_with_verify(demo_run, capsys) -> None:
    from simcert.cli import main

    _, out = demo_run
    c = out / "control"
    code = main(["verify", str(c / "reference.onnx"), str(c / "float16.onnx"), "--lower", str(c / "region_lower.csv"),
                 "--upper", str(c / "region_upper.csv"), "--eps", "0.02", "--json", "-"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "holds"


def test_demo_out_must_be_a_directory(tmp_path: Path, capsys) -> None:
    from simcert.cli import main

    (tmp_path / "f").write_text("x")
    assert main(["demo", "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "exists and is not a directory" in err
