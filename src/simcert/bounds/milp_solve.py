"""HiGHS helpers for `milp`: quiet solver setup, the model as a HighsLp, MIP start points and witnesses."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp

from ..network.network import Network
from .milp_model import _Model, _pad

# Outward margin on solver bounds (see the `milp` module docstring).
_SOLVER_REL_MARGIN = 1e-6


_BANNER_LOCK = threading.Lock()
_BANNER_DONE = False


@contextlib.contextmanager
def _quiet_stdout_fd() -> Iterator[None]:
    """Silence C-level stdout (HiGHS prints a banner when its first object is made); best effort."""
    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).fflush(None)
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def _new_highs() -> Any:
    global _BANNER_DONE
    import highspy

    with _BANNER_LOCK:
        if _BANNER_DONE:
            h = highspy.Highs()
        else:
            with _quiet_stdout_fd():
                h = highspy.Highs()
            _BANNER_DONE = True
    h.setOptionValue("output_flag", False)
    h.setOptionValue("log_to_console", False)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-9)
    return h


def _option(h: Any, name: str) -> float:
    """A numeric HiGHS option (highspy returns either the value or a (status, value) pair)."""
    v = h.getOptionValue(name)
    return float(v[-1] if isinstance(v, tuple) else v)


def _matrix(model: _Model) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """All rows as one (rows, ncols) matrix with their lower/upper bounds."""
    if not model.rows:
        return sp.csr_matrix((0, model.ncols)), np.zeros(0), np.zeros(0)
    a = sp.vstack([_pad(r, model.ncols) for r in model.rows], format="csr")
    return a, np.concatenate(model.row_lo), np.concatenate(model.row_hi)


def _highs_lp(
    a: sp.csr_matrix, rlo: np.ndarray, rhi: np.ndarray, clo: np.ndarray, chi: np.ndarray,
    integer: np.ndarray | None = None,
) -> Any:
    """A HighsLp with rows rlo <= a . v <= rhi, columns clo <= v <= chi (integer where `integer`)."""
    import highspy

    a = sp.csr_matrix(a)
    a.sum_duplicates()
    a.eliminate_zeros()
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = a.shape[1], a.shape[0]
    lp.col_cost_ = np.zeros(a.shape[1])
    lp.col_lower_, lp.col_upper_ = clo, chi
    lp.row_lower_, lp.row_upper_ = rlo, rhi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = a.shape[1], a.shape[0]
    lp.a_matrix_.start_ = a.indptr.astype(np.int32)
    lp.a_matrix_.index_ = a.indices.astype(np.int32)
    lp.a_matrix_.value_ = a.data.astype(np.float64)
    if integer is not None and integer.any():
        lp.integrality_ = [highspy.HighsVarType.kInteger if b else highspy.HighsVarType.kContinuous for b in integer]
    return lp


def _to_highs_lp(model: _Model, relax: bool = False) -> Any:
    """The model (its LP relaxation with `relax`) for HiGHS."""
    a, rlo, rhi = _matrix(model)
    lo, hi = model.col_bounds()
    return _highs_lp(a, rlo, rhi, lo, hi, None if relax else np.concatenate(model.integer))


def _start_points(
    f: Network, g: Network, lo: np.ndarray, hi: np.ndarray, c1: np.ndarray, c2: np.ndarray, n_random: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate inputs (centre, corners of boxes with <= 8 inputs, seeded uniform samples) and their real
    spec values (N, k), evaluated by running both networks."""
    pts = [(lo + hi) / 2, lo, hi]
    if lo.size <= 8:
        pts += list(np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(lo.size, -1).T)
    x = np.concatenate([np.array(pts), np.random.default_rng(0).uniform(lo, hi, size=(n_random, lo.size))])
    return x, f(x) @ c1.T + g(x) @ c2.T


def _interior_witness(model: _Model, sol: np.ndarray, obj: np.ndarray, value: float, maximize: bool) -> np.ndarray:
    """A point of the incumbent's integer cell as far from its rounding ties as possible (at most 1/4 grid
    step), keeping the objective within 1e-7 relative of the incumbent's `value` (objective without offset).

    An incumbent of a quantized twin may sit on a tie z/s = k + 1/2 where the real network rounds the other
    way; this LP (integers fixed, tie rows shrunk by a slack t, maximize t) moves it inside the cell, so the
    real networks evaluate to the solver's value. Returns the input part of the LP solution (or of `sol`)."""
    import highspy

    a, rlo, rhi = _matrix(model)
    clo, chi = model.col_bounds()
    integ = np.concatenate(model.integer)
    clo, chi = clo.copy(), chi.copy()
    clo[integ] = chi[integ] = np.round(sol[integ])
    tie = np.concatenate(model.round_rows)
    n = model.ncols
    t_col = sp.csr_matrix(np.ones((tie.size, 1)))
    other = np.setdiff1d(np.arange(a.shape[0]), tie)
    tol = 1e-7 * (1.0 + abs(value))
    rows = sp.vstack([
        sp.hstack([a[other], sp.csr_matrix((other.size, 1))]),
        sp.hstack([a[tie], -t_col]),  # z/s - r - t >= -1/2
        sp.hstack([a[tie], t_col]),  # z/s - r + t <= 1/2
        sp.csr_matrix(np.append(obj, 0.0)[None]),
    ], format="csr")
    lo_obj, hi_obj = (value - tol, np.inf) if maximize else (-np.inf, value + tol)
    rl = np.concatenate([rlo[other], rlo[tie], np.full(tie.size, -np.inf), [lo_obj]])
    ru = np.concatenate([rhi[other], np.full(tie.size, np.inf), rhi[tie], [hi_obj]])
    h = _new_highs()
    h.passModel(_highs_lp(rows, rl, ru, np.append(clo, 0.0), np.append(chi, 0.25)))
    h.changeColsCost(1, np.array([n], dtype=np.int32), np.array([1.0]))
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    h.setOptionValue("time_limit", 5.0)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
        return np.asarray(h.getSolution().col_value, np.float64)[: model.n_input]
    return sol[: model.n_input]
