"""Random dense ReLU networks shared by the bound-engine tests."""

import numpy as np

from simcert.network import Dense, Network, ReLU


def mlp(rng: np.random.Generator, sizes: list[int], scale: float = 1.0) -> Network:
    """A random ReLU network with layer widths `sizes` (a dense layer between each pair, no final ReLU);
    weights N(0, scale^2 / fan_in), biases N(0, 0.3^2)."""
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [Dense(rng.normal(size=(b, a)) * scale / np.sqrt(a), rng.normal(size=b) * 0.3), ReLU()]
    return Network(layers[:-1], (sizes[0],))
