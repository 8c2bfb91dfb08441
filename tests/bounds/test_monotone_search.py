"""Monotone-input fixing inside the search: it fires on twins whose rows are monotone on sub-boxes, and the
verdicts and anytime bounds stay those of the exact MILP."""

import numpy as np
import pytest
import torch
from bound_nets import mlp

from simcert.bounds import ENGINES
from simcert.bounds.gradient import monotone_signs
from simcert.bounds.milp import milp_bound_spec
from simcert.search.bab import SearchOptions, branch_and_bound
from simcert.search.problem import SpecProblem
from simcert.twin import Twin


def _case(seed: int):
    rng = np.random.default_rng(seed)
    f = mlp(rng, [3, 8, 8, 2])
    g = mlp(np.random.default_rng(seed), [3, 8, 8, 2])
    for layer in g.layers:
        if hasattr(layer, "weight"):
            layer.weight = layer.weight + rng.normal(size=layer.weight.shape) * 0.1
    twin = Twin(f, g)
    c1 = torch.tensor([[-1.0, 0.0], [0.0, -1.0]], dtype=torch.float64)
    c2 = -c1
    lo, hi = -torch.ones(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    exact = milp_bound_spec(f, g, lo.numpy(), hi.numpy(), c1.numpy(), c2.numpy(), time_limit=20)
    assert exact.optimal.all()
    return twin, c1, c2, lo, hi, exact


def _search(twin, prob, lo, hi, monotone: bool):
    calls = {"faced": 0}

    def counting(tw, state, c1, c2):
        signs = monotone_signs(tw, state, c1, c2)
        calls["faced"] += int((signs != 0).any(-1).sum())
        return signs

    opts = SearchOptions(batch_size=16, monotone_fn=counting if monotone else None)
    states = list(branch_and_bound(twin, prob, lo, hi, ENGINES["diff"], opts))
    return states, calls["faced"]


@pytest.mark.parametrize("seed", range(8))
def test_monotone_fixing_agrees_with_milp(seed: int) -> None:
    twin, c1, c2, lo, hi, exact = _case(seed)
    worst_lo, worst_hi = exact.lower, exact.upper  # exact range of each row (optimal MILP)
    for margin in (1.02, 0.98):
        eps = margin * float(np.max(np.maximum(-worst_lo, worst_hi)))
        prob = SpecProblem(c1, c2, torch.full((2,), -eps, dtype=torch.float64), torch.full((2,), eps, dtype=torch.float64))
        states, _ = _search(twin, prob, lo, hi, monotone=True)
        last = states[-1]
        assert last.verdict == ("holds" if margin > 1 else "violated")
        for st in states:  # anytime bounds contain the exact range at every step
            assert (st.lower.numpy() <= worst_lo + 1e-9).all() and (st.upper.numpy() >= worst_hi - 1e-9).all()
        if last.verdict == "holds":
            assert last.proven_fraction == 1.0


@pytest.mark.parametrize("seed", [3, 4])
def test_monotone_fixing_fires_and_saves_boxes(seed: int) -> None:
    """On these twins some boxes are monotone in an input; fixing it there proves with fewer boxes."""
    twin, c1, c2, lo, hi, exact = _case(seed)
    eps = 1.02 * float(np.max(np.maximum(-exact.lower, exact.upper)))
    prob = SpecProblem(c1, c2, torch.full((2,), -eps, dtype=torch.float64), torch.full((2,), eps, dtype=torch.float64))
    with_fixing, faced = _search(twin, prob, lo, hi, monotone=True)
    without, _ = _search(twin, prob, lo, hi, monotone=False)
    assert faced > 0
    assert with_fixing[-1].verdict == without[-1].verdict == "holds"
    assert with_fixing[-1].boxes_bounded < without[-1].boxes_bounded


def test_one_sided_rows_use_faces() -> None:
    """A row with only an upper limit: faces carry just that side; bounds and verdict match the MILP."""
    twin, c1, c2, lo, hi, exact = _case(3)
    top = float(exact.upper[0])
    for limit, verdict in ((top * 1.01 + 1e-3, "holds"), (top - 0.02 * abs(top) - 1e-3, "violated")):
        prob = SpecProblem(c1[:1], c2[:1], torch.full((1,), -np.inf, dtype=torch.float64),
                           torch.full((1,), limit, dtype=torch.float64))
        states, _ = _search(twin, prob, lo, hi, monotone=True)
        assert states[-1].verdict == verdict
        assert all(float(st.upper[0]) >= top - 1e-9 for st in states)
        # the side without a limit is still bounded, soundly (the report shows both sides)
        assert all(-np.inf < float(st.lower[0]) <= float(exact.lower[0]) + 1e-9 for st in states)
