from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from simcert.errors import InputError
from simcert.network import Dense, Network, NnetNormalization
from simcert.spec import (
    ACAS_NETWORK_IDS,
    ACAS_NORMALIZATION,
    acas_network_id,
    acas_properties,
    acas_property,
    acas_property_names,
    acas_region,
    acas_regions,
    acas_suite,
    read_vnnlib,
)


def _nnet_header(path: Path) -> dict[str, np.ndarray]:
    """mins, maxes, means, ranges (first 5 values) read straight from a .nnet header."""
    lines = [l for l in path.read_text().splitlines() if not l.startswith("//")]
    rows = [np.array([float(v) for v in l.split(",") if v.strip()]) for l in lines[3:7]]
    return {k: r[:5] for k, r in zip(("mins", "maxes", "means", "ranges"), rows)}


def _acas_net(norm: NnetNormalization | None = None) -> Network:
    return Network([Dense(np.ones((5, 5)), np.zeros(5))], (5,), name="acas", nnet=norm)


def _parse_nets(text: str) -> set[str]:
    text = text.strip()
    if text == "all 45":
        return set(ACAS_NETWORK_IDS)
    if text.startswith("all but"):
        return set(ACAS_NETWORK_IDS) - {t.strip() for t in text[len("all but") :].split(",")}
    return {t.strip() for t in text.split(",")}


def test_table_matches_methods_md(bench):
    methods = bench.parent / "docs" / "METHODS.md"
    if not methods.is_file():
        pytest.skip("METHODS.md not found next to the benchmarks")
    rows = [l for l in methods.read_text().splitlines() if l.startswith("| ") and l.count("|") == 6]
    table = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        if cells[0] in acas_property_names():
            table[cells[0]] = cells
    assert set(table) == set(acas_property_names())
    for name, (_, lo, hi, target, nets) in table.items():
        if lo.startswith("as prop"):
            lo, hi = table[lo.split()[-1]][1:3]
        p = acas_property(name)
        np.testing.assert_array_equal(p.lower_raw, [float(v) for v in lo.split(",")])
        np.testing.assert_array_equal(p.upper_raw, [float(v) for v in hi.split(",")])
        assert p.target_output == int(target)
        assert set(p.networks) == _parse_nets(nets)


def test_properties_by_name_and_aliases():
    p1 = acas_property(1)
    assert p1.name == "1" and p1.target_output == 0 and len(p1.networks) == 45
    np.testing.assert_array_equal(p1.lower_raw, [55947.691, -3.141592, -3.141592, 1145, 0])
    assert acas_property("prop_7").networks == ("1_9",)
    assert acas_property("6A").name == "6a"
    np.testing.assert_array_equal(acas_property(12).lower_raw, p1.lower_raw)
    np.testing.assert_array_equal(acas_property(14).upper_raw, acas_property(5).upper_raw)
    assert acas_property(14).networks == ("4_1", "5_1")
    assert [p.name for p in acas_properties(6)] == ["6a", "6b"]
    assert [p.name for p in acas_properties("3")] == ["3"]
    with pytest.raises(InputError, match='"6a" or "6b"'):
        acas_property(6)
    with pytest.raises(InputError, match="unknown ACAS Xu property 2"):
        acas_property(2)
    with pytest.raises(InputError):
        acas_property("x")
    with pytest.raises(ValueError):  # arrays are read-only
        p1.lower_raw[0] = 0.0


def test_suite_has_143_runs():
    runs = acas_suite()
    assert len(runs) == 143
    assert len(set(runs)) == 143
    per_prop = Counter(p for p, _ in runs)
    assert per_prop["1"] == 45 and per_prop["3"] == 42 and per_prop["4"] == 42
    assert per_prop["6a"] == per_prop["6b"] == 1 and ("6a", "1_1") in runs and ("6b", "1_1") in runs
    assert ("3", "1_7") not in runs and ("3", "1_6") in runs
    assert all(net in ACAS_NETWORK_IDS for _, net in runs)


def test_standard_constants_match_every_nnet_header(bench):
    files = sorted((bench / "reludiff-icse2020/nnet").glob("ACASXU_run2a_*_batch_2000.nnet"))
    assert len(files) == 45
    for path in files:
        header = _nnet_header(path)
        for key in ("mins", "maxes", "means", "ranges"):
            np.testing.assert_array_equal(header[key], ACAS_NORMALIZATION[key], err_msg=f"{path.name} {key}")
    assert sorted(acas_network_id(p.name) for p in files) == sorted(ACAS_NETWORK_IDS)


