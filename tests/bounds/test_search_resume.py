"""A search stopped by its deadline hands over its open boxes; a second search resumes from them and its
verdict and bounds stay sound (checked against the exact MILP and sampled values)."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch

from simcert.bounds import ENGINES
from simcert.bounds.milp import milp_bound_spec
from simcert.compress import quantize_weights
from simcert.network import Dense, Network, ReLU
from simcert.search.bab import SearchOptions, branch_and_bound
from simcert.spec import Box, EpsEquivalence
from simcert.twin import Twin
from simcert.verify import problem_for


def _mlp(rng, sizes):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [Dense(rng.normal(size=(b, a)) / np.sqrt(a), rng.normal(size=b) * 0.3), ReLU()]
    return Network(layers[:-1], (sizes[0],))


def test_resume_from_a_stopped_search_finishes_soundly() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(4)
    f = _mlp(rng, [3, 10, 10, 1])
    g = quantize_weights(f, 5)
    twin = Twin(f, g)
    box = Box(-np.ones(3), np.ones(3))
    exact = milp_bound_spec(twin.f, twin.g, box.lower, box.upper, -np.eye(1), np.eye(1), time_limit=30)
    assert exact.optimal.all()
    worst = float(max(-exact.lower[0], exact.upper[0]))
    prop = EpsEquivalence(1.02 * worst)
    problem, _ = problem_for(prop, twin, box)
    lo, hi = box.to_torch(torch.float64)
    opts = SearchOptions(batch_size=8, branching="smear")
    first = list(branch_and_bound(twin, problem, lo, hi, ENGINES["diff"], replace(opts, deadline=time.perf_counter())))[-1]
    assert first.verdict == "unresolved" and first.resume is not None
    assert first.resume.lo.shape[0] >= 1 and first.proven_fraction < 1.0
    second = list(branch_and_bound(twin, problem, lo, hi, ENGINES["diff"], opts, resume=first.resume))[-1]
    assert second.verdict == "holds"  # and the MILP agrees: the worst case is within eps by construction
    # the resumed search's bounds cover the whole region: they contain the exact range
    assert float(second.lower[0]) <= float(exact.lower[0]) + 1e-7
    assert float(second.upper[0]) >= float(exact.upper[0]) - 1e-7
    assert second.proven_fraction >= first.proven_fraction
