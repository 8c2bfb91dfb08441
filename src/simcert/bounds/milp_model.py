"""The MILP model of `milp` under construction: columns, sparse rows, and sound interval ranges of rows."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import scipy.sparse as sp

# Relative widening of interval pre-activation bounds: float64 rounding of a sum of N terms is at most
# about N * 1.1e-16 * sum |terms|, far below this for any network the MILP can handle (N < 1e6).
_IBP_REL_WIDEN = 1e-9


class _Model:
    """Columns (with bounds and integrality) and sparse rows of the MILP, built incrementally."""

    def __init__(self) -> None:
        self.lo: list[np.ndarray] = []
        self.hi: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.ncols = 0
        self.rows: list[sp.csr_matrix] = []
        self.row_lo: list[np.ndarray] = []
        self.row_hi: list[np.ndarray] = []
        self.n_rows = 0
        self.round_rows: list[np.ndarray] = []  # indices of the rows  -1/2 <= z/s - r <= 1/2
        self.n_binary = 0  # integer columns with more than one admissible value
        self.n_input = 0  # the first n_input columns are the network input
        self.lp_deadline = 0.0  # LP bound tightening runs until this perf_counter() time
        self.max_binaries = np.inf
        # how to compute each column from the input (for MIP starts): (kind, cols, *data), in creation order
        self.defs: list[tuple] = []

    def add_cols(self, lo: np.ndarray, hi: np.ndarray, integer: bool = False) -> np.ndarray:
        lo, hi = np.asarray(lo, np.float64).ravel(), np.asarray(hi, np.float64).ravel()
        idx = np.arange(self.ncols, self.ncols + lo.size)
        self.lo.append(lo)
        self.hi.append(hi)
        self.integer.append(np.full(lo.size, integer))
        self.ncols += lo.size
        if integer:
            self.n_binary += int(np.sum(hi > lo))
            if self.n_binary > self.max_binaries:
                self.lp_deadline = 0.0  # the model will be refused: finish counting cheaply
        return idx

    def add_rows(self, a: sp.spmatrix, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Rows lo <= a . cols <= hi (a over the first a.shape[1] columns); returns their indices."""
        self.rows.append(sp.csr_matrix(a))
        self.row_lo.append(np.asarray(lo, np.float64).ravel())
        self.row_hi.append(np.asarray(hi, np.float64).ravel())
        idx = np.arange(self.n_rows, self.n_rows + a.shape[0])
        self.n_rows += a.shape[0]
        return idx

    def values(self, x: np.ndarray) -> np.ndarray:
        """All column values for input x (an exact execution of both networks), in float64."""
        v = np.zeros(self.ncols)
        for kind, cols, *data in self.defs:
            if kind == "input":
                v[cols] = x
            elif kind == "affine":  # z = a . v + c
                a, c = data
                v[cols] = a @ v[: a.shape[1]] + c
            elif kind == "relu":
                v[cols] = np.maximum(v[data[0]], 0.0)
            elif kind == "step":
                v[cols] = (v[data[0]] > 0).astype(np.float64)
            else:  # "round": r = round((a . v + c) / s)
                a, c, s, mode = data
                q = (a @ v[: a.shape[1]] + c) / s
                v[cols] = np.round(q) if mode == "half_even" else np.floor(q + 0.5)
        return v

    def col_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self.lo), np.concatenate(self.hi)

    def unit_rows(self, cols: np.ndarray) -> sp.csr_matrix:
        """Rows e_col for each col (one row per entry of `cols`), over all current columns."""
        n = cols.size
        return sp.csr_matrix((np.ones(n), cols, np.arange(n + 1)), shape=(n, self.ncols))


def _pad(a: sp.csr_matrix, ncols: int) -> sp.csr_matrix:
    """The same rows over `ncols` >= a.shape[1] columns."""
    a = sp.csr_matrix(a)
    return sp.csr_matrix((a.data, a.indices, a.indptr), shape=(a.shape[0], ncols))


def _stack_rows(parts: Sequence[tuple[np.ndarray, sp.csr_matrix]], m: int, ncols: int) -> sp.csr_matrix:
    """Assemble an (m, ncols) matrix from (row indices, rows) pieces."""
    order = np.concatenate([p[0] for p in parts])
    mats = sp.vstack([_pad(p[1], ncols) for p in parts], format="csr")
    perm = np.empty(m, dtype=np.int64)
    perm[order] = np.arange(m)
    return sp.csr_matrix(mats[perm])


def _interval(a: sp.csr_matrix, c: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sound float64 range of a . v + c for v in [lo, hi] (widened by a rigorous relative rounding margin)."""
    lo, hi = lo[: a.shape[1]], hi[: a.shape[1]]
    mid, rad = (lo + hi) / 2.0, (hi - lo) / 2.0
    absa = abs(a)
    center = a @ mid + c
    radius = absa @ rad
    widen = _IBP_REL_WIDEN * (absa @ np.abs(mid) + radius + np.abs(c))
    return center - radius - widen, center + radius + widen
