"""Warm starts of the differential engine and the search: intermediate bounds of a parent box reused on its
sub-boxes, and rows of many boxes gathered into one back-substitution batch.

A warm-started bound must stay sound (contain every sampled value of the sub-box) and be at least as tight as
a cold one; a box's bounds must not depend on which other boxes share its batch.
"""

import dataclasses

import numpy as np
import pytest
import torch

from simcert.bounds import ENGINES
from simcert.bounds.diff import DiffIntermediate, diff_bounds, diff_forward
from simcert.compress import prune_structured, quantize_weights, to_float16
from simcert.bounds.milp import milp_bound_spec
from simcert.search.bab import SearchOptions, branch_and_bound
from simcert.search.problem import SpecProblem
from simcert.twin import Twin

from bound_nets import mlp

DT = torch.float64


def twins():
    rng = np.random.default_rng(3)
    f = mlp(rng, [4, 16, 16, 16, 3])
    yield "float16", f, to_float16(f)
    yield "int4", f, quantize_weights(f, 4, per_channel=True)
    yield "structured", f, prune_structured(f, 0.4)


def random_sub_boxes(rng, parent_lo, parent_hi, count):
    """`count` random sub-boxes of each parent box: (count * B, n) bounds and the parent index of each."""
    b, n = parent_lo.shape
    idx = torch.arange(b).repeat_interleave(count)
    a = torch.from_numpy(rng.uniform(size=(b * count, n)))
    c = torch.from_numpy(rng.uniform(size=(b * count, n)))
    lo_t, hi_t = torch.minimum(a, c), torch.maximum(a, c)
    width = parent_hi[idx] - parent_lo[idx]
    return parent_lo[idx] + lo_t * width, parent_lo[idx] + hi_t * width, idx


@pytest.mark.parametrize("name,f,g", list(twins()), ids=[t[0] for t in twins()])
def test_pack_unpack_round_trip(name, f, g):
    twin = Twin(f, g)
    lo = -torch.ones(3, 4, dtype=DT)
    inter, _, _ = diff_forward(twin, lo, -lo + torch.arange(3, dtype=DT)[:, None], refine=True)
    packed = inter.pack()
    back = DiffIntermediate.unpack(packed, twin)
    assert sorted(back) == sorted(inter.z)
    for i, six in back.items():
        for got, want in zip(six, (*inter.z[i], *inter.g[i], *inter.d[i])):
            assert torch.equal(got, want)


@pytest.mark.parametrize("engine", ["diff", "diff-forward"])
@pytest.mark.parametrize("name,f,g", list(twins()), ids=[t[0] for t in twins()])
def test_warm_started_bounds_are_sound_and_no_looser(name, f, g, engine):
    twin = Twin(f, g)
    rng = np.random.default_rng(5)
    centre = torch.from_numpy(rng.normal(size=(6, 4)))
    p_lo, p_hi = centre - 1.0, centre + 1.0
    c1 = -torch.eye(3, dtype=DT)
    c2 = torch.eye(3, dtype=DT)
    fn = ENGINES[engine]
    parent = fn(twin, p_lo, p_hi, c1, c2)
    assert parent.state is not None and parent.state.shape[0] == 6
    lo, hi, idx = random_sub_boxes(rng, p_lo, p_hi, 5)
    cold = fn(twin, lo, hi, c1, c2)
    warm = fn(twin, lo, hi, c1, c2, prior=parent.state[idx])
    assert torch.all(warm.lower >= cold.lower - 1e-9)
    assert torch.all(warm.upper <= cold.upper + 1e-9)
    assert torch.all(warm.lower <= warm.upper)
    # containment on sampled points of every sub-box
    t = torch.from_numpy(rng.uniform(size=(200, *lo.shape)))
    x = (lo + t * (hi - lo)).reshape(-1, 4)
    v = (g.forward(x) - f.forward(x)).reshape(200, -1, 3)
    assert torch.all(v >= warm.lower - 1e-9) and torch.all(v <= warm.upper + 1e-9)


