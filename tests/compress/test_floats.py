import numpy as np
import pytest
import torch

from simcert.compress import round_bfloat16, round_float16, to_bfloat16, to_float16
from simcert.errors import InputError
from simcert.network import Dense, ElementwiseAffine, Network, QuantizeActivation, ReLU


def _acas_pairs(bench):
    originals = sorted((bench / "reludiff-icse2020/nnet").glob("ACASXU_run2a_*_batch_2000.nnet"))
    twins = bench / "neurodiff-ase2020/compressed_nnets"
    return [(p, twins / f"{p.stem}_16bit.nnet") for p in originals]


def test_float16_twin_of_all_45_acas_networks(bench, nnet_reader):
    pairs = _acas_pairs(bench)
    assert len(pairs) == 45
    changed = 0
    for orig_path, twin_path in pairs:
        f = nnet_reader(orig_path)
        g = to_float16(f)
        shared = nnet_reader(twin_path)
        assert len(g.layers) == len(f.layers) == len(shared.layers) == 13
        for lf, lg, ls in zip(f.layers, g.layers, shared.layers):
            if not isinstance(lf, Dense):
                continue
            for name in ("weight", "bias"):
                wf, wg, ws = getattr(lf, name), getattr(lg, name), getattr(ls, name)
                assert np.array_equal(wg, wf.astype(np.float16).astype(np.float64)), (orig_path.name, name)
                assert np.array_equal(wg, ws.astype(np.float16).astype(np.float64)), (twin_path.name, name)
                changed += int(np.sum(wg != wf))
        # the input is untouched and the twin is a different network
        assert not np.array_equal(f.layers[0].weight, g.layers[0].weight)
    assert changed > 10_000


def test_round_float16_hand_values():
    x = np.array([1.0 + 2.0**-11, 1.0 + 3 * 2.0**-11, 65504.0, 2.0**-24, 2.0**-26, -0.1])
    expected = [1.0, 1.0 + 2.0**-9, 65504.0, 2.0**-24, 0.0, -0.0999755859375]
    assert round_float16(x).tolist() == expected


def test_bfloat16_matches_torch(rng):
    base = rng.normal(size=2000) * 10.0 ** rng.integers(-20, 20, size=2000)
    # exact float32 ties between two bfloat16 values (both parities) and float64 values just off a tie
    ties = (np.arange(1, 200, dtype=np.float64) * 2 + 1) * 2.0**-8 + 1.0
    ties = np.concatenate([ties, -ties, ties * (1 + 2.0**-40), ties * (1 - 2.0**-40), [0.0, -0.0, 1e-40, 3e38]])
    for x in (base, ties):
        expected = torch.tensor(x, dtype=torch.float64).to(torch.bfloat16).to(torch.float64).numpy()
        np.testing.assert_array_equal(round_bfloat16(x), expected)
    w = base[:60].reshape(6, 10)
    net = Network([Dense(w, base[60:66]), ReLU(), Dense(base[66:72].reshape(1, 6), base[72:73])], (10,))
    g = to_bfloat16(net)
    torch_w = torch.tensor(w).to(torch.bfloat16).double().numpy()
    np.testing.assert_array_equal(g.layers[0].weight, torch_w)
    assert not np.array_equal(g.layers[0].weight, w)


def test_normalization_constants_are_rounded_and_quantizers_kept(rng):
    norm = ElementwiseAffine(np.array([0.1, 0.3]), np.array([-0.7, 1 / 3]))
    quant = QuantizeActivation(np.array(0.1), np.array(3.0), bits=8, signed=False)
    net = Network([norm, Dense(rng.normal(size=(3, 2)), rng.normal(size=3)), ReLU(), quant, Dense(np.ones((1, 3)), [0.1])], (2,))
    g = to_float16(net)
    assert np.array_equal(g.layers[0].scale, np.float16([0.1, 0.3]).astype(np.float64))
    assert np.array_equal(g.layers[0].shift, np.float16([-0.7, 1 / 3]).astype(np.float64))
    assert g.layers[3].scale == 0.1 and g.layers[3].zero_point == 3.0
    assert g.layers[3] is not quant and g.layers[0] is not norm
    assert net.layers[0].scale[0] == 0.1  # not mutated
    assert g.meta["compression"][0]["method"] == "float16"
    x = rng.normal(size=(4, 2))
    assert np.max(np.abs(g(x) - net(x))) < 0.05


def test_overflow_and_bad_input_raise():
    big = Network([Dense(np.array([[1e6]]), np.array([0.0]))], (1,))
    with pytest.raises(InputError, match="overflows float16"):
        to_float16(big)
    assert to_bfloat16(big).layers[0].weight[0, 0] == 999424.0
    with pytest.raises(InputError):
        to_float16("model.onnx")
