"""Probabilistic relative safety margins: statements on the distribution of Pi_cj(x) for x ~ D on a region
(issue 5, item 3), with the distribution-free statistics of `simcert.stats` (METHODS.md section 5).

With m(x) = min_j Pi_cj(x) and M(x) = max_j Pi_cj(x) over n i.i.d. draws, each statement below holds with
confidence 1 - delta (delta = 1 - confidence):
- lower quantile:  P_D[ m(x) < L ] <= p  with  L = -quantile_upper(-m, p, delta)  (the k-th smallest draw of m);
- upper quantile:  P_D[ M(x) > U ] <= p  with  U = quantile_upper(M, p, delta);
- violation rates: P_D[ m(x) < 0 ] <= clopper_pearson_upper(#{m < 0}, n, delta) (g's margin above f's
  somewhere: the pointwise failure of g=>f), and the same for M(x) > 0 (f=>g);
- per row j: the same quantile bounds for each Pi_cj.
So "with confidence 99.9%, Pi >= L on 99.9% of the ball" is `lower_quantile` at confidence 0.999, p = 0.001.
Each statement is valid on its own; all of them jointly with confidence 1 - (number of statements) * delta.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch

from .errors import InputError
from .rsm_core import pi_matrix
from .rsm_result import check_label, json_float
from .spec import RsmSpec
from .stats import Sampler, clopper_pearson_upper, parse_distribution, quantile_upper
from .twin import Twin
from .verify import as_box, as_network

__all__ = ["rsm_probabilistic", "samples_for_quantile"]


def samples_for_quantile(p: float, delta: float) -> int:
    """The fewest draws for which some order statistic bounds the (1-p)-quantile: (1-p)^n <= delta.

    >>> samples_for_quantile(0.001, 0.001)
    6905
    """
    return int(math.ceil(math.log(delta) / math.log1p(-p)))


def rsm_probabilistic(
    f: Any,
    g: Any,
    region: Any,
    label: int | None = None,
    confidence: float = 0.999,
    p: float = 0.001,
    samples: int | None = None,
    seed: int = 0,
    *,
    distribution: str | Sampler = "uniform",
    batch: int = 4096,
) -> dict[str, Any]:
    """Distribution-free bounds on Pi_cj(x) for x ~ `distribution` on the region (see the module docstring).

    samples: number of i.i.d. draws (default: twice the minimum for which the quantile bound is finite, and at
    least 1000). Returns a JSON-friendly dict with "lower_quantile" L, "upper_quantile" U, violation-rate upper
    bounds, per-row quantiles and the empirical extremes.

    >>> from simcert.network import Network, Dense
    >>> from simcert.spec import Box
    >>> f = Network([Dense(np.eye(2), np.zeros(2))], (2,))
    >>> g = Network([Dense(0.5 * np.eye(2), np.zeros(2))], (2,))
    >>> r = rsm_probabilistic(f, g, Box([0.5, 0.0], [1.0, 0.25]), label=0, confidence=0.99, p=0.01)
    >>> r["lower_quantile"] >= 0.125, r["g=>f_violation_rate_upper"] < 0.01
    (True, True)
    """
    for name, v in (("confidence", confidence), ("p", p)):
        if not (isinstance(v, (int, float)) and 0.0 < float(v) < 1.0):
            raise InputError(f"{name} must lie in (0, 1), got {v!r}")
    delta = 1.0 - float(confidence)
    f_net, g_net = as_network(f), as_network(g)
    twin = Twin(f_net, g_net)
    box = as_box(region, f_net)
    m = twin.output_size
    if m < 2:
        raise InputError(f"relative safety margins need at least 2 classes, {f_net.name} has {m} output")
    c = int(np.argmax(f_net(box.center[None])[0])) if label is None else check_label(label, m)
    others = list(RsmSpec(c).other_indices(m))
    needed = samples_for_quantile(float(p), delta)
    n = max(1000, 2 * needed) if samples is None else samples
    if int(n) != n or n < 1:
        raise InputError(f"samples must be a positive integer, got {samples!r}")
    n = int(n)
    sampler = parse_distribution(distribution, box) if isinstance(distribution, str) else distribution
    if np.size(sampler.lower) != box.dim:
        raise InputError(f"the distribution has {np.size(sampler.lower)} inputs, the region {box.dim}")

    t0 = time.perf_counter()
    gen = np.random.default_rng(seed)
    parts = []
    with torch.no_grad():
        for s in range(0, n, batch):
            x = torch.as_tensor(sampler.sample(min(batch, n - s), gen)).reshape(-1, box.dim)
            labels = torch.full((x.shape[0],), c, dtype=torch.long)
            parts.append(pi_matrix(twin.f.forward(x), twin.g.forward(x), labels)[:, others].numpy())
    pi = np.concatenate(parts)  # (n, K)
    lo_v, hi_v = pi.min(1), pi.max(1)
    lower_q = -float(quantile_upper(-lo_v, float(p), delta))
    upper_q = float(quantile_upper(hi_v, float(p), delta))
    row_lo = -np.asarray(quantile_upper(-pi.T, float(p), delta), dtype=np.float64).reshape(-1)
    row_hi = np.asarray(quantile_upper(pi.T, float(p), delta), dtype=np.float64).reshape(-1)
    k_gf, k_fg = int(np.count_nonzero(lo_v < 0)), int(np.count_nonzero(hi_v > 0))
    return {
        "label": c,
        "others": others,
        "distribution": sampler.to_json() if box.dim <= 16 else sampler.describe(),
        "confidence": float(confidence),
        "p": float(p),
        "samples": n,
        "samples_needed": needed,
        "lower_quantile": json_float(lower_q),
        "upper_quantile": json_float(upper_q),
        "statement": (
            f"with confidence {confidence:g}: min_j Pi_{c}j(x) >= {lower_q:.6g} and max_j Pi_{c}j(x) <= "
            f"{upper_q:.6g}, each on at least a fraction {1 - p:g} of the distribution"
        ),
        "g=>f_violations": k_gf,
        "g=>f_violation_rate_upper": float(clopper_pearson_upper(k_gf, n, delta)),
        "f=>g_violations": k_fg,
        "f=>g_violation_rate_upper": float(clopper_pearson_upper(k_fg, n, delta)),
        "rows": [
            {"j": j, "lower_quantile": json_float(a), "upper_quantile": json_float(b),
             "observed_min": float(pi[:, i].min()), "observed_max": float(pi[:, i].max()),
             "mean": float(pi[:, i].mean())}
            for i, (j, a, b) in enumerate(zip(others, row_lo, row_hi))
        ],
        "observed_min": float(lo_v.min()),
        "observed_max": float(hi_v.max()),
        "time_s": time.perf_counter() - t0,
    }