@pytest.mark.parametrize("name,f,g", list(twins()), ids=[t[0] for t in twins()])
def test_a_box_bounds_do_not_depend_on_its_batch(name, f, g):
    """Rows of unstable neurons from all boxes share one back-substitution batch; each box's result must equal
    the bound computed for that box alone."""
    twin = Twin(f, g)
    rng = np.random.default_rng(11)
    centre = torch.from_numpy(rng.normal(size=(7, 4)))
    radius = torch.from_numpy(rng.uniform(0.05, 1.5, size=(7, 1)))
    lo, hi = centre - radius, centre + radius
    c1, c2 = -torch.eye(3, dtype=DT), torch.eye(3, dtype=DT)
    batch = diff_bounds(twin, lo, hi, c1, c2, intermediate="backward")
    for b in range(7):
        alone = diff_bounds(twin, lo[b : b + 1], hi[b : b + 1], c1, c2, intermediate="backward")
        torch.testing.assert_close(alone.lower[0], batch.lower[b], rtol=1e-10, atol=1e-10)
        torch.testing.assert_close(alone.upper[0], batch.upper[b], rtol=1e-10, atol=1e-10)


def _search(twin, prob, lo, hi, **opts):
    state = None
    for state in branch_and_bound(twin, prob, lo, hi, ENGINES["diff"], SearchOptions(**opts)):
        if state.done:
            break
    return state


@pytest.mark.parametrize("bits", [16, 4])
def test_search_with_and_without_warm_start_agrees_with_milp(bits):
    """Verdicts at eps just above and below the exact maximum, with warm starts and with the memory cap at 0
    (no warm start); the state is aligned with the frontier, or a "holds" could be wrong."""
    f = mlp(np.random.default_rng(bits), [4, 10, 10, 3])
    g = to_float16(f) if bits == 16 else quantize_weights(f, bits, per_channel=True)
    twin = Twin(f, g)
    lo, hi = -torch.ones(4, dtype=DT), torch.ones(4, dtype=DT)
    c1, c2 = -torch.eye(3, dtype=DT)[:1], torch.eye(3, dtype=DT)[:1]
    exact = milp_bound_spec(twin.f, twin.g, lo.numpy(), hi.numpy(), c1.numpy(), c2.numpy(), time_limit=30)
    assert exact.optimal.all()
    top = float(exact.upper[0])
    for eps, want in ((top * 1.05 + 1e-6, "holds"), (top * 0.95, "violated")):
        prob = SpecProblem(c1, c2, torch.tensor([-np.inf], dtype=DT), torch.tensor([eps], dtype=DT))
        for cap in (2048.0, 0.0):
            state = _search(twin, prob, lo, hi, max_state_mb=cap, attack_starts=0 if want == "holds" else 64)
            assert state.verdict == want, (eps, cap, state.verdict)
            if cap == 0.0 and want == "holds":
                assert any("memory cap" in n for n in state.notes) or state.boxes_bounded == 1


def test_engines_without_a_state_leave_it_empty():
    rng = np.random.default_rng(0)
    f = mlp(rng, [2, 6, 2])
    twin = Twin(f, to_float16(f))
    lo, hi = -torch.ones(2, 2, dtype=DT), torch.ones(2, 2, dtype=DT)
    for name in ("interval", "crown"):
        assert ENGINES[name](twin, lo, hi, -torch.eye(2, dtype=DT), torch.eye(2, dtype=DT)).state is None
    assert dataclasses.fields(ENGINES["diff"](twin, lo, hi, -torch.eye(2, dtype=DT), torch.eye(2, dtype=DT)))


