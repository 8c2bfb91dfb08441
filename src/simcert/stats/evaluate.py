"""Batched evaluation of a twin pair on sampled inputs: deviation, eps-violations, top-1 disagreement.

The bulk runs in float32 through both (simplified) networks in one torch pass per batch, close to raw
inference speed. Sampling is a statistical estimate, so float32 is accurate enough *except* for samples
whose decision could flip under rounding: those within `recheck_tol` (absolute, plus a relative part) of
the threshold eps, and those whose top-1 margin is within the same tolerance of a tie. Those are recomputed
in float64 on the original networks, so every violation counted is a violation of the float64 models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..network import Dense, Identity, Network, ReLU
from ..twin import Twin

__all__ = ["SampleBatch", "TwinEvaluator"]


@dataclass(frozen=True)
class SampleBatch:
    """Per-sample results for a batch of B inputs.

    deviation:  (B,) `D(x) = max_k |g_k(x) - f_k(x)|` over the checked outputs (float64; float32-accurate
                except where rechecked in float64).
    per_output: (B, K) `|g_k - f_k| > eps` for each checked output k.
    violated:   (B,) `D(x) > eps` (decided in float64 near the threshold); with `violation="top1"`, the
                top-1 disagreement instead.
    top1:       (B,) `argmax f(x) != argmax g(x)` over all outputs (decided in float64 near ties; all False
                when the evaluator does not check top-1).
    rechecked:  number of samples recomputed in float64.
    """

    deviation: np.ndarray
    per_output: np.ndarray
    violated: np.ndarray
    top1: np.ndarray
    rechecked: int


class _FastMLP:
    """A dense-ReLU network compiled to fused `addmm` + in-place `relu_` calls (same maths as `Network.forward`).

    Only for networks made of Dense, ReLU and Identity layers with a flat input; `compile` returns None
    otherwise and the caller uses `Network.forward`.
    """

    def __init__(self, ops: list[tuple[torch.Tensor, torch.Tensor] | None]) -> None:
        self.ops = ops

    @classmethod
    def compile(cls, net: Network, dtype: torch.dtype, device: str) -> "_FastMLP | None":
        if len(net.input_shape) != 1:
            return None
        ops: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        for layer in net.layers:
            if isinstance(layer, Dense):
                w = torch.tensor(layer.weight.T, dtype=dtype, device=device).contiguous()
                ops.append((w, torch.tensor(layer.bias, dtype=dtype, device=device)))
            elif isinstance(layer, ReLU):
                ops.append(None)
            elif not isinstance(layer, Identity):
                return None
        return cls(ops)

    def forward(self, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        """Outputs for x (B, n), computed `chunk` rows at a time (activations stay in cache)."""
        if x.shape[0] > chunk:
            return torch.cat([self._forward(x[i : i + chunk]) for i in range(0, x.shape[0], chunk)])
        return self._forward(x)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        for op in self.ops:
            if op is None:
                x = torch.relu_(x)
            else:
                x = torch.addmm(op[1], x, op[0])
        return x


def _top2_margin(y: torch.Tensor) -> torch.Tensor:
    if y.shape[1] < 2:
        return torch.full((y.shape[0],), float("inf"), dtype=y.dtype)
    top = torch.topk(y, 2, dim=1).values
    return top[:, 0] - top[:, 1]


class TwinEvaluator:
    """Evaluates `f` and `g` on batches of inputs and reports eps-violations on the outputs `indices`
    (`violation="eps"`) or top-1 disagreements (`violation="top1"`: eps is ignored and top-1 always checked).

    `dtype` is the fast-path precision (float32 by default, float64 disables the recheck). The recheck
    band is `|d_k - eps| <= recheck_tol * (1 + |f_k| + |g_k|)` for eps-violations and
    `top-2 margin <= tie_tol * (1 + max |f| + max |g|)` for top-1 decisions (float32 forward passes of
    the networks we handle are accurate to about 1e-6 relative, so both bands are generous).
    """

    def __init__(
        self,
        f: Network,
        g: Network,
        indices: tuple[int, ...],
        eps: float,
        dtype: torch.dtype = torch.float32,
        recheck_tol: float = 1e-4,
        tie_tol: float = 1e-5,
        check_top1: bool = True,
        device: str = "cpu",
        twin: Twin | None = None,
        violation: str = "eps",
    ) -> None:
        if violation not in ("eps", "top1"):
            raise InputError(f"violation must be 'eps' or 'top1', got {violation!r}")
        self.violation = violation
        if violation == "top1":
            eps, check_top1 = float("inf"), True         # no eps decision: nothing is near an infinite eps
        self.f_net, self.g_net = f, g
        twin = Twin(f, g) if twin is None else twin
        self._f, self._g = twin.f, twin.g
        fast_f = _FastMLP.compile(twin.f, dtype, device)
        fast_g = _FastMLP.compile(twin.g, dtype, device)
        self._fast = (fast_f, fast_g) if fast_f is not None and fast_g is not None else None
        self.indices = tuple(int(i) for i in indices)
        self._idx = torch.tensor(self.indices, dtype=torch.long)
        self.eps = float(eps)
        self.dtype = dtype
        self.tol = float(recheck_tol)
        self.tie_tol = float(tie_tol)
        self.check_top1 = bool(check_top1)
        self.device = device

    def _float64(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.f_net(x), self.g_net(x)

    def __call__(self, x: np.ndarray) -> SampleBatch:
        """Results for inputs x (B, n) (float64 numpy)."""
        with torch.no_grad():
            xt = torch.from_numpy(np.ascontiguousarray(x)).to(dtype=self.dtype, device=self.device)
            if self._fast is not None:
                fy, gy = self._fast[0].forward(xt), self._fast[1].forward(xt)
            else:
                fy, gy = self._f.forward(xt), self._g.forward(xt)
            diff = (gy[:, self._idx] - fy[:, self._idx]).abs()
            scale = 1.0 + fy[:, self._idx].abs() + gy[:, self._idx].abs()
            near_eps = ((diff - self.eps).abs() <= self.tol * scale).any(dim=1)
            per_output = (diff > self.eps).cpu().numpy()
            deviation = diff.max(dim=1).values.to(torch.float64).cpu().numpy()
            if self.check_top1:
                top1 = (fy.argmax(dim=1) != gy.argmax(dim=1)).cpu().numpy()
                tie_scale = 1.0 + fy.abs().max(dim=1).values + gy.abs().max(dim=1).values
                near_tie = torch.minimum(_top2_margin(fy), _top2_margin(gy)) <= self.tie_tol * tie_scale
                redo = (near_eps | near_tie).cpu().numpy()
            else:
                top1 = np.zeros(x.shape[0], bool)
                redo = near_eps.cpu().numpy()
        if self.dtype == torch.float64:
            redo[:] = False
        n_redo = int(redo.sum())
        if n_redo:
            f64, g64 = self._float64(np.asarray(x, dtype=np.float64)[redo])
            d64 = np.abs(g64[:, list(self.indices)] - f64[:, list(self.indices)])
            per_output[redo] = d64 > self.eps
            deviation[redo] = d64.max(axis=1)
            if self.check_top1:
                top1[redo] = np.argmax(f64, axis=1) != np.argmax(g64, axis=1)
        violated = top1.copy() if self.violation == "top1" else per_output.any(axis=1)
        return SampleBatch(deviation, per_output, violated, top1, n_redo)

    def confirm(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Float64 outputs of the original networks at x (B, n) and the mask of confirmed violations."""
        f64, g64 = self._float64(np.asarray(x, dtype=np.float64))
        if self.violation == "top1":
            return f64, g64, np.argmax(f64, axis=1) != np.argmax(g64, axis=1)
        d = np.abs(g64[:, list(self.indices)] - f64[:, list(self.indices)]).max(axis=1)
        return f64, g64, d > self.eps
