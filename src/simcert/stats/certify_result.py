"""The records of `certify`: its options, the progress it reports, and its result (`stats/certify.py`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from ..errors import InputError
from .accumulate import Example
from .sequential import CheckpointSchedule, Spending

__all__ = ["CertifyOptions", "CertifyProgress", "CertificationResult"]


@dataclass(frozen=True)
class CertifyOptions:
    """Tuning of `certify` (checked at construction; a bad value raises InputError).

    proof_share:  share of `budget` given to the deterministic partition (SimCert, budget runs).
    proof_time:   seconds for the partition when `samples` is fixed (SimCert).
    proof_max_boxes: also stop the partition after this many bounded boxes (reproducible, unlike time).
    max_strata:   stop splitting at this many open strata.
    split_batch:  open strata split per engine call (the engine bounds twice as many children).
    engine:       bound engine for the partition and the region's deviation range. "auto": `choose_method`,
                  and for aligned twins (where that is "diff") with at most `PROBE_MAX_DIM` inputs a probe
                  of "diff" against "crown" on small sub-boxes picks the tighter one (`strata.probe_engines`).
    prove:        False makes the deterministic part prove nothing (every stratum is sampled): the reference
                  "plain stratified sampling" for tests and ablations.
    allocation:   "proportional" or "neyman" (see the module docstring).
    first_checkpoint, growth, spending: the checkpoint schedule of budget runs. With a target rate (simcert
                  proportional and clopper-pearson) the first checkpoint is instead the sample count that
                  certifies the rate if those samples are clean, computed from the partition before any
                  sample is drawn (so the schedule is still fixed in advance), at most `PLANNED_FIRST_MAX`.
    max_examples: confirmed violating inputs to keep.
    sample_dtype: precision of the sampling forward pass (decisions near eps are rechecked in float64).
    recheck_tol:  relative band around eps recomputed in float64; tie_tol: the same for top-1 ties.
    """

    proof_share: float = 0.3
    proof_time: float = 10.0
    proof_max_boxes: int | None = None
    max_strata: int = 20_000
    split_batch: int = 64
    engine: str = "auto"
    prove: bool = True
    allocation: Literal["proportional", "neyman"] = "proportional"
    first_checkpoint: int = 4096
    growth: float = 2.0
    spending: Spending = "p-series"
    max_examples: int = 5
    sample_dtype: torch.dtype = torch.float32
    recheck_tol: float = 1e-4
    tie_tol: float = 1e-5

    def __post_init__(self) -> None:
        if not (0.0 <= self.proof_share < 1.0):
            raise InputError(f"proof_share must lie in [0, 1), got {self.proof_share!r}")
        if not (math.isfinite(self.proof_time) and self.proof_time >= 0):
            raise InputError(f"proof_time must be >= 0, got {self.proof_time!r}")
        if int(self.max_strata) != self.max_strata or self.max_strata < 1:
            raise InputError(f"max_strata must be a positive integer, got {self.max_strata!r}")
        if self.proof_max_boxes is not None and (int(self.proof_max_boxes) != self.proof_max_boxes
                                                 or self.proof_max_boxes < 1):
            raise InputError(f"proof_max_boxes must be a positive integer, got {self.proof_max_boxes!r}")
        if int(self.split_batch) != self.split_batch or self.split_batch < 1:
            raise InputError(f"split_batch must be a positive integer, got {self.split_batch!r}")
        if self.allocation not in ("proportional", "neyman"):
            raise InputError(f"allocation must be 'proportional' or 'neyman', got {self.allocation!r}")
        if self.sample_dtype not in (torch.float32, torch.float64):
            raise InputError(f"sample_dtype must be torch.float32 or torch.float64, got {self.sample_dtype}")
        for name in ("recheck_tol", "tie_tol"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise InputError(f"{name} must be a finite number >= 0, got {v!r}")
        CheckpointSchedule(0.5, self.first_checkpoint, self.growth, self.spending)   # validates those three


@dataclass(frozen=True)
class CertifyProgress:
    """What `certify` reports to its `progress` callback (phase "partition", "sampling" or "done").

    violation_rate_upper: the bound of the last look at the samples (None before the first look);
    proof_rate_upper: `W_V + W_U`, the rate bound of the proofs alone (refuted plus open mass; certain);
    target_samples: samples planned up to the next look (the total for a fixed sample count);
    budget: the time budget in seconds, if any. Sampling reports come once per batch and at every look.
    """

    phase: str
    elapsed: float
    proven_fraction: float
    refuted_fraction: float
    strata: int
    samples: int
    violations: int
    violation_rate_upper: float | None
    proof_rate_upper: float = 1.0
    target_samples: int | None = None
    budget: float | None = None


@dataclass
class CertificationResult:
    """The answer of `certify`; `to_dict()` is the JSON form (the CLI adds models and version).

    verdict: "holds" (rate certified <= `rate`, or a certificate issued when no rate was asked),
    "violated" (a lower confidence bound on the rate exceeds `rate`, with a confirmed violating input),
    "unknown" (undecided within the samples or budget).
    """

    verdict: str
    method: str
    eps: float | None
    outputs: list[int]
    confidence: float
    rate: float | None
    violation_rate_upper: float
    violation_rate_lower: float
    per_output_rate_upper: dict[int, float]
    top1_disagreement_rate_upper: float | None
    proven_fraction: float
    refuted_fraction: float
    quantile_p: float
    deviation_quantile_upper: float
    expected_deviation_upper: float
    samples: int
    violations: int
    samples_per_stratum: list[int]
    strata: int
    sampled_strata: int
    deviation_range: tuple[float, float]
    output_bounds: list[tuple[float, float]]
    bound_used: dict[str, str]
    distribution: dict[str, Any]
    seed: int
    examples: list[Example]
    comparison: dict[str, Any] | None
    delta_used: float
    checkpoint: int | None
    time: dict[str, float]
    stats: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    top1: bool = False
    top1_label: int | None = None

    @property
    def holds(self) -> bool:
        return self.verdict == "holds"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready certificate fields (DESIGN.md 'Certificate JSON', certify part)."""
        return {
            "verdict": self.verdict,
            "property": ({"type": "top1", "class_at_center": self.top1_label} if self.top1 else
                         {"type": "eps-equivalence", "eps": self.eps, "outputs": self.outputs}),
            "method": {
                "name": self.method,
                "bound_used": self.bound_used,
                "allocation": self.stats.get("allocation"),
                "engine": self.stats.get("engine"),
            },
            "confidence": self.confidence,
            "confidence_scope": "each bound separately",
            "rate": self.rate,
            "violation_rate_upper": self.violation_rate_upper,
            "violation_rate_lower": self.violation_rate_lower,
            "per_output_violation_rate_upper": {str(k): v for k, v in self.per_output_rate_upper.items()},
            "top1_disagreement_rate_upper": self.top1_disagreement_rate_upper,
            "proven_fraction": self.proven_fraction,
            "refuted_fraction": self.refuted_fraction,
            "deviation_quantile_upper": self.deviation_quantile_upper,
            "quantile_p": self.quantile_p,
            "expected_deviation_upper": self.expected_deviation_upper,
            "samples": {
                "total": self.samples,
                "violations": self.violations,
                "per_stratum": self.samples_per_stratum,
            },
            "strata": {"total": self.strata, "sampled": self.sampled_strata},
            "deviation_range": list(self.deviation_range),
            "bounds": [
                {"row": f"g_{k} - f_{k}", "lower": lo, "upper": hi}
                for k, (lo, hi) in zip(self.outputs, self.output_bounds)
            ],
            "distribution": self.distribution,
            "seed": self.seed,
            "delta_used": self.delta_used,
            "checkpoint": self.checkpoint,
            "examples": [e.to_dict() for e in self.examples],
            "counterexample": self.examples[0].to_dict() if self.examples else None,
            "comparison": self.comparison,
            "time": self.time,
            "stats": self.stats,
            "notes": self.notes,
        }
