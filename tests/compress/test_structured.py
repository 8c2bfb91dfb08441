from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simcert.compress import prune_structured, quantize_activations, quantize_weights
from simcert.errors import InputError
from simcert.network import Conv2d, Dense, Network, ReLU, Reshape


def _sequential_forward(net, x):
    """Forward pass whose dot products add their terms one by one in index order, so that a zero weight
    (x * 0 = 0, s + 0 = s) provably changes nothing: a pruned net and its masked original agree bit for bit."""
    h = torch.as_tensor(np.asarray(x, dtype=np.float64).reshape(len(x), *net.input_shape))
    for layer in net.layers:
        if isinstance(layer, Dense):
            cols, w = h.numpy(), layer.weight
            acc = np.zeros((len(cols), w.shape[0]))
            for k in range(w.shape[1]):
                acc = acc + cols[:, k : k + 1] * w[:, k]
            h = torch.as_tensor(acc + layer.bias)
        elif isinstance(layer, Conv2d):
            out_shape = layer.output_shape(tuple(h.shape[1:]))
            cols = F.unfold(h, layer.weight.shape[2:], layer.dilation, layer.padding, layer.stride).numpy()
            w = layer.weight.reshape(layer.weight.shape[0], -1)  # (C_out, C_in*kh*kw), same order as unfold
            acc = np.zeros((cols.shape[0], w.shape[0], cols.shape[2]))
            for k in range(w.shape[1]):
                acc = acc + w[None, :, k, None] * cols[:, None, k, :]
            h = torch.as_tensor((acc + layer.bias[None, :, None]).reshape(len(acc), *out_shape))
        else:
            h = layer.forward(h)
    return h.reshape(len(h), -1).numpy()


def _masked(net, records, outgoing=True):
    """The original with the removed neurons' incoming rows and biases (and outgoing columns) zeroed."""
    layers = [replace(l) for l in net.layers]  # fresh copies of the parameters
    idx = [i for i, l in enumerate(net.layers) if isinstance(l, (Dense, Conv2d))]
    for r in records:
        a = r["layer"]
        b = idx[idx.index(a) + 1]
        removed = np.setdiff1d(np.arange(r["width"]), r["kept"])
        layers[a].weight[removed] = 0.0
        layers[a].bias[removed] = 0.0
        if not outgoing:
            continue
        w = layers[b].weight
        if isinstance(layers[b], Dense) and w.shape[1] != r["width"]:  # across a flatten of (C, H, W)
            block = w.shape[1] // r["width"]
            cols = (removed[:, None] * block + np.arange(block)).ravel()
        else:
            cols = removed
        w[:, cols] = 0.0
    return Network(layers, net.input_shape)


def test_half_of_an_acas_network(bench, nnet_reader, rng):
    net = nnet_reader(bench / "reludiff-icse2020/nnet/ACASXU_run2a_2_3_batch_2000.nnet")
    twin = prune_structured(net, 0.5)
    dense = [l for l in twin.layers if isinstance(l, Dense)]
    assert [d.weight.shape for d in dense] == [(25, 5)] + [(25, 25)] * 5 + [(5, 25)]
    records = twin.meta["structured_pruning"]
    assert [r["layer"] for r in records] == [0, 2, 4, 6, 8, 10]
    for r in records:
        norms = np.abs(net.layers[r["layer"]].weight).sum(axis=1)
        kept = np.array(r["kept"])
        assert list(kept) == sorted(kept) and len(kept) == 25 and r["width"] == 50
        assert norms[kept].min() >= np.delete(norms, kept).max()  # smallest L1 norms removed
    x = rng.uniform(-0.5, 0.5, size=(500, 5))
    exact = _sequential_forward(twin, x)
    assert np.array_equal(exact, _sequential_forward(_masked(net, records), x))
    # zeroing only the incoming weights (ReLU chains) gives the same function
    assert np.array_equal(exact, _sequential_forward(_masked(net, records, outgoing=False), x))
    # the IR's own (blocked) forward agrees up to the order of summation
    np.testing.assert_allclose(twin(x), exact, rtol=0, atol=1e-13)
    np.testing.assert_allclose(_masked(net, records)(x), exact, rtol=0, atol=1e-13)
    assert np.abs(twin(x) - net(x)).max() > 1e-3


