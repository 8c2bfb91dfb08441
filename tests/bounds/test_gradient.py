"""The interval gradient of a twin spec contains every gradient seen in the box, and is exact where no
neuron is unstable."""

import numpy as np
import pytest
import torch
from bound_nets import mlp

from simcert.bounds.diff import diff_bounds
from simcert.bounds.gradient import diff_gradient, monotone_signs
from simcert.twin import Twin


def _twin(seed: int, sizes: list[int], noise: float) -> Twin:
    rng = np.random.default_rng(seed)
    f = mlp(rng, sizes)
    g = mlp(np.random.default_rng(seed), sizes)
    for layer in g.layers:
        if hasattr(layer, "weight"):
            layer.weight = layer.weight + rng.normal(size=layer.weight.shape) * noise
    return Twin(f, g)


def _spec(twin: Twin, seed: int):
    rng = np.random.default_rng(seed + 1)
    m = twin.output_size
    eye = torch.eye(m, dtype=torch.float64)
    c1 = torch.cat([-eye, torch.as_tensor(rng.normal(size=(2, m)))])  # eps rows g_k - f_k, then two mixed rows
    c2 = torch.cat([eye, torch.as_tensor(rng.normal(size=(2, m)))])
    return c1, c2


def _true_gradients(twin: Twin, c1, c2, x: torch.Tensor) -> torch.Tensor:
    """(N, K, n) autograd gradients of each row at the points x (N, n)."""
    x = x.clone().requires_grad_(True)
    h = twin.f.forward(x) @ c1.T + twin.g.forward(x) @ c2.T
    rows = [torch.autograd.grad(h[:, k].sum(), x, retain_graph=True)[0] for k in range(h.shape[1])]
    return torch.stack(rows, 1)


@pytest.mark.parametrize("seed", range(12))
def test_gradient_contains_sampled_gradients(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 7))
    sizes = [n] + [int(rng.integers(4, 13)) for _ in range(int(rng.integers(2, 4)))] + [3]
    twin = _twin(seed, sizes, noise=[0.0, 1e-3, 0.05][seed % 3])
    c1, c2 = _spec(twin, seed)
    centre = torch.as_tensor(rng.uniform(-1, 1, size=(4, n)))
    radius = torch.as_tensor([0.5, 0.1, 0.01, 1e-4])[:, None].expand(4, n)
    lo, hi = centre - radius, centre + radius
    state = diff_bounds(twin, lo, hi, c1, c2).state
    g_lo, g_hi, _ = diff_gradient(twin, state, c1, c2)
    for b in range(4):
        x = lo[b] + (hi[b] - lo[b]) * torch.rand(300, n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
        grads = _true_gradients(twin, c1, c2, x)
        assert (grads >= g_lo[b] - 1e-9).all() and (grads <= g_hi[b] + 1e-9).all()
    # the smallest boxes have no unstable neuron (almost surely): the interval is the exact gradient there
    exact = _true_gradients(twin, c1, c2, centre[3:])[0]
    assert torch.allclose(g_lo[3], exact, atol=1e-9) and torch.allclose(g_hi[3], exact, atol=1e-9)


def test_monotone_signs_match_the_function() -> None:
    """Where a row is certified monotone in an input, moving that input never goes the other way."""
    found = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        twin = _twin(seed, [3, 8, 8, 2], noise=0.05)
        c1, c2 = _spec(twin, seed)
        lo = torch.as_tensor(rng.uniform(-1, 1, size=(8, 3)))
        hi = lo + torch.as_tensor([0.02, 0.2, 1.0, 0.05, 0.3, 0.01, 0.1, 0.5])[:, None]
        signs = monotone_signs(twin, diff_bounds(twin, lo, hi, c1, c2).state, c1, c2)
        for b, k, j in torch.nonzero(signs).tolist():
            found += 1
            t = torch.linspace(0, 1, 50, dtype=torch.float64)
            base = lo[b] + (hi[b] - lo[b]) * torch.rand(20, 3, dtype=torch.float64)
            x = base[:, None, :].repeat(1, 50, 1)
            x[:, :, j] = lo[b, j] + (hi[b, j] - lo[b, j]) * t
            h = (twin.f(x.reshape(-1, 3).numpy()) @ c1[k].numpy() + twin.g(x.reshape(-1, 3).numpy()) @ c2[k].numpy())
            steps = np.diff(h.reshape(20, 50), axis=1) * int(signs[b, k, j])
            assert (steps >= -1e-12).all()
    assert found > 20  # the check is not vacuous
