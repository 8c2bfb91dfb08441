"""Relative safety margins over a data set: one L-inf ball per input, batched (issue 5, item 2).

Per sample i with label c_i: the ball B_i = {x : |x - x_i|_inf <= r} clipped to `clip`; certified bounds of
Pi_{c_i j} over B_i for every j (one engine call per label and chunk of `batch` boxes), concrete extremes from a
batched attack and the engine's corners, then branch and bound on the sides still undecided, within a
per-sample time budget. The summary aggregates implications, accuracy, bound distributions and the class
pairs where the twin loses most margin (largest Pi: f's margin exceeds g's the most).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .errors import InputError
from .network import Network
from .rsm_core import (
    SIDES,
    PiAttack,
    attack_pi,
    candidate_points,
    extremes_at,
    identical_twins,
    rsm_engine,
    search_side,
)
from .rsm_result import RsmWitness, check_label, confirm_witness, json_float
from .search.bab import SearchOptions
from .spec import Box, RsmSpec
from .twin import Twin
from .verify import as_network

__all__ = ["RsmDatasetResult", "rsm_dataset", "QUANTILES"]

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


def _distribution(v: np.ndarray) -> dict[str, Any]:
    """min, 5/25/50/75/95% quantiles, max and mean of the values (JSON-safe)."""
    if v.size == 0:
        return {}
    names = ("min", "q05", "q25", "median", "q75", "q95", "max")
    out = {n: json_float(q) for n, q in zip(names, np.quantile(v, QUANTILES))}
    out["mean"] = json_float(np.mean(v))
    return out


@dataclass
class RsmDatasetResult:
    """Per-sample RSM results over a data set, and their `summary` (a JSON-friendly dict).

    labels, f_pred, g_pred (N,): the label used and both models' decisions at the inputs; lower/upper (N, m):
    certified bounds of Pi_{c_i j} over sample i's ball (0 in column c_i); observed_lower/observed_upper (N, m):
    extremes seen at concrete points; status[side] (N,) of "proven" | "refuted" | "unknown"; witnesses[i][side]
    confirmed witnesses; time_s (N,) time attributed to each sample.
    """

    radius: float
    method: str
    labels: np.ndarray
    labels_given: bool
    f_pred: np.ndarray
    g_pred: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    observed_lower: np.ndarray
    observed_upper: np.ndarray
    status: dict[str, np.ndarray]
    witnesses: list[dict[str, RsmWitness | None]]
    time_s: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.labels.size)

    def _rows(self) -> np.ndarray:
        m = self.lower.shape[1]
        return np.arange(m)[None, :] != self.labels[:, None]

    @property
    def verdicts(self) -> np.ndarray:
        """(N,) "both" | "g=>f" | "f=>g" | "neither"."""
        gf, fg = (self.status[s] == "proven" for s in SIDES)
        return np.where(gf & fg, "both", np.where(gf, "g=>f", np.where(fg, "f=>g", "neither")))

    def min_lower(self) -> np.ndarray:
        """(N,) min_j of the certified lower bounds (>= 0 iff g=>f is proven by the bounds)."""
        return np.where(self._rows(), self.lower, np.inf).min(1)

    def max_upper(self) -> np.ndarray:
        """(N,) max_j of the certified upper bounds (<= 0 iff f=>g is proven by the bounds)."""
        return np.where(self._rows(), self.upper, -np.inf).max(1)

    @property
    def summary(self) -> dict[str, Any]:
        n = self.n
        frac = lambda mask: float(np.count_nonzero(mask)) / n  # noqa: E731
        verdicts = self.verdicts
        gf, fg = self.status["g=>f"] == "proven", self.status["f=>g"] == "proven"
        out: dict[str, Any] = {
            "samples": n,
            "radius": self.radius,
            "method": self.method,
            "label_source": "given labels" if self.labels_given else "f at each input",
            "g=>f_proven": frac(gf),
            "f=>g_proven": frac(fg),
            "neither": frac(~gf & ~fg),
            "verdicts": {v: frac(verdicts == v) for v in ("both", "g=>f", "f=>g", "neither")},
            "implications": {
                s: {k: frac(self.status[s] == k) for k in ("proven", "refuted", "unknown")} for s in SIDES
            },
        }
        f_ok, g_ok = self.f_pred == self.labels, self.g_pred == self.labels
        out["accuracy"] = {
            "f_correct": frac(f_ok),
            "g_correct": frac(g_ok),
            "both_correct": frac(f_ok & g_ok),
            "twin_wrong": frac(~g_ok),
            "twin_wrong_where_f_right": frac(f_ok & ~g_ok),
            "f_wrong_where_twin_right": frac(~f_ok & g_ok),
            "agreement": frac(self.f_pred == self.g_pred),
        }
        obs_lo = np.where(self._rows(), self.observed_lower, np.inf).min(1)
        obs_hi = np.where(self._rows(), self.observed_upper, -np.inf).max(1)
        out["bounds"] = {
            "min_lower": _distribution(self.min_lower()),
            "max_upper": _distribution(self.max_upper()),
            "observed_min": _distribution(obs_lo),
            "observed_max": _distribution(obs_hi),
        }
        out["margin_lost_most"] = self.pairs_losing_margin()
        out["time"] = {
            "total_s": float(self.stats.get("time_s", float(self.time_s.sum()))),
            "per_sample_s": float(self.time_s.mean()),
            **{k: float(v) for k, v in self.stats.items() if k.endswith("_s") and k != "time_s"},
        }
        return out

    def pairs_losing_margin(self, top: int = 5) -> list[dict[str, Any]]:
        """The class pairs (c, j) with the largest observed Pi_cj (g's margin below f's by that much, at a
        concrete point), with the largest certified upper bound and the number of samples of label c."""
        rows = []
        m = self.lower.shape[1]
        for c in np.unique(self.labels):
            sel = self.labels == c
            for j in range(m):
                if j == c:
                    continue
                rows.append({
                    "label": int(c),
                    "other": int(j),
                    "samples": int(sel.sum()),
                    "max_observed": float(self.observed_upper[sel, j].max()),
                    "mean_observed": float(self.observed_upper[sel, j].mean()),
                    "max_certified_upper": json_float(self.upper[sel, j].max()),
                })
        rows.sort(key=lambda r: -r["max_observed"])
        return rows[:top]

    def to_dict(self, per_sample: bool = True) -> dict[str, Any]:
        """The summary, and (with `per_sample`) one record per sample; JSON-friendly (no NaN/inf)."""
        out: dict[str, Any] = {"summary": self.summary}
        if per_sample:
            ml, mu = self.min_lower(), self.max_upper()
            out["samples"] = [
                {
                    "index": i,
                    "label": int(self.labels[i]),
                    "f_pred": int(self.f_pred[i]),
                    "g_pred": int(self.g_pred[i]),
                    "verdict": str(self.verdicts[i]),
                    "implications": {s: str(self.status[s][i]) for s in SIDES},
                    "min_lower": json_float(ml[i]),
                    "max_upper": json_float(mu[i]),
                    "lower": [json_float(v) for v in self.lower[i]],
                    "upper": [json_float(v) for v in self.upper[i]],
                    "witnesses": {s: (None if w is None else w.to_dict()) for s, w in self.witnesses[i].items()},
                    "time_s": float(self.time_s[i]),
                }
                for i in range(self.n)
            ]
        return out


def _inputs(inputs: Any, net: Network) -> np.ndarray:
    try:
        x = np.array(inputs, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"inputs must be numeric: {exc}") from None
    if x.ndim == 1:
        x = x[None]
    if x.ndim < 2 or x.shape[0] == 0:
        raise InputError(f"inputs must be a non-empty batch (N, n), got shape {x.shape}")
    x = x.reshape(x.shape[0], -1)
    if x.shape[1] != net.input_size:
        raise InputError(f"inputs have {x.shape[1]} values per row, {net.name} expects {net.input_size}")
    bad = ~np.isfinite(x)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise InputError(f"input row {i} value [{j}] is {x[i, j]} (must be finite)")
    return x


def _labels(labels: Any, n: int, m: int) -> np.ndarray:
    arr = np.asarray(labels).reshape(-1)
    if arr.size != n:
        raise InputError(f"got {arr.size} labels for {n} inputs")
    return np.array([check_label(v, m) for v in arr.tolist()], dtype=np.int64)


def rsm_dataset(
    f: Any,
    g: Any,
    inputs: Any,
    labels: Any = None,
    radius: float = 0.0,
    clip: tuple[Any, Any] | None = (0.0, 1.0),
    *,
    method: str = "auto",
    batch: int = 64,
    search: bool = True,
    time_per_sample: float = 2.0,
    attack_starts: int = 8,
    attack_steps: int = 20,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
) -> RsmDatasetResult:
    """RSM of every sample's L-inf ball of `radius` (clipped to `clip`), with label c_i = labels[i] (default: f's
    decision at x_i). One engine call per label and chunk of `batch` boxes, a batched attack, then (with
    `search`) branch and bound on each sample's undecided sides within `time_per_sample` seconds.
    `progress(stage, done, total)` is called after each chunk / sample.

    >>> from simcert.network import Network, Dense
    >>> f = Network([Dense(np.eye(2), np.zeros(2))], (2,))
    >>> g = Network([Dense(0.5 * np.eye(2), np.zeros(2))], (2,))
    >>> res = rsm_dataset(f, g, [[0.9, 0.1], [0.2, 0.8]], radius=0.05)
    >>> res.summary["g=>f_proven"], res.labels.tolist()
    (1.0, [0, 1])
    """
    t_start = time.perf_counter()
    f_net, g_net = as_network(f), as_network(g)
    twin = Twin(f_net, g_net)
    m = twin.output_size
    if m < 2:
        raise InputError(f"relative safety margins need at least 2 classes, {f_net.name} has {m} output")
    x = _inputs(inputs, f_net)
    n_samples, n_in = x.shape
    try:
        r = float(radius)
    except (TypeError, ValueError):
        raise InputError(f"radius must be a number, got {radius!r}") from None
    if not (math.isfinite(r) and r >= 0):
        raise InputError(f"radius must be finite and >= 0, got {radius!r}")
    if int(batch) != batch or batch < 1:
        raise InputError(f"batch must be a positive integer, got {batch!r}")
    if not time_per_sample > 0:
        raise InputError(f"time_per_sample must be positive, got {time_per_sample!r}")
    boxes = [Box.linf(row, r, clip) for row in x]
    lo_all = torch.as_tensor(np.stack([b.lower for b in boxes]))
    hi_all = torch.as_tensor(np.stack([b.upper for b in boxes]))
    f_pred, g_pred = f_net(x).argmax(1), g_net(x).argmax(1)
    labels_given = labels is not None
    lab = _labels(labels, n_samples, m) if labels_given else f_pred.astype(np.int64)
    lab_t = torch.as_tensor(lab)
    times = np.zeros(n_samples)
    status = {s: np.full(n_samples, "unknown", dtype=object) for s in SIDES}
    witnesses: list[dict[str, RsmWitness | None]] = [{s: None for s in SIDES} for _ in range(n_samples)]
    stats: dict[str, Any] = {}

    if identical_twins(twin):
        z = np.zeros((n_samples, m))
        for s in SIDES:
            status[s][:] = "proven"
        stats["time_s"] = time.perf_counter() - t_start
        return RsmDatasetResult(r, "identical twins", lab, labels_given, f_pred, g_pred, z, z.copy(), z.copy(),
                                z.copy(), status, witnesses, times, stats)

    # 1. attack every ball (batched)
    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    chunk = max(1, 4096 // max(1, attack_starts))
    atts = [attack_pi(twin, lo_all[i:i + chunk], hi_all[i:i + chunk], lab_t[i:i + chunk], attack_starts,
                      attack_steps, gen) for i in range(0, n_samples, chunk)]
    att = PiAttack.cat(atts)
    stats["attack_s"] = time.perf_counter() - t0
    times += stats["attack_s"] / n_samples

    # 2. certified bounds: one engine call per label and chunk
    lower = np.full((n_samples, m), -np.inf)
    upper = np.full((n_samples, m), np.inf)
    t0 = time.perf_counter()
    if method == "milp":
        from .bounds.milp import milp_bound_spec  # optional (highspy)

        method_name, bound_fn = "milp", None
        for i in range(n_samples):
            ti = time.perf_counter()
            c = int(lab[i])
            others = list(RsmSpec(c).other_indices(m))
            c1, c2 = RsmSpec(c).specs(m)
            res = milp_bound_spec(f_net, g_net, boxes[i].lower, boxes[i].upper, c1, c2, time_limit=time_per_sample)
            lower[i, others], upper[i, others] = res.lower, res.upper
            pts = [a[np.isfinite(a).all(1)] for a in (res.argmin, res.argmax) if a is not None]
            if pts and sum(p.shape[0] for p in pts):
                p = torch.as_tensor(np.concatenate(pts)).clamp(lo_all[i], hi_all[i])
                att.put(torch.tensor([i]), extremes_at(twin, p[None], lab_t[i:i + 1]))
            times[i] += time.perf_counter() - ti
            if progress is not None:
                progress("milp", i + 1, n_samples)
    else:
        method_name, bound_fn = rsm_engine(twin, method)
        done = 0
        for c in np.unique(lab):
            idx_all = np.flatnonzero(lab == c)
            c1, c2 = (torch.as_tensor(a) for a in RsmSpec(int(c)).specs(m))
            others = list(RsmSpec(int(c)).other_indices(m))
            for s in range(0, idx_all.size, int(batch)):
                idx = torch.as_tensor(idx_all[s:s + int(batch)])
                tc = time.perf_counter()
                with torch.no_grad() if method_name != "alpha-crown" else torch.enable_grad():
                    res = bound_fn(twin, lo_all[idx], hi_all[idx], c1, c2)
                lower[idx.numpy()[:, None], others] = res.lower.detach().numpy()
                upper[idx.numpy()[:, None], others] = res.upper.detach().numpy()
                coeffs = None if res.input_coeffs is None else res.input_coeffs.detach()
                corners = candidate_points(lo_all[idx], hi_all[idx], coeffs)
                att.put(idx, extremes_at(twin, corners, lab_t[idx]))
                times[idx.numpy()] += (time.perf_counter() - tc) / idx.numel()
                done += idx.numel()
                if progress is not None:
                    progress("bounds", done, n_samples)
    rows = np.arange(m)[None, :] != lab[:, None]
    lower[~rows], upper[~rows] = 0.0, 0.0
    stats["engine_s"] = time.perf_counter() - t0

    # 3. verdicts from the bounds and the concrete extremes
    t0 = time.perf_counter()
    min_lo = np.where(rows, lower, np.inf).min(1)
    max_hi = np.where(rows, upper, -np.inf).max(1)
    status["g=>f"][min_lo >= 0] = "proven"
    status["f=>g"][max_hi <= 0] = "proven"
    for i in range(n_samples):
        c = int(lab[i])
        others = tuple(j for j in range(m) if j != c)
        for side, xs in (("g=>f", att.lo_x[i]), ("f=>g", att.hi_x[i])):
            if status[side][i] == "unknown":
                w = confirm_witness(f_net, g_net, xs, c, others, side)
                if w is not None:
                    status[side][i], witnesses[i][side] = "refuted", w
    times += (time.perf_counter() - t0) / n_samples

    # 4. branch and bound on the undecided sides, per sample
    t0 = time.perf_counter()
    searched = 0
    if search and bound_fn is not None:
        per_box = max(stats["engine_s"] / n_samples, 1e-4)
        options = SearchOptions(batch_size=int(min(1024, max(1, 0.1 * time_per_sample / per_box))), seed=seed)
        undecided = [i for i in range(n_samples) if any(status[s][i] == "unknown" for s in SIDES)]
        for count, i in enumerate(undecided):
            ti = time.perf_counter()
            c = int(lab[i])
            others = tuple(j for j in range(m) if j != c)
            c1, c2 = (torch.as_tensor(a) for a in RsmSpec(c).specs(m))
            searched += 1
            for side in SIDES:
                if status[side][i] != "unknown":
                    continue
                left = time_per_sample - (time.perf_counter() - ti)
                if left <= 0:
                    break
                both_open = side == "g=>f" and status["f=>g"][i] == "unknown"
                out = search_side(twin, c1, c2, side, lo_all[i], hi_all[i], bound_fn,
                                  left / 2 if both_open else left, options)
                lower[i, list(others)] = np.maximum(lower[i, list(others)], out.lower.numpy())
                upper[i, list(others)] = np.minimum(upper[i, list(others)], out.upper.numpy())
                if out.status == "proven":
                    status[side][i] = "proven"
                elif out.status == "refuted" and out.point is not None:
                    w = confirm_witness(f_net, g_net, out.point, c, others, side)
                    if w is not None:
                        status[side][i], witnesses[i][side] = "refuted", w
            times[i] += time.perf_counter() - ti
            if progress is not None:
                progress("search", count + 1, len(undecided))
    stats["search_s"] = time.perf_counter() - t0
    stats["searched_samples"] = searched

    obs_lo = att.row_min.numpy().copy()
    obs_hi = att.row_max.numpy().copy()
    for i, ws in enumerate(witnesses):
        for side, w in ws.items():
            if w is not None:
                obs_lo[i] = np.minimum(obs_lo[i], w.pi)
                obs_hi[i] = np.maximum(obs_hi[i], w.pi)
    obs_lo[~rows], obs_hi[~rows] = 0.0, 0.0
    stats["time_s"] = time.perf_counter() - t_start
    return RsmDatasetResult(r, method_name, lab, labels_given, f_pred, g_pred, lower, upper, obs_lo, obs_hi,
                            status, witnesses, times, stats)