@pytest.mark.parametrize("name,f,g", list(twins()), ids=[t[0] for t in twins()])
def test_settled_boxes_skip_refinement_only(name, f, g):
    """Boxes a search marks settled keep the forward pass's bounds; every other box gets exactly the refined
    bounds it gets without the mask; all of them contain sampled values."""
    twin = Twin(f, g)
    rng = np.random.default_rng(7)
    lo, hi, _ = random_sub_boxes(rng, -torch.ones(1, 4, dtype=DT), torch.ones(1, 4, dtype=DT), 12)
    c1 = -torch.eye(3, dtype=DT)[:1]
    c2 = torch.eye(3, dtype=DT)[:1]
    full = diff_bounds(twin, lo, hi, c1, c2, intermediate="backward")
    forward = diff_bounds(twin, lo, hi, c1, c2)
    mask = torch.zeros(lo.shape[0], dtype=torch.bool)
    mask[::3] = True
    part = diff_bounds(twin, lo, hi, c1, c2, intermediate="backward", settled=lambda b: mask)
    torch.testing.assert_close(part.lower[mask], forward.lower[mask])
    torch.testing.assert_close(part.upper[~mask], full.upper[~mask])
    torch.testing.assert_close(part.lower[~mask], full.lower[~mask])
    torch.testing.assert_close(part.state[~mask], full.state[~mask])
    none = diff_bounds(twin, lo, hi, c1, c2, intermediate="backward", settled=lambda b: torch.zeros_like(mask))
    torch.testing.assert_close(none.upper, full.upper)
    x = lo[:, None] + (hi - lo)[:, None] * torch.rand(lo.shape[0], 200, 4, dtype=DT)
    xs = x.reshape(-1, 4)
    d = (g.forward(xs)[:, 0] - f.forward(xs)[:, 0]).reshape(lo.shape[0], 200)
    assert (part.lower[:, 0, None] <= d + 1e-9).all() and (d <= part.upper[:, 0, None] + 1e-9).all()


@pytest.mark.parametrize("name,f,g", list(twins()), ids=[t[0] for t in twins()])
def test_unscreened_bounds_are_sound_and_close_to_screened(name, f, g):
    """`screen=False` (the refined pass without the forward pass first, used for a region's own box) stays
    sound, keeps a state the children can warm-start from, and differs from the screened bound only by the
    forward pass's intersection (it is never tighter than it)."""
    twin = Twin(f, g)
    rng = np.random.default_rng(21)
    centre = torch.from_numpy(rng.normal(size=(5, 4)))
    lo, hi = centre - 0.8, centre + 0.8
    c1, c2 = -torch.eye(3, dtype=DT), torch.eye(3, dtype=DT)
    screened = diff_bounds(twin, lo, hi, c1, c2, intermediate="backward")
    alone = diff_bounds(twin, lo, hi, c1, c2, intermediate="backward", screen=False)
    assert alone.state is not None and alone.state.shape == screened.state.shape
    assert torch.all(screened.lower >= alone.lower - 1e-12) and torch.all(screened.upper <= alone.upper + 1e-12)
    t = torch.from_numpy(rng.uniform(size=(400, *lo.shape)))
    x = (lo + t * (hi - lo)).reshape(-1, 4)
    v = (g.forward(x) - f.forward(x)).reshape(400, -1, 3)
    assert torch.all(v >= alone.lower) and torch.all(v <= alone.upper)
    # the unscreened pass is the refined pass the screened call runs second (up to the intersection)
    width = lambda b: (b.upper - b.lower).median()  # noqa: E731
    assert float(width(alone)) <= 1.05 * float(width(screened))


def test_the_search_bounds_only_its_root_without_the_screening_pass():
    rng = np.random.default_rng(4)
    f = mlp(rng, [3, 12, 12, 2])
    g = to_float16(f)
    twin = Twin(f, g)
    calls = []

    def engine(twin, lower, upper, c1, c2, prior=None, settled=None, screen=True):
        calls.append((lower.shape[0], prior is None, screen))
        return diff_bounds(twin, lower, upper, c1, c2, intermediate="backward", prior=prior, settled=settled,
                           screen=screen)

    prob = SpecProblem(-torch.eye(2, dtype=DT), torch.eye(2, dtype=DT), torch.full((2,), -1.1e-3, dtype=DT),
                       torch.full((2,), 1.1e-3, dtype=DT))
    lo, hi = -torch.ones(3, dtype=DT), torch.ones(3, dtype=DT)
    for state in branch_and_bound(twin, prob, lo, hi, engine, SearchOptions(attack_starts=0, max_frontier=4000)):
        if state.done or state.steps >= 4:
            break
    assert len(calls) >= 2, "the root was proven at once: make the spec harder"
    assert calls[0] == (1, True, False)
    assert all(screen for _, _, screen in calls[1:])
