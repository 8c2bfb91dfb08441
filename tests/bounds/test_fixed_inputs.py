"""Inputs fixed in every box of a batch (lower == upper) are constants in the diff engine's forward equations.
The bounds must be those of the same twin with the fixed inputs folded into the first layer's bias, and sound."""

import numpy as np
import pytest
import torch

from simcert.bounds import ENGINES
from simcert.compress import quantize_weights, to_float16
from simcert.network import Dense, Network
from simcert.twin import Twin

from bound_nets import mlp

DT = torch.float64
N_IN = 8
FIXED = np.array([0, 2, 3, 6])
FREE = np.setdiff1d(np.arange(N_IN), FIXED)


def folded(net: Network, values: np.ndarray) -> Network:
    """`net` as a function of the free inputs, with x[FIXED] = values folded into the first bias."""
    first = net.layers[0]
    dense = Dense(first.weight[:, FREE], first.bias + first.weight[:, FIXED] @ values)
    return Network([dense, *net.layers[1:]], (len(FREE),))


@pytest.mark.parametrize("twin_kind", ["float16", "int4"])
@pytest.mark.parametrize("method", ["diff-forward", "diff"])
def test_fixed_inputs_give_the_folded_twins_bounds(twin_kind, method):
    rng = np.random.default_rng(5)
    f = mlp(rng, [N_IN, 12, 12, 2])
    g = to_float16(f) if twin_kind == "float16" else quantize_weights(f, 4, per_channel=True)
    values = rng.uniform(-1, 1, size=len(FIXED))
    lo = np.full(N_IN, -1.0)
    hi = np.full(N_IN, 1.0)
    lo[FIXED] = hi[FIXED] = values
    c1, c2 = -torch.eye(2, dtype=DT), torch.eye(2, dtype=DT)
    engine = ENGINES[method]
    full = engine(Twin(f, g), torch.tensor(lo)[None], torch.tensor(hi)[None], c1, c2)
    # the same box next to one that frees every input: the fixed inputs then get equation rows of radius 0
    wide_lo, wide_hi = np.stack([lo, np.full(N_IN, -1.0)]), np.stack([hi, np.full(N_IN, 1.0)])
    rows = engine(Twin(f, g), torch.tensor(wide_lo), torch.tensor(wide_hi), c1, c2)
    torch.testing.assert_close(full.lower, rows.lower[:1], rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(full.upper, rows.upper[:1], rtol=1e-9, atol=1e-12)
    ff, gf = folded(f, values), folded(g, values)
    small = engine(Twin(ff, gf), torch.tensor(lo[FREE])[None], torch.tensor(hi[FREE])[None], c1, c2)
    torch.testing.assert_close(full.lower, small.lower, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(full.upper, small.upper, rtol=1e-9, atol=1e-12)
    xs = rng.uniform(lo, hi, size=(5000, N_IN))
    seen = g(xs) - f(xs)
    assert (seen >= full.lower[0].numpy() - 1e-12).all() and (seen <= full.upper[0].numpy() + 1e-12).all()


def test_a_batch_mixing_fixed_and_free_inputs_bounds_each_box_as_alone():
    """An input fixed in one box and free in another stays in the equations; each box's bounds equal those it
    gets in a batch of its own."""
    rng = np.random.default_rng(9)
    f = mlp(rng, [N_IN, 12, 12, 2])
    g = to_float16(f)
    twin = Twin(f, g)
    lo = torch.tensor(rng.uniform(-1, 0, size=(3, N_IN)))
    hi = torch.tensor(rng.uniform(0, 1, size=(3, N_IN)))
    hi[0, FIXED] = lo[0, FIXED]  # box 0 fixes some inputs, the others do not
    hi[1, :] = lo[1, :]  # box 1 is a point
    c1, c2 = -torch.eye(2, dtype=DT), torch.eye(2, dtype=DT)
    for method in ("diff-forward", "diff"):
        batch = ENGINES[method](twin, lo, hi, c1, c2)
        for i in range(3):
            alone = ENGINES[method](twin, lo[i : i + 1], hi[i : i + 1], c1, c2)
            torch.testing.assert_close(batch.lower[i : i + 1], alone.lower, rtol=1e-9, atol=1e-12)
            torch.testing.assert_close(batch.upper[i : i + 1], alone.upper, rtol=1e-9, atol=1e-12)
