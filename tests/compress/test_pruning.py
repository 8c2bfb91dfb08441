import numpy as np
import pytest

from simcert.compress import prune_magnitude, quantize_weights
from simcert.errors import InputError
from simcert.network import Conv2d, Dense


def _weights(net):
    return [l.weight for l in net.layers if isinstance(l, (Dense, Conv2d))]


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.5, 0.9, 0.999])
def test_global_pruning_hits_the_sparsity_and_removes_the_smallest(make_mlp, rng, fraction):
    net = make_mlp(rng)
    twin = prune_magnitude(net, fraction)
    before = np.concatenate([w.ravel() for w in _weights(net)])
    after = np.concatenate([w.ravel() for w in _weights(twin)])
    k = int(np.floor(fraction * before.size + 0.5))
    assert np.sum(after == 0) == k
    pruned = after == 0
    if 0 < k < before.size:
        assert np.abs(before[pruned]).max() <= np.abs(before[~pruned]).min()
    assert np.array_equal(after[~pruned], before[~pruned])
    for lf, lg in zip(net.layers, twin.layers):
        if isinstance(lf, Dense):
            assert np.array_equal(lf.bias, lg.bias)  # biases never pruned
    assert np.all(before != 0)  # the input is untouched


def test_layer_scope_prunes_each_layer(make_mlp, rng):
    net = make_mlp(rng, sizes=(5, 40, 30, 5))
    twin = prune_magnitude(net, 0.3, scope="layer")
    for w0, w in zip(_weights(net), _weights(twin)):
        assert np.sum(w == 0) == int(np.floor(0.3 * w0.size + 0.5))
        assert np.abs(w0[w == 0]).max() <= np.abs(w0[w != 0]).min()
    # global scope on the same net differs (layers have different scales)
    g = prune_magnitude(net, 0.3)
    assert [int(np.sum(w == 0)) for w in _weights(g)] != [int(np.sum(w == 0)) for w in _weights(twin)]


def test_conv_pruning_and_quantization_facts_stay_consistent(convnet):
    q = quantize_weights(convnet, 4, symmetric=False, per_channel=True)
    twin = prune_magnitude(q, 0.5)
    total = sum(w.size for w in _weights(twin))
    assert sum(int(np.sum(w == 0)) for w in _weights(twin)) >= total // 2
    for e in twin.meta["quantization"]:
        w = twin.layers[e["layer"]].weight
        shape = (-1,) + (1,) * (w.ndim - 1)
        assert np.array_equal(w, e["scale"].reshape(shape) * (e["q"] - e["zero_point"].reshape(shape)))
    assert [s["method"] for s in twin.meta["compression"]] == ["quantize_weights", "prune_magnitude"]


@pytest.mark.parametrize("fraction", [1.0, -0.1, "0.5", None, float("nan"), True])
def test_bad_fraction_raises(make_mlp, rng, fraction):
    with pytest.raises(InputError, match="fraction"):
        prune_magnitude(make_mlp(rng), fraction)


def test_bad_scope_raises(make_mlp, rng):
    with pytest.raises(InputError, match="scope"):
        prune_magnitude(make_mlp(rng), 0.5, scope="network")
