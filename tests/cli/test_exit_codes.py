"""verify's exit codes on small twins: 0 holds, 1 violated, 3 unknown; and what it prints and writes."""

from __future__ import annotations

import json
from pathlib import Path

from simcert.cli import main


def test_holds_exit_0_and_certificate(run, pair, tmp_path: Path) -> None:
    out = tmp_path / "cert.json"
    r = run("verify", pair.ref, pair.twin, *pair.region(), "--eps", 3 * pair.sampled_max, "--json", out)
    assert r.code == 0, r.err
    assert r.out.startswith("verdict: holds\n")  # stdout is not a terminal: plain result only
    assert r.err == ""
    cert = json.loads(out.read_text())
    assert cert["verdict"] == "holds" and cert["command"] == "verify"
    assert [m["role"] for m in cert["models"]] == ["f", "g"]
    assert cert["region"]["lower"] == [-1.0] * 4 and cert["region"]["upper"] == [1.0] * 4
    assert cert["property"] == {"type": "eps-equivalence", "eps": 3 * pair.sampled_max, "outputs": None}
    # certified bounds must contain what sampling observes, and lie inside [-eps, eps]
    for b in cert["bounds"]:
        assert -3 * pair.sampled_max <= b["lower"] <= b["upper"] <= 3 * pair.sampled_max
    assert max(max(-b["lower"], b["upper"]) for b in cert["bounds"]) >= pair.sampled_max
    assert cert["method"]["name"] == "diff" and cert["method"]["requested"] == "auto"
    assert cert["counterexample"] is None


def test_violated_exit_1_with_confirmed_counterexample(run, pair, tmp_path: Path) -> None:
    out = tmp_path / "cert.json"
    eps = pair.sampled_max / 2
    r = run("verify", pair.ref, pair.twin, *pair.region(), "--eps", eps, "--json", out, "--quiet")
    assert r.code == 1, r.err
    assert r.out == "" and r.err == ""  # --quiet: exit code only
    cert = json.loads(out.read_text())
    assert cert["verdict"] == "violated"
    ce = cert["counterexample"]
    x = ce["input"]
    assert all(-1 <= v <= 1 for v in x)
    import numpy as np

    fx, gx = pair.f(np.array(x)), pair.g(np.array(x))
    assert np.allclose(fx, ce["f"]) and np.allclose(gx, ce["g"])
    assert np.abs(gx - fx).max() > eps


def test_unknown_exit_3_on_tiny_timeout(run, pair) -> None:
    # eps just above the true maximum needs many splits; 1 ms is not enough for them
    r = run("verify", pair.ref, pair.twin, *pair.region(), "--eps", 1.3 * pair.sampled_max, "--timeout", 0.001)
    assert r.code == 3, r.out + r.err
    assert r.out.startswith("verdict: unknown\n")


def test_json_to_stdout_is_the_only_output(run, pair) -> None:
    r = run("verify", pair.ref, pair.twin, *pair.region(), "--eps", 1.0, "--json", "-")
    assert r.code == 0
    assert json.loads(r.out)["verdict"] == "holds"


def test_output_and_top1(run, pair) -> None:
    r = run("verify", pair.ref, pair.twin, *pair.region(), "--eps", 3 * pair.sampled_max, "--output", 1, "--json", "-")
    assert r.code == 0
    d = json.loads(r.out)
    assert [b["row"] for b in d["bounds"]] == ["g_1 - f_1"] and d["property"]["outputs"] == [1]
    # top-1 on the whole box: f changes class there, so this cannot be "holds"
    r = run("verify", pair.ref, pair.twin, *pair.region(), "--top1", "--timeout", 2)
    assert r.code in (1, 3), r.out + r.err


def test_zero_width_box_is_fine(run, pair, tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("0.1,0.2,0.3,0.4\n")
    r = run("verify", pair.ref, pair.twin, "--lower", tmp_path / "p.csv", "--upper", tmp_path / "p.csv", "--eps", 1.0)
    assert r.code == 0, r.err


def test_center_radius_clip_region(run, pair, tmp_path: Path) -> None:
    (tmp_path / "c.csv").write_text("0.95\n0\n0\n0\n")
    r = run("verify", pair.ref, pair.twin, "--center", tmp_path / "c.csv", "--radius", 0.1, "--clip", "-1,1",
            "--eps", 1.0, "--json", "-")
    assert r.code == 0, r.err
    d = json.loads(r.out)
    assert d["region"]["upper"][0] == 1.0 and d["region"]["lower"][0] < 0.85 + 1e-12
    assert d["region"]["source"]["kind"] == "linf"


def test_vnnlib_region(run, pair, tmp_path: Path) -> None:
    text = "".join(f"(declare-const X_{i} Real)\n" for i in range(4)) + "(declare-const Y_0 Real)\n"
    text += "".join(f"(assert (>= X_{i} -0.5))\n(assert (<= X_{i} 0.5))\n" for i in range(4))
    (tmp_path / "r.vnnlib").write_text(text)
    r = run("verify", pair.ref, pair.twin, "--vnnlib", tmp_path / "r.vnnlib", "--eps", 1.0, "--json", "-")
    assert r.code == 0, r.err
    assert json.loads(r.out)["region"]["lower"] == [-0.5] * 4


def test_main_returns_int_for_help_and_version(capsys) -> None:
    assert main(["--help"]) == 0
    assert "verify" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert "simcert" in capsys.readouterr().out
    assert main([]) == 2


def test_certify_issues_a_certificate(run, pair, tmp_path: Path) -> None:
    out = tmp_path / "cert.json"
    r = run("certify", pair.ref, pair.twin, *pair.region(), "--eps", 3 * pair.sampled_max, "--samples", 2000,
            "--json", out)
    assert r.code == 0, r.err
    cert = json.loads(out.read_text())
    assert cert["command"] == "certify" and cert["verdict"] == "holds"
    for key in ("confidence", "samples", "violation_rate_upper", "proven_fraction", "deviation_quantile_upper",
                "expected_deviation_upper"):
        assert key in cert, key
    assert cert["confidence"] == 0.999
    assert cert["deviation_quantile_upper"] >= 0
