"""The exact MILP (`milp.py`) as a search engine: one MILP per box and spec row side."""

from __future__ import annotations

import numpy as np
import torch

from ..twin import Twin
from .common import SpecBounds
from .milp import milp_bound_spec

__all__ = ["milp_bound_fn"]


def milp_bound_fn(
    twin: Twin, lower: torch.Tensor, upper: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor, time_limit: float = 60.0
) -> SpecBounds:
    """Bounds of c1 . f + c2 . g on each box from the exact MILP (complete when every solve is optimal).

    Requires: small twins (the MILP refuses above its binary-variable limit with an InputError).
    Guarantee: sound (HiGHS's proved dual bound, widened for solver tolerances); exact when optimal.
    """
    los, his = [], []
    for b in range(lower.shape[0]):
        r = milp_bound_spec(
            twin.f, twin.g, lower[b].cpu().numpy(), upper[b].cpu().numpy(),
            c1.cpu().numpy(), c2.cpu().numpy(), time_limit=time_limit,
        )
        los.append(r.lower)
        his.append(r.upper)
    t = lambda a: torch.as_tensor(np.stack(a), dtype=lower.dtype, device=lower.device)  # noqa: E731
    return SpecBounds(t(los), t(his), None)