def test_region_with_nnet_parameters_equals_the_standard_one(bench):
    h = _nnet_header(bench / "reludiff-icse2020/nnet/ACASXU_run2a_1_1_batch_2000.nnet")
    norm = NnetNormalization(h["mins"], h["maxes"], h["means"], h["ranges"], 7.5188840201005975, 373.94992)
    for name in acas_property_names():
        assert acas_region(name, _acas_net(norm)) == acas_region(name, _acas_net(None)) == acas_region(name)
        assert acas_region(name, norm) == acas_region(name)


def test_region_matches_nnet_normalize_and_is_outward():
    c = ACAS_NORMALIZATION
    norm = NnetNormalization(*(np.array(c[k]) for k in ("mins", "maxes", "means", "ranges")))
    for name in acas_property_names():
        p = acas_property(name)
        box = acas_region(p, _acas_net(norm))
        np.testing.assert_allclose(box.lower, norm.normalize(p.lower_raw), rtol=0, atol=1e-15)
        np.testing.assert_allclose(box.upper, norm.normalize(p.upper_raw), rtol=0, atol=1e-15)
        for i in range(5):  # exact check of the outward rounding
            clip_lo = min(max(p.lower_raw[i], c["mins"][i]), c["maxes"][i])
            exact = (Fraction(clip_lo) - Fraction(c["means"][i])) / Fraction(c["ranges"][i])
            assert Fraction(box.lower[i]) <= exact


def test_clipping_at_the_nnet_domain():
    box_6a = acas_region("6a")
    assert box_6a.upper[0] == pytest.approx((60760 - 19791.091) / 60261)  # raw 62000 > max 60760
    box_13 = acas_region(13)
    assert box_13.lower[3] == pytest.approx(-0.5)  # raw v_own 0 < min 100
    assert [b.lower[1] > 0 for b in acas_regions(6)] == [True, False]


def test_regions_agree_with_the_vnncomp_files(bench):
    # vnncomp2021 writes the same boxes normalized to 9 decimals (prop 1 with pi instead of 3.141592)
    for prop in (1, 3, 4, 5, 7, 8, 9, 10):
        box = read_vnnlib(bench / f"vnncomp2021/acasxu/prop_{prop}.vnnlib").box
        mine = acas_region(prop)
        np.testing.assert_allclose(mine.lower, box.lower, rtol=0, atol=2e-7)
        np.testing.assert_allclose(mine.upper, box.upper, rtol=0, atol=2e-7)


def test_region_errors():
    with pytest.raises(InputError, match="5 inputs"):
        acas_region(1, Network([Dense(np.ones((2, 3)), np.zeros(2))], (3,)))
    bad = NnetNormalization(np.zeros(5), np.ones(5), np.zeros(5), np.array([1, 1, 0, 1, 1.0]))
    with pytest.raises(InputError, match="positive"):
        acas_region(1, bad)
    with pytest.raises(InputError):
        acas_region(6)


def test_network_ids_from_file_names():
    assert acas_network_id("ACASXU_run2a_1_7_batch_2000.nnet") == "1_7"
    assert acas_network_id("/x/ACASXU_run2a_5_9_batch_2000_16bit.nnet") == "5_9"
    assert acas_network_id("ACASXU_run2a_3_3_batch_2000.onnx") == "3_3"
    with pytest.raises(InputError):
        acas_network_id("mnist_relu_3_100.nnet")


def test_describe_mentions_the_suite():
    assert "all but 1_7, 1_8, 1_9" in acas_property(3).describe()
    assert "target output 4" in acas_property(5).describe()


def test_region_from_a_loaded_nnet_model(bench):
    nnet_io = pytest.importorskip("simcert.network.nnet_io")
    net = nnet_io.load_nnet(bench / "reludiff-icse2020/nnet/ACASXU_run2a_2_9_batch_2000.nnet")
    assert net.nnet is not None
    box = acas_region(8, net).check_model(net)
    assert box == acas_region(8)
    np.testing.assert_allclose(box.lower, net.normalize(acas_property(8).lower_raw), atol=1e-15)