def test_conv_network_with_per_channel_params(convnet, rng):
    twin = prune_structured(convnet, 0.5)
    kinds = [type(l).__name__ for l in twin.layers]
    assert kinds == [type(l).__name__ for l in convnet.layers]
    assert twin.layers[0].weight.shape == (4, 1, 3, 3)
    assert twin.layers[2].scale.shape == (4, 1, 1)  # per-channel quantizer sliced
    assert twin.layers[3].weight.shape == (3, 4, 3, 3)
    assert twin.layers[5].scale.shape == (3, 1, 1)
    assert twin.layers[8].weight.shape == (6, 27)  # 3 channels x 3 x 3 columns after the flatten
    assert twin.layers[10].weight.shape == (3, 6)
    assert twin.shapes[-1] == (3,)
    records = twin.meta["structured_pruning"]
    assert [r["layer"] for r in records] == [0, 3, 8]
    x = rng.uniform(0, 1, size=(40, 1, 8, 8))
    masked = _masked(convnet, records)
    exact = _sequential_forward(twin, x)
    assert np.array_equal(exact, _sequential_forward(masked, x))
    np.testing.assert_allclose(twin(x), exact, rtol=0, atol=1e-12)
    np.testing.assert_allclose(masked(x), exact, rtol=0, atol=1e-12)
    assert np.abs(twin(x) - convnet(x)).max() > 1e-3


def test_rounding_keeps_one_and_pruning_composes(make_mlp, rng):
    net = make_mlp(rng, sizes=(4, 3, 50, 2))
    twin = prune_structured(net, 0.9)
    assert twin.layers[0].weight.shape == (1, 4)  # round(2.7) = 3 > 2: keep one
    assert twin.layers[2].weight.shape == (5, 1)  # round(45) removed of 50
    again = prune_structured(twin, 0.5)
    r = again.meta["structured_pruning"][1]
    assert r["width"] == 50 and len(r["kept"]) == 2  # round(2.5) = 3 removed of 5
    assert set(r["kept"]) <= set(twin.meta["structured_pruning"][1]["kept"])
    x = rng.normal(size=(30, 4))
    assert np.array_equal(_sequential_forward(again, x), _sequential_forward(_masked(net, again.meta["structured_pruning"]), x))


def test_quantization_facts_sliced_and_indices_after_activation_quantization(make_mlp, rng):
    net = quantize_weights(make_mlp(rng), 8, per_channel=True)
    twin = prune_structured(net, 0.4)
    for e in twin.meta["quantization"]:
        w = twin.layers[e["layer"]].weight
        assert np.array_equal(w, e["scale"][:, None] * e["q"])
    a = quantize_activations(twin, 8, rng.normal(size=(20, 5)))
    assert [r["layer"] for r in a.meta["structured_pruning"]] == [0, 3, 6]
    for r in a.meta["structured_pruning"]:
        assert a.layers[r["layer"]].weight.shape[0] == len(r["kept"])


def test_unsupported_structures_raise(rng):
    single = Network([Dense(rng.normal(size=(3, 5)), np.zeros(3))], (5,))
    with pytest.raises(InputError, match="hidden"):
        prune_structured(single, 0.5)
    unflatten = Network(
        [Dense(rng.normal(size=(8, 4)), np.zeros(8)), ReLU(), Reshape((2, 2, 2)),
         Conv2d(rng.normal(size=(1, 2, 1, 1)), np.zeros(1)), Reshape((-1,))],
        (4,),
    )
    with pytest.raises(InputError, match="layer 2"):
        prune_structured(unflatten, 0.5)
    grouped = Network(
        [Conv2d(rng.normal(size=(4, 1, 1, 1)), np.zeros(4), groups=2), ReLU(), Reshape((-1,)),
         Dense(rng.normal(size=(2, 16)), np.zeros(2))],
        (2, 2, 2),
    )
    with pytest.raises(InputError, match="grouped"):
        prune_structured(grouped, 0.5)
    with pytest.raises(InputError, match="fraction"):
        prune_structured(Network([Dense(np.ones((2, 2)), np.zeros(2)), Dense(np.ones((1, 2)), [0.0])], (2,)), 1.5)
