"""build_certificate fields, strict JSON encoding, large-region summaries, the atomic writer."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest

from simcert.certificate import (
    REGION_INLINE_LIMIT,
    build_certificate,
    dumps,
    region_record,
    region_sha256,
    to_strict_json,
    write_json_atomic,
)
from simcert.errors import InputError
from simcert.network import Dense, Network
from simcert.spec import Box, EpsEquivalence
from simcert.verify import verify


def _strict_loads(text: str):
    def bad(token: str):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=bad)


def test_verify_certificate_fields(pair) -> None:
    box = Box(-np.ones(4), np.ones(4))
    prop = EpsEquivalence(0.5)
    res = verify(pair.f, pair.g, box, prop)
    cert = build_certificate("verify", [(pair.ref, pair.f), (pair.twin, pair.g)], box, prop.to_json(), res.to_dict(),
                             extra={"argv": ["simcert", "verify"], "region_source": {"kind": "test"}})
    for key in ("simcert_version", "command", "models", "region", "property", "method", "verdict", "bounds",
                "counterexample", "stats", "argv"):
        assert key in cert, key
    assert cert["verdict"] == res.verdict == "holds"
    assert cert["models"][0]["sha256"] == hashlib.sha256(pair.ref.read_bytes()).hexdigest()
    assert cert["models"][1]["path"] == str(pair.twin) and cert["models"][1]["format"] == "nnet"
    assert cert["models"][0]["summary"]["layers"][0] == "dense 4->32"
    assert cert["region"]["source"] == {"kind": "test"} and cert["region"]["sha256"] == region_sha256(box)
    assert cert["method"]["name"] == res.method
    _strict_loads(dumps(cert))


def test_certify_statistical_fields() -> None:
    net = Network([Dense(np.eye(2), np.zeros(2))], (2,))
    result = {"verdict": "holds", "method": "simcert", "confidence": 0.999, "samples": 1000,
              "violation_rate_upper": 0.0069, "proven_fraction": 0.25, "deviation_quantile_upper": 0.01,
              "expected_deviation_upper": math.inf, "stats": {"time_s": 1.0}}
    cert = build_certificate("certify", [(None, net), (None, net)], Box([0, 0], [1, 1]), {"type": "x"}, result)
    assert cert["confidence"] == 0.999 and cert["samples"] == 1000 and cert["proven_fraction"] == 0.25
    assert cert["expected_deviation_upper"] == "inf"
    assert cert["method"] == {"name": "simcert"}
    assert cert["models"][0]["path"] is None and cert["models"][0]["sha256"] is None


def test_strict_json_non_finite() -> None:
    obj = {"a": math.inf, "b": -math.inf, "c": math.nan, "d": np.array([1.0, np.inf]), "e": (np.float32(2), True)}
    assert to_strict_json(obj) == {"a": "inf", "b": "-inf", "c": "nan", "d": [1.0, "inf"], "e": [2.0, True]}
    _strict_loads(dumps(obj))
    with pytest.raises(TypeError):
        to_strict_json({"x": object()})


def test_large_region_summary() -> None:
    n = REGION_INLINE_LIMIT + 1
    lo = np.zeros(n)
    hi = np.linspace(0, 1, n)
    rec = region_record(Box(lo, hi))
    assert "lower" not in rec and rec["dim"] == n
    assert rec["summary"]["width_max"] == 1.0 and rec["summary"]["fixed_inputs"] == 1
    expected = hashlib.sha256(lo.astype("<f8").tobytes() + hi.astype("<f8").tobytes()).hexdigest()
    assert rec["sha256"] == expected
    small = region_record(Box(lo[:3], hi[:3] + 1))
    assert small["lower"] == [0.0, 0.0, 0.0]


def test_write_json_atomic(tmp_path: Path, capsys) -> None:
    p = tmp_path / "c.json"
    write_json_atomic(p, {"x": math.inf})
    assert json.loads(p.read_text()) == {"x": "inf"}
    with pytest.raises(TypeError):
        write_json_atomic(p, {"x": object()})  # encoding fails before anything is written
    assert json.loads(p.read_text()) == {"x": "inf"}
    assert [q.name for q in tmp_path.iterdir()] == ["c.json"]
    with pytest.raises(InputError, match="does not exist"):
        write_json_atomic(tmp_path / "no" / "c.json", {})
    write_json_atomic("-", {"y": 1})
    assert json.loads(capsys.readouterr().out) == {"y": 1}
