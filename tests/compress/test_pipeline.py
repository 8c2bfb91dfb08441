import numpy as np
import pytest

from simcert.compress import TARGETS, compress, to_bfloat16, to_float16
from simcert.errors import InputError
from simcert.network import Dense, QuantizeActivation


def test_prune_then_quantize_then_activations(make_mlp, rng):
    net = make_mlp(rng)
    calib = rng.uniform(-1, 1, size=(100, 5))
    twin = compress(net, to="int8", per_channel=True, prune=0.5, activations=8, calibration=calib)
    steps = [s["method"] for s in twin.meta["compression"]]
    assert steps == ["prune_magnitude", "quantize_weights", "quantize_activations"]
    dense = [l for l in twin.layers if isinstance(l, Dense)]
    total = sum(d.weight.size for d in dense)
    assert sum(int(np.sum(d.weight == 0)) for d in dense) == round(0.5 * total)  # zeros survive quantization
    assert sum(isinstance(l, QuantizeActivation) for l in twin.layers) == 3
    for e in twin.meta["quantization"]:
        assert np.array_equal(twin.layers[e["layer"]].weight, e["scale"][:, None] * e["q"])
    x = rng.uniform(-1, 1, size=(20, 5))
    assert twin(x).shape == (20, 5)


def test_float_targets_and_structured(make_mlp, rng):
    net = make_mlp(rng)
    for to, fn in (("float16", to_float16), ("bfloat16", to_bfloat16)):
        a, b = compress(net, to=to), fn(net)
        assert all(np.array_equal(la.weight, lb.weight) for la, lb in zip(a.layers[::2], b.layers[::2]))
    narrow = compress(net, to="int4", symmetric=False, prune=0.5, structured=True)
    assert [l.weight.shape for l in narrow.layers[::2]] == [(25, 5), (25, 25), (25, 25), (5, 25)]
    assert narrow.meta["quantization"][0]["q"].shape == (25, 5)
    assert len(narrow.meta["structured_pruning"]) == 3
    assert len(TARGETS) == 5


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"to": "int3"}, "target"),
        ({"to": "fp16"}, "target"),
        ({"to": "float16", "per_channel": True}, "integer target"),
        ({"to": "bfloat16", "symmetric": False}, "integer target"),
        ({"to": "int8", "prune": 1.0}, "fraction"),
        ({"prune": -0.2}, "fraction"),
        ({"to": "int8", "structured": True}, "needs a pruning fraction"),
        ({"activations": 8}, "calibration"),
        ({"activations": 1, "calibration": np.zeros((2, 5))}, "bit width"),
        ({"activations": 8, "calibration": np.zeros((2, 7))}, "shape"),
        ({"prune": 0.5, "prune_scope": "net"}, "scope"),
        ({"to": "int8", "per_channel": "yes"}, "per_channel"),
        ({}, "nothing to do"),
    ],
)
def test_bad_options_raise(make_mlp, rng, kwargs, match):
    with pytest.raises(InputError, match=match):
        compress(make_mlp(rng), **kwargs)


def test_not_a_network_raises():
    with pytest.raises(InputError, match="Network"):
        compress(np.eye(3), to="float16")
