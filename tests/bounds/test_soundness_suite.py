"""The soundness suite: 300 random small twins, every engine against the exact MILP.

Each twin pair is drawn from a seed: a reference with 2-8 inputs and 2-4 hidden layers of 4-16 ReLUs, and a
twin made by one of float16, int8, int4, magnitude pruning, structured pruning, random perturbation, an
independently trained network of another width, or 4-bit activation quantization. For every pair the exact
MILP (HiGHS) gives the true range of g_0 - f_0 on the box [-1, 1]^n (its minimizer and maximizer, re-evaluated
on the real networks; at least 80% of each chunk solved to optimality), and

- every engine's bounds must contain those values (no tolerance);
- on every tenth pair, `verify` at eps just above and just below the true worst case may only answer
  "holds" when the worst case is within eps, and "violated" with a counterexample that really violates.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

from simcert.bounds import ENGINES
from simcert.bounds.milp import milp_bound_spec
from simcert.compress import prune_magnitude, prune_structured, quantize_activations, quantize_weights, to_float16
from simcert.network import Dense, Network, ReLU
from simcert.spec import Box, EpsEquivalence
from simcert.twin import Twin
from simcert.verify import verify

from bound_nets import mlp

KINDS = ("float16", "int8", "int4", "pruned", "structured", "perturbed", "retrained", "act4")
N_TWINS = 300
CHUNK = 20


def _retrained(rng: np.random.Generator, f: Network, width: int, depth: int) -> Network:
    """A network of another width trained (a few Adam steps) to imitate f: independent weights."""
    n = f.input_size
    x = torch.tensor(rng.uniform(-1, 1, size=(256, n)))
    with torch.no_grad():
        y = f.forward(x)
    dims = [n] + [width] * depth + [f.output_size]
    torch.manual_seed(int(rng.integers(1 << 30)))
    mods: list[torch.nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [torch.nn.Linear(a, b).double(), torch.nn.ReLU()]
    model = torch.nn.Sequential(*mods[:-1])
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    lin = [m for m in model if isinstance(m, torch.nn.Linear)]
    layers = []
    for m in lin:
        layers += [Dense(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy()), ReLU()]
    return Network(layers[:-1], (n,))


@functools.lru_cache(maxsize=None)
def make_twin(seed: int) -> tuple[str, Network, Network]:
    rng = np.random.default_rng(1000 + seed)
    n = int(rng.integers(2, 9))
    depth = int(rng.integers(2, 5))
    width = int(rng.integers(4, {2: 9, 3: 7, 4: 6}[depth]))  # keeps the exact MILP at about a second
    f = mlp(rng, [n] + [width] * depth + [2])
    kind = KINDS[seed % len(KINDS)]
    if kind == "float16":
        g = to_float16(f)
    elif kind == "int8":
        g = quantize_weights(f, 8, per_channel=bool(seed % 2))
    elif kind == "int4":
        g = quantize_weights(f, 4)
    elif kind == "pruned":
        g = prune_magnitude(f, float(rng.uniform(0.1, 0.5)))
    elif kind == "structured":
        g = prune_structured(f, 0.25)
    elif kind == "perturbed":
        g = Network([Dense(l.weight + rng.normal(size=l.weight.shape) * 0.02, l.bias) if isinstance(l, Dense) else l
                     for l in f.layers], f.input_shape)
    elif kind == "retrained":
        g = _retrained(rng, f, int(rng.integers(4, 11)), int(rng.integers(1, 3)))
    else:
        g = quantize_activations(f, 4, rng.uniform(-1, 1, size=(200, n)))
    return kind, f, g


@pytest.mark.parametrize("start", range(0, N_TWINS, CHUNK))
def test_engines_contain_the_milp_range(start: int) -> None:
    torch.set_num_threads(1)
    c1, c2 = -np.eye(2)[:1], np.eye(2)[:1]
    optimal = 0
    for seed in range(start, start + CHUNK):
        kind, f, g = make_twin(seed)
        twin = Twin(f, g)
        lo, hi = -np.ones(f.input_size), np.ones(f.input_size)
        exact = milp_bound_spec(twin.f, twin.g, lo, hi, c1, c2, time_limit=8)
        optimal += int(exact.optimal.all())
        # the oracle: g_0 - f_0 at the MILP's minimizer and maximizer, evaluated on the real networks
        pts = np.stack([exact.argmin[0], exact.argmax[0]])
        v_min, v_max = (g(pts)[:, 0] - f(pts)[:, 0]).tolist()
        t_lo, t_hi = torch.tensor(lo)[None], torch.tensor(hi)[None]
        for engine, fn in ENGINES.items():
            if engine.startswith("diff") and not twin.aligned:
                continue
            b = fn(twin, t_lo, t_hi, torch.tensor(c1), torch.tensor(c2))
            assert float(b.lower[0, 0]) <= v_min, (seed, kind, engine, float(b.lower[0, 0]), v_min)
            assert float(b.upper[0, 0]) >= v_max, (seed, kind, engine, float(b.upper[0, 0]), v_max)
        if seed % 10 == 0 and exact.optimal.all():
            worst = max(-v_min, v_max)
            box = Box(lo, hi)
            for eps in (1.05 * worst + 1e-6, 0.95 * worst):
                res = verify(f, g, box, EpsEquivalence(eps, outputs=[0]), timeout=2)
                if res.verdict == "holds":
                    assert worst <= eps + 1e-7, (seed, kind, eps, worst)
                elif res.verdict == "violated":
                    x = res.counterexample.x
                    assert abs(g(x[None])[0, 0] - f(x[None])[0, 0]) > eps, (seed, kind)
                    assert worst > eps - 1e-7
    assert optimal >= 0.8 * CHUNK, f"the MILP oracle solved only {optimal} of {CHUNK} twins to optimality"


def test_the_suite_covers_every_kind_and_size() -> None:
    kinds = {KINDS[s % len(KINDS)] for s in range(N_TWINS)}
    assert kinds == set(KINDS) and make_twin(len(KINDS) - 1)[0] == KINDS[-1]
    sizes = [(make_twin(s)[1].input_size, len(make_twin(s)[1].layers)) for s in range(0, N_TWINS, 37)]
    assert min(n for n, _ in sizes) >= 2 and max(n for n, _ in sizes) <= 8
