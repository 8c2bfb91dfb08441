"""Shared fixtures. Tests that need ../shared/benchmarks use `bench` and skip cleanly without it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from simcert.paths import benchmarks_dir
from simcert.runtime import tune_allocator

# Small matrix products are far faster with one thread on 2-core machines (see docs/benchmarks.md), and the
# engines' many-MiB temporaries with glibc keeping freed blocks (simcert.runtime).
torch.set_num_threads(1)
tune_allocator()


@pytest.fixture(scope="session")
def bench() -> Path:
    path = benchmarks_dir()
    if path is None:
        pytest.skip("shared benchmark data not found (set SIMCERT_BENCHMARKS or put it in ../shared/benchmarks)")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
