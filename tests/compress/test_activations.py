import numpy as np
import pytest

from simcert.compress import quantize_activations, quantize_weights
from simcert.errors import InputError
from simcert.network import Dense, Network, QuantizeActivation, ReLU


def _numpy_fake_quant_forward(net, calib, x, bits, symmetric):
    """Reference: calibrate per-tensor ranges after each ReLU on the float net, then fake-quantize."""
    dense = [l for l in net.layers if isinstance(l, Dense)]
    params = []
    h = calib
    for layer in dense[:-1]:
        h = np.maximum(h @ layer.weight.T + layer.bias, 0)
        if symmetric:
            s, z, qmin, qmax = np.abs(h).max() / (2 ** (bits - 1) - 1), 0.0, -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        else:
            lo, hi = min(h.min(), 0.0), max(h.max(), 0.0)
            s = (hi - lo) / (2**bits - 1)
            z, qmin, qmax = np.round(-lo / s), 0, 2**bits - 1
        params.append((s, z, qmin, qmax))
    h = x
    for layer, (s, z, qmin, qmax) in zip(dense[:-1], params):
        h = np.maximum(h @ layer.weight.T + layer.bias, 0)
        h = s * (np.clip(np.round(h / s) + z, qmin, qmax) - z)
    return h @ dense[-1].weight.T + dense[-1].bias, params


@pytest.mark.parametrize("bits,symmetric", [(8, False), (4, False), (8, True), (3, True)])
def test_twin_forward_equals_numpy_fake_quant(make_mlp, rng, bits, symmetric):
    net = make_mlp(rng)
    calib = rng.uniform(-1, 1, size=(200, 5))
    x = rng.uniform(-1.5, 1.5, size=(300, 5))  # wider than the calibration data: clamping is exercised
    twin = quantize_activations(net, bits=bits, calibration=calib, symmetric=symmetric)
    kinds = [type(l).__name__ for l in twin.layers]
    assert kinds == ["Dense", "ReLU", "QuantizeActivation"] * 3 + ["Dense"]
    ref, params = _numpy_fake_quant_forward(net, calib, x, bits, symmetric)
    for q, (s, z, *_ ) in zip(twin.layers[2::3], params):
        assert q.signed == symmetric and q.bits == bits
        np.testing.assert_allclose(q.scale, s, rtol=1e-13)
        assert float(q.zero_point) == z
    np.testing.assert_allclose(twin(x), ref, rtol=1e-12, atol=1e-12)
    assert np.abs(twin(x) - net(x)).max() > 1e-6  # the quantization did something


def test_per_channel_conv_and_input_quantizer(convnet, rng):
    # drop the existing quantizer of the fixture first
    layers = [l for l in convnet.layers if not isinstance(l, QuantizeActivation)]
    net = Network(layers, convnet.input_shape)
    calib = rng.uniform(0, 1, size=(64, 64))  # flat inputs are accepted too
    twin = quantize_activations(net, 8, calib, per_channel=True, quantize_input=True)
    quants = [l for l in twin.layers if isinstance(l, QuantizeActivation)]
    assert isinstance(twin.layers[0], QuantizeActivation) and len(quants) == 4
    assert quants[0].scale.shape == (1, 1, 1) and quants[1].scale.shape == (8, 1, 1)
    assert quants[3].scale.shape == (12,)
    # per channel: each channel's calibrated max maps to the top of the grid
    import torch

    h = torch.as_tensor(calib.reshape(-1, 1, 8, 8))
    h = net.layers[1].forward(net.layers[0].forward(h)).numpy()
    hi = h.max(axis=(0, 2, 3))
    np.testing.assert_allclose(quants[1].scale.ravel(), np.where(hi > 0, hi / 255, 1.0), rtol=1e-13)
    out = twin(calib[:5])
    assert out.shape == (5, 3) and np.all(np.isfinite(out))


def test_meta_indices_follow_inserted_layers(make_mlp, rng):
    net = quantize_weights(make_mlp(rng), 8)
    twin = quantize_activations(net, 8, rng.normal(size=(10, 5)))
    idx = [e["layer"] for e in twin.meta["quantization"]]
    assert idx == [0, 3, 6, 9]
    for i, e in zip(idx, twin.meta["quantization"]):
        assert np.array_equal(twin.layers[i].weight, e["scale"] * e["q"])
    assert [e["layer"] for e in net.meta["quantization"]] == [0, 2, 4, 6]  # the input's meta is untouched


def test_bad_inputs_raise(make_mlp, rng):
    net = make_mlp(rng)
    with pytest.raises(InputError, match="calibration"):
        quantize_activations(net, 8)
    with pytest.raises(InputError, match="shape"):
        quantize_activations(net, 8, np.zeros((4, 6)))
    with pytest.raises(InputError, match="NaN"):
        quantize_activations(net, 8, np.full((4, 5), np.nan))
    with pytest.raises(InputError):
        quantize_activations(net, 1, np.zeros((4, 5)))
    once = quantize_activations(net, 8, np.zeros((4, 5)))
    with pytest.raises(InputError, match="already"):
        quantize_activations(once, 8, np.zeros((4, 5)))
    linear = Network([Dense(np.ones((2, 5)), np.zeros(2))], (5,))
    with pytest.raises(InputError, match="no ReLU"):
        quantize_activations(linear, 8, np.zeros((4, 5)))
    assert isinstance(quantize_activations(net, 8, np.zeros(5)).layers[2], QuantizeActivation)
    assert not any(isinstance(l, QuantizeActivation) for l in net.layers)
    assert isinstance(net.layers[1], ReLU)
