import numpy as np
import pytest

from simcert.compress import quantize_tensor, quantize_weights
from simcert.errors import InputError
from simcert.network import Conv2d, Dense

TOL = 1 + 1e-12  # |w - scale*q| <= scale/2 up to float64 rounding of w/scale and scale*q


def _dense_facts(net, twin):
    for entry in twin.meta["quantization"]:
        yield net.layers[entry["layer"]], twin.layers[entry["layer"]], entry


def test_int8_per_channel_reproduces_scale_times_q(make_mlp, rng):
    net = make_mlp(rng)
    twin = quantize_weights(net, 8, symmetric=True, per_channel=True)
    facts = list(_dense_facts(net, twin))
    assert [e["layer"] for _, _, e in facts] == [0, 2, 4, 6]
    for orig, new, e in facts:
        q, scale = e["q"], e["scale"]
        assert q.dtype.kind == "i" and q.shape == orig.weight.shape and scale.shape == (orig.weight.shape[0],)
        assert np.all(e["zero_point"] == 0) and e["bits"] == 8 and e["per_channel"]
        assert np.array_equal(new.weight, scale[:, None] * q.astype(np.float64))
        assert np.all(np.abs(orig.weight - new.weight) <= scale[:, None] / 2 * TOL)
        assert np.abs(q).max() == 127 and np.all(np.abs(q).max(axis=1) == 127)  # every row uses its full range
        np.testing.assert_allclose(scale, np.abs(orig.weight).max(axis=1) / 127, rtol=0, atol=0)
        assert np.array_equal(new.bias, orig.bias)  # bias kept in float
        assert not np.array_equal(new.weight, orig.weight)
        assert e["bias"] is None


def test_int4_asymmetric_per_tensor_and_per_channel(make_mlp, rng):
    net = make_mlp(rng)
    for per_channel in (False, True):
        twin = quantize_weights(net, 4, symmetric=False, per_channel=per_channel)
        for orig, new, e in _dense_facts(net, twin):
            q, s, z = e["q"], e["scale"], e["zero_point"]
            assert q.min() >= 0 and q.max() <= 15 and np.all((z >= 0) & (z <= 15))
            if per_channel:
                s, z = s[:, None], z[:, None]
                lo = np.minimum(orig.weight.min(axis=1), 0)[:, None]
                hi = np.maximum(orig.weight.max(axis=1), 0)[:, None]
            else:
                assert s.shape == () and z.shape == ()
                lo, hi = min(orig.weight.min(), 0), max(orig.weight.max(), 0)
            assert np.array_equal(s, (hi - lo) / 15)
            assert np.array_equal(new.weight, s * (q - z).astype(np.float64))
            assert np.all(np.abs(orig.weight - new.weight) <= s / 2 * TOL)
            assert np.unique(new.weight).size <= (16 * orig.weight.shape[0] if per_channel else 16)


def test_hand_computed_three_bit_example():
    t = quantize_tensor(np.array([[0.5, -1.0, 0.26], [0.0, 0.0, 0.0]]), bits=3, per_channel=True)
    assert t.q.tolist() == [[2, -3, 1], [0, 0, 0]]
    assert t.scale.tolist() == [1 / 3, 1.0]  # an all-zero row gets scale 1 and stays zero
    assert t.dequantize()[1].tolist() == [0.0, 0.0, 0.0]
    a = quantize_tensor(np.array([0.2, 0.4, 0.6]), bits=2, symmetric=False)  # range widened to [0, 0.6]
    assert float(a.zero_point) == 0 and np.isclose(float(a.scale), 0.2) and a.q.tolist() == [1, 2, 3]


def test_conv_per_channel_and_bias_scope(convnet):
    twin = quantize_weights(convnet, 8, per_channel=True, scope="weights+bias")
    e = twin.meta["quantization"][0]
    conv, new = convnet.layers[0], twin.layers[0]
    assert isinstance(new, Conv2d) and e["kind"] == "conv2d" and e["scale"].shape == (8,)
    assert np.array_equal(new.weight, e["scale"][:, None, None, None] * e["q"])
    b = e["bias"]
    assert b["scale"].shape == () and np.array_equal(new.bias, b["scale"] * b["q"])
    assert np.all(np.abs(new.bias - conv.bias) <= b["scale"] / 2 * TOL)
    assert not np.array_equal(new.bias, conv.bias)


def test_int16_error_is_tiny_and_input_not_mutated(make_mlp, rng):
    net = make_mlp(rng)
    w0 = net.layers[0].weight.copy()
    twin = quantize_weights(net, 16)
    assert np.array_equal(net.layers[0].weight, w0) and "quantization" not in net.meta
    x = rng.uniform(-1, 1, size=(50, 5))
    d = np.abs(twin(x) - net(x)).max()
    assert 0 < d < 1e-3
    assert isinstance(twin.layers[0], Dense) and twin.layers[0] is not net.layers[0]


@pytest.mark.parametrize(
    "kwargs",
    [{"bits": 1}, {"bits": 17}, {"bits": 8.0}, {"bits": True}, {"bits": 8, "scope": "all"},
     {"bits": 8, "symmetric": "yes"}, {"bits": 8, "per_channel": 1}],
)
def test_bad_options_raise(make_mlp, rng, kwargs):
    with pytest.raises(InputError):
        quantize_weights(make_mlp(rng), **kwargs)
