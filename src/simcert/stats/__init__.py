"""Statistics for probabilistic certification: concentration bounds, anytime stopping, input samplers.

See METHODS.md section 5. `bounds` holds one-sided confidence bounds (Clopper-Pearson, Hoeffding, Bernstein,
empirical Bernstein, quantiles, stratified combinations), `sequential` the checkpoint schedule that keeps
them valid under early stopping, and `samplers` the seeded input distributions on a region. `certify` (module
`certify`, with `strata`, `criteria`, `weighted`, `evaluate`, `accumulate`) issues the probabilistic certificates
of a twin, for eps-equivalence or top-1 agreement.
"""

from __future__ import annotations

from .bounds import (
    SampleStats,
    bernstein_upper,
    clopper_pearson_lower,
    clopper_pearson_upper,
    empirical_bernstein_upper,
    hoeffding_upper,
    quantile_rank,
    quantile_upper,
    samples_needed_clopper_pearson,
    samples_needed_hoeffding,
    stratified_bernstein_upper,
    stratified_rate_upper,
)
from .samplers import (
    EmpiricalDataset,
    Sampler,
    TruncatedGaussian,
    UniformBox,
    parse_distribution,
    truncated_standard_normal_ppf,
)
from .sequential import CheckpointSchedule, Decision, Spending
from .certify import CertificationResult, CertifyOptions, CertifyProgress, certify  # noqa: E402  (after the bounds)

__all__ = [
    "SampleStats",
    "bernstein_upper",
    "clopper_pearson_lower",
    "clopper_pearson_upper",
    "empirical_bernstein_upper",
    "hoeffding_upper",
    "quantile_rank",
    "quantile_upper",
    "samples_needed_clopper_pearson",
    "samples_needed_hoeffding",
    "stratified_bernstein_upper",
    "stratified_rate_upper",
    "CheckpointSchedule",
    "Decision",
    "Spending",
    "EmpiricalDataset",
    "Sampler",
    "TruncatedGaussian",
    "UniformBox",
    "parse_distribution",
    "truncated_standard_normal_ppf",
    "certify",
    "CertificationResult",
    "CertifyOptions",
    "CertifyProgress",
]
