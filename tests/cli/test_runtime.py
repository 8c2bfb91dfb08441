"""The process-wide allocator setting the CLI and benchmark workers apply (simcert.runtime)."""

import sys

import numpy as np
import pytest

from simcert.network import Dense, Network, ReLU
from simcert.runtime import tune_allocator
from simcert.spec import Box, EpsEquivalence
from simcert.verify import verify


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt only")
def test_tune_allocator_applies_on_glibc():
    assert tune_allocator() is True
    assert tune_allocator() is True  # idempotent


def test_verdicts_unchanged_after_tuning():
    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(8, 3)), rng.normal(size=(1, 8))
    f = Network([Dense(w1, np.zeros(8)), ReLU(), Dense(w2, np.zeros(1))], (3,))
    g = Network([Dense(w1 * 1.001, np.zeros(8)), ReLU(), Dense(w2, np.zeros(1))], (3,))
    box = Box([-1, -1, -1], [1, 1, 1])
    before = verify(f, g, box, EpsEquivalence(0.05), timeout=20)
    tune_allocator()
    after = verify(f, g, box, EpsEquivalence(0.05), timeout=20)
    assert before.verdict == after.verdict == "holds"
    np.testing.assert_allclose(before.upper, after.upper)
