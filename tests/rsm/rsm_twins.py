"""Small classifier twins shared by the RSM tests (deterministic, seeded)."""

from __future__ import annotations

import numpy as np

from simcert.compress import prune_magnitude, prune_structured, quantize_weights, to_float16
from simcert.network import Conv2d, Dense, Network, ReLU, Reshape


def mlp(rng: np.random.Generator, sizes: list[int], name: str = "mlp") -> Network:
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [Dense(rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.3), ReLU()]
    return Network(layers[:-1], (sizes[0],), name=name)


def convnet(rng: np.random.Generator) -> Network:
    return Network(
        [
            Conv2d(rng.normal(size=(3, 1, 3, 3)) * 0.5, rng.normal(size=3) * 0.1, stride=1, padding=1),
            ReLU(),
            Conv2d(rng.normal(size=(2, 3, 2, 2)) * 0.5, rng.normal(size=2) * 0.1, stride=2),
            ReLU(),
            Reshape((-1,)),
            Dense(rng.normal(size=(4, 8)) * 0.5, rng.normal(size=4) * 0.1),
        ],
        (1, 4, 4),
        name="conv",
    )


def scaled_output(net: Network, factor: float) -> Network:
    """The same network with its last (affine) layer multiplied by `factor`: every margin scales by it."""
    last = net.layers[-1]
    assert isinstance(last, Dense)
    return Network(net.layers[:-1] + [Dense(last.weight * factor, last.bias * factor)], net.input_shape,
                   name=f"{net.name}*{factor}")


def twins() -> list[tuple[str, Network, Network]]:
    """(name, f, g): aligned twins (float16, int4, magnitude and structured pruning), a distilled student with
    another architecture, and a convolutional int8 twin."""
    rng = np.random.default_rng(7)
    f = mlp(rng, [4, 12, 12, 3], "teacher")
    c = convnet(rng)
    return [
        ("float16", f, to_float16(f)),
        ("int4", f, quantize_weights(f, 4, per_channel=True)),
        ("pruned60", f, prune_magnitude(f, 0.6)),
        ("structured30", f, prune_structured(f, 0.3)),
        ("distilled", f, mlp(rng, [4, 7, 3], "student")),
        ("conv-int8", c, quantize_weights(c, 8)),
    ]


def pi_numpy(f: Network, g: Network, x: np.ndarray, label: int) -> np.ndarray:
    """Pi_c.(x) for a batch x (B, n), on the original models: (B, m), 0 in column c."""
    d = f(x) - g(x)
    return d[:, [label]] - d
