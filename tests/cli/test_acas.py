"""The shared ACAS Xu 1_1 float16 pair through the CLI (skips without the benchmark data)."""

from __future__ import annotations

import json
from pathlib import Path


def test_acas_prop3_eps_holds(run, bench: Path, tmp_path: Path) -> None:
    ref = bench / "reludiff-icse2020/nnet/ACASXU_run2a_1_1_batch_2000.nnet"
    twin = bench / "neurodiff-ase2020/compressed_nnets/ACASXU_run2a_1_1_batch_2000_16bit.nnet"
    out = tmp_path / "out.json"
    r = run("verify", ref, twin, "--acas-prop", "3", "--eps", "0.05", "--json", out)
    assert r.code == 0, r.err
    cert = json.loads(out.read_text())
    assert cert["verdict"] == "holds"
    assert cert["property"]["outputs"] == [0]  # property 3's target output is the default --output
    assert cert["region"]["source"]["property"] == "3"
    assert cert["region"]["source"]["raw_lower"] == [1500.0, -0.06, 3.10, 980.0, 960.0]
    # normalized with the .nnet header: rho in [(1500 - 19791.091) / 60261, (1800 - 19791.091) / 60261]
    assert abs(cert["region"]["lower"][0] - (1500 - 19791.091) / 60261) < 1e-12
    (b,) = cert["bounds"]
    assert b["row"] == "g_0 - f_0" and -0.05 <= b["lower"] <= b["upper"] <= 0.05


def test_acas_explicit_output_overrides_target(run, bench: Path) -> None:
    ref = bench / "reludiff-icse2020/nnet/ACASXU_run2a_1_1_batch_2000.nnet"
    twin = bench / "neurodiff-ase2020/compressed_nnets/ACASXU_run2a_1_1_batch_2000_16bit.nnet"
    r = run("verify", ref, twin, "--acas-prop", "3", "--eps", "0.05", "--output", "2", "--json", "-")
    assert r.code == 0, r.err
    assert json.loads(r.out)["property"]["outputs"] == [2]
