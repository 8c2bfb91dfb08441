"""Probabilistic certification of a twin pair: `certify` (METHODS.md section 5, the SimCert mode).

Claim certified, with confidence `1 - delta` (`delta = 1 - confidence`), for `x ~ D` on the region and
`D(x) = max_k |g_k(x) - f_k(x)|` over the checked outputs:

- violation rate   `Pr[D(x) > eps] <= violation_rate_upper` (also per output, and top-1 disagreement in the
  plain modes); with `top1=True` the violation is a top-1 disagreement `argmax g(x) != argmax f(x)` instead
  (no eps), in every mode;
- deviation quantile: `Pr[D(x) > deviation_quantile_upper] <= quantile_p`;
- expected deviation: `E D(x) <= expected_deviation_upper`.

Each bound holds with confidence `1 - delta` on its own (the verdict depends on the rate bound only).

**Plain modes** (`method` = "clopper-pearson" | "hoeffding" | "bernstein"): i.i.d. samples of the whole
region; the rate bound is Clopper-Pearson, Hoeffding or empirical Bernstein on the 0/1 violations; the mean
bound is Hoeffding (method "hoeffding") or empirical Bernstein with the range `[D_min, D_max]` that the
deterministic engine proves for the whole region; the quantile bound is the order statistic.

**SimCert mode** (the default): the region is partitioned by input splitting (`strata.partition_region`,
within `proof_share` of the budget): proven strata contribute no violation mass, refuted strata (every point
violates) contribute their whole mass, and only the open strata are sampled. With mass `W_V` refuted and
`W_U` open, the rate is `W_V + W_U p_U`, where `p_U` is the violation rate of the distribution conditioned on
the open strata. With `top1=True` the strata are proven or refuted for top-1 agreement with f's class at
the region's centre (`criteria.Top1Criterion`) and the samples count top-1 disagreements. Allocation:

- "proportional" (default): each draw picks open stratum k with probability `w_k / W_U`, then a point in it:
  the draws are i.i.d. from the conditioned distribution, so `rate <= W_V + W_U * CP(K, N, delta)` (one
  exact Clopper-Pearson bound, all of delta; the number of strata costs nothing). The mean adds the proven
  and refuted strata's deterministic deviation bounds to `W_U` times an empirical Bernstein bound whose
  range is the open strata's deterministic deviation range (Maurer & Pontil).
- "neyman" (fixed counts `n_k ~ w_k (D_max,k - D_min,k)`, the allocation that minimizes the Bernstein
  variance term of the mean): rate by the Chernoff bound for the weighted count
  (`weighted.weighted_bernoulli_upper`), mean by one Bernstein bound on the stratified estimator with each
  stratum's deterministic range as its range (`bounds.stratified_bernstein_upper`).

**Budget runs** look at the data only at the checkpoints of a `CheckpointSchedule` (error shares summing to
delta), so stopping early (the rate is decided) or at the deadline keeps every bound valid.

**Comparison** (`to_dict()["comparison"]`): Clopper-Pearson and Hoeffding on a plain Monte Carlo sample with
the same number of network evaluations N: in plain modes the same samples; in SimCert mode (proportional)
the plain sample embedded in ours: with `(M_U, M_V, M_P) ~ Multinomial(N; W_U, W_V, W_P)` drawn
independently, the first `M_U` of our i.i.d. open-strata samples plus `M_V` refuted and `M_P` proven draws
have exactly the law of N plain draws, and their violation count is known without more evaluations.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import numpy as np
import torch

from ..errors import InputError
from ..spec import EpsEquivalence
from ..twin import Twin
from ..verify import as_box, as_network, choose_method, engine
from .accumulate import Example, SampleAccumulator
from .bounds import samples_needed_clopper_pearson
from .certify_result import CertificationResult, CertifyOptions, CertifyProgress
from .combine import Look, Plan, rate_bound
from .criteria import Criterion, EpsCriterion, Top1Criterion, deviation_rows
from .evaluate import TwinEvaluator
from .samplers import Sampler, parse_distribution
from .sequential import CheckpointSchedule
from .strata import Partition, draw_in_strata, partition_region, probe_engines
from .weighted import allocate

__all__ = ["certify", "CertificationResult", "CertifyOptions", "CertifyProgress", "CERTIFY_METHODS"]

CERTIFY_METHODS = ("simcert", "clopper-pearson", "hoeffding", "bernstein")
DEFAULT_SAMPLES = 100_000
DEFAULT_QUANTILE = 1e-3
MAX_BATCH_ELEMENTS = 1 << 22
"""Sampling batches hold at most this many input values (`batch_size` rows, fewer for wide inputs)."""
PLANNED_FIRST_MAX = 1 << 20
"""Cap on a planned first checkpoint, so that long runs still look at the data (and can refute) early."""
PROBE_MAX_DIM = 64
"""Inputs above this many coordinates skip the engine probe: splitting them rarely pays off and probing is slow."""


# ---------------------------------------------------------------------------------------------- checks


def _check_args(confidence, rate, samples, budget, method, quantile, batch_size, seed) -> None:
    if not (isinstance(confidence, (int, float)) and 0.0 < float(confidence) < 1.0):
        raise InputError(f"confidence must lie in (0, 1), got {confidence!r}")
    if rate is not None and not (isinstance(rate, (int, float)) and 0.0 < float(rate) < 1.0):
        raise InputError(f"rate must lie in (0, 1), got {rate!r}")
    if samples is not None and budget is not None:
        raise InputError("give either samples or budget, not both")
    if samples is not None and (isinstance(samples, bool) or int(samples) != samples or samples < 1):
        raise InputError(f"samples must be a positive integer, got {samples!r}")
    if budget is not None and not (isinstance(budget, (int, float)) and math.isfinite(budget) and budget > 0):
        raise InputError(f"budget must be a positive number of seconds, got {budget!r}")
    if method not in CERTIFY_METHODS:
        raise InputError(f"unknown method {method!r}; choose one of {', '.join(CERTIFY_METHODS)}")
    if quantile is not None and not (isinstance(quantile, (int, float)) and 0.0 < float(quantile) < 1.0):
        raise InputError(f"quantile must lie in (0, 1), got {quantile!r}")
    if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
        raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")


# ---------------------------------------------------------------------------------------------- driver


def _indices_for_block(
    plan: Plan, size: int, first_block: bool, rng: np.random.Generator
) -> Callable[[int, int], np.ndarray]:
    """A function (start, stop) -> stratum indices for positions [start, stop) of a block of `size` draws."""
    m = plan.part.n_open
    if m == 1:
        return lambda a, b: np.zeros(b - a, np.int64)
    if plan.method == "simcert" and plan.allocation == "neyman":
        counts = allocate(size, plan.shares, minimum=1 if first_block else 0)
        edges = np.cumsum(counts)
        return lambda a, b: np.searchsorted(edges, np.arange(a, b), side="right").astype(np.int64)
    return lambda a, b: rng.choice(m, size=b - a, p=plan.probs)


def certify(
    f: Any,
    g: Any,
    region: Any,
    eps: float | None = None,
    *,
    top1: bool = False,
    confidence: float = 0.999,
    rate: float | None = None,
    samples: int | None = None,
    budget: float | None = None,
    distribution: str = "uniform",
    method: str = "simcert",
    outputs: Any = None,
    seed: int = 0,
    progress: Callable[[CertifyProgress], None] | None = None,
    quantile: float | None = None,
    batch_size: int = 65536,
    options: CertifyOptions = CertifyOptions(),
) -> CertificationResult:
    """Certify how often, and by how much, g deviates from f on `region` under `distribution`.

    `samples` (fixed count, default 100,000) or `budget` (seconds, anytime with early stopping when `rate`
    is decided); `rate` is the target violation rate: "holds" when the certified upper bound is <= rate,
    "violated" when a lower confidence bound exceeds it (with a violating input confirmed in float64 on both
    models), "unknown" otherwise; without `rate` the verdict is "holds" once a certificate is issued.
    `quantile` is the exceedance probability p of the deviation quantile (default: `rate`, else 1e-3).
    `top1=True` (instead of eps) certifies the top-1 disagreement rate `Pr[argmax g(x) != argmax f(x)]`;
    the deviation quantile and mean are then over all outputs.
    See the module docstring for the bounds and their guarantees.

    >>> import numpy as np
    >>> from simcert.network import Network, Dense
    >>> f = Network([Dense(np.array([[1.0]]), np.zeros(1))], (1,))
    >>> g = Network([Dense(np.array([[1.1]]), np.zeros(1))], (1,))
    >>> res = certify(f, g, ([0.0], [1.0]), eps=0.05, rate=0.6, samples=2000)   # violated iff x > 0.5
    >>> res.verdict, 0.5 <= res.violation_rate_upper <= 0.6
    ('holds', True)
    """
    t0 = time.perf_counter()
    _check_args(confidence, rate, samples, budget, method, quantile, batch_size, seed)
    if bool(top1) == (eps is not None):
        raise InputError("give exactly one property: eps (eps-equivalence) or top1=True (top-1 agreement)")
    if top1 and outputs is not None:
        raise InputError("outputs apply to eps-equivalence only")
    f_net, g_net = as_network(f), as_network(g)
    twin = Twin(f_net, g_net)
    box = as_box(region, f_net)
    m_out = twin.output_size
    label: int | None = None
    criterion: Criterion
    if top1:
        indices = list(range(m_out))
        label = int(np.argmax(f_net(box.center[None])[0]))
        criterion = Top1Criterion(label, m_out, len(indices))
        eps_value: float | None = None
    else:
        prop = EpsEquivalence(eps, outputs)
        indices = list(prop.indices(m_out))
        criterion = EpsCriterion(prop.eps)
        eps_value = prop.eps
    k_dev = len(indices)
    sampler: Sampler = parse_distribution(distribution, box)
    delta = 1.0 - float(confidence)
    p_q = float(quantile if quantile is not None else (rate if rate is not None else DEFAULT_QUANTILE))
    notes: list[str] = []
    engine_name = choose_method(twin, options.engine)
    c1, c2 = (torch.from_numpy(a) for a in criterion.rows(*deviation_rows(indices, m_out)))
    probe: dict[str, Any] | None = None
    if method == "simcert" and options.engine == "auto" and engine_name == "diff" and box.dim <= PROBE_MAX_DIM:
        engine_name, probe = probe_engines(twin, c1[:k_dev], c2[:k_dev], box.lower, box.upper,
                                           {"diff": engine("diff"), "crown": engine("crown")})
    bound_fn = engine(engine_name)
    if samples is None and budget is None:
        samples = DEFAULT_SAMPLES
        notes.append(f"neither samples nor budget given: using {DEFAULT_SAMPLES} samples")
    allocation = options.allocation
    if method != "simcert" and allocation != "proportional":
        notes.append("allocation applies to the simcert method only")
        allocation = "proportional"

    def report(phase: str, part: Partition, acc: SampleAccumulator | None, look: Look | None,
               target: int | None = None) -> None:
        if progress is not None:
            progress(CertifyProgress(
                phase, time.perf_counter() - t0, part.proven_total, part.refuted_total, part.n_strata,
                0 if acc is None else acc.total, 0 if acc is None else acc.violations,
                None if look is None else look.rate_upper,
                proof_rate_upper=min(1.0, part.refuted_total + part.open_total),
                target_samples=target, budget=None if budget is None else float(budget),
            ))

    # ---- deterministic part
    if method == "simcert":
        proof_limit = options.proof_share * float(budget) if budget is not None else options.proof_time
        proof_limit = max(0.0, proof_limit - (time.perf_counter() - t0))
        part = partition_region(
            twin, c1, c2, criterion, box.lower, box.upper, sampler, bound_fn,
            time_limit=proof_limit, max_strata=options.max_strata, max_boxes=options.proof_max_boxes,
            decide_rate=rate, split_batch=options.split_batch,
            prove=options.prove, engine_name=engine_name,
            progress=(lambda p: report("partition", p, None, None)) if progress is not None else None,
        )
        if not options.prove:
            notes.append("deterministic proofs disabled: plain stratified sampling")
    else:
        part = partition_region(twin, c1, c2, criterion, box.lower, box.upper, sampler, bound_fn,
                                time_limit=0.0, prove=False, engine_name=engine_name)
    t_proof = time.perf_counter() - t0
    plan = Plan(part, method, allocation, p_q, target="top1" if top1 else "eps")
    first = options.first_checkpoint
    if budget is not None and rate is not None and allocation == "proportional" and method in (
        "simcert", "clopper-pearson"
    ):
        d1 = CheckpointSchedule(delta, 1, options.growth, options.spending).delta_at(1)
        first = min(_samples_needed(plan, rate, d1) or first, PLANNED_FIRST_MAX)
    if method == "simcert" and allocation == "neyman" and part.n_open > 0:
        first_size = int(samples) if budget is None else first
        if first_size < part.n_open:
            notes.append(f"neyman allocation needs at least one sample per open stratum ({part.n_open}); "
                         "using proportional allocation")
            plan.allocation = allocation = "proportional"

    # ---- sampling
    seq = np.random.SeedSequence(int(seed))
    rng_samples, rng_compare = (np.random.Generator(np.random.PCG64(s)) for s in seq.spawn(2))
    evaluator = TwinEvaluator(f_net, g_net, tuple(indices), math.inf if eps_value is None else eps_value,
                              options.sample_dtype, options.recheck_tol, options.tie_tol,
                              check_top1=method != "simcert", twin=twin, violation="top1" if top1 else "eps")
    acc = SampleAccumulator(max(part.n_open, 1), len(indices))
    schedule = (CheckpointSchedule(delta, first, options.growth, options.spending)
                if budget is not None else None)
    look = plan.look(acc, delta if schedule is None else schedule.delta_at(1), indices)
    checkpoint: int | None = None

    def decided(lk: Look) -> bool:
        return rate is not None and (lk.rate_upper <= rate or lk.rate_lower > rate)

    need_samples = plan.w_u > 0 and not decided(look)
    rows_per_batch = max(1, min(int(batch_size), MAX_BATCH_ELEMENTS // max(box.dim, 1)))
    t_sample0 = time.perf_counter()
    sample_time = 0.0
    if need_samples:
        j = 1
        target = int(samples) if schedule is None else schedule.checkpoint(1)
        block_start = 0
        while True:
            get_idx = _indices_for_block(plan, target - block_start, block_start == 0, rng_samples)
            out_of_time = False
            pos = block_start
            while pos < target:
                b = min(rows_per_batch, target - pos)
                idx = get_idx(pos - block_start, pos - block_start + b)
                x = draw_in_strata(sampler, part.open_lower, part.open_upper, idx, rng_samples)
                res = evaluator(x)
                acc.add(idx, res)
                if res.violated.any() and len(acc.examples) < options.max_examples:
                    _keep_examples(acc, evaluator, x[res.violated], options.max_examples)
                pos += b
                if progress is not None and pos < target:
                    report("sampling", part, acc, look if checkpoint is not None else None, target)
                if budget is not None and time.perf_counter() - t0 >= budget:
                    out_of_time = pos < target
                    break
            if out_of_time:
                notes.append(f"budget reached after {acc.total} samples; bounds are those of checkpoint "
                             f"{checkpoint if checkpoint is not None else 'none'}")
                break
            # a look at the data
            d_j = delta if schedule is None else schedule.delta_at(j)
            look = plan.look(acc, d_j, indices)
            checkpoint = target
            report("sampling", part, acc, look, target)
            if schedule is None or decided(look) or (budget is not None and time.perf_counter() - t0 >= budget):
                break
            j += 1
            block_start = target
            target = schedule.checkpoint(j)
        sample_time = time.perf_counter() - t_sample0
    elif plan.w_u > 0:
        notes.append("the rate was decided by the deterministic part alone: no samples drawn")

    # ---- verdict and examples
    if not acc.examples and part.refuted_mass.size:
        _keep_examples(acc, evaluator, (part.refuted_lower + part.refuted_upper) / 2.0, options.max_examples)
    if rate is not None:
        if look.rate_upper <= rate:
            verdict = "holds"
        elif look.rate_lower > rate and acc.examples:
            verdict = "violated"
        else:
            verdict = "unknown"
    else:
        verdict = "holds" if (look.n > 0 or plan.w_u == 0) else "unknown"

    comparison = _comparison(plan, acc, look, rng_compare, rate, notes)
    if method == "simcert" and plan.w_u > 0 and look.top1 is None:
        notes.append("top-1 disagreement is not bounded in simcert mode with eps (the proofs are for "
                     "eps-equivalence); certify it with top1=True")
    elapsed = time.perf_counter() - t0
    report("done", part, acc, look)
    return CertificationResult(
        verdict=verdict,
        method=method,
        eps=eps_value,
        outputs=indices,
        confidence=float(confidence),
        rate=None if rate is None else float(rate),
        violation_rate_upper=look.rate_upper,
        violation_rate_lower=look.rate_lower,
        per_output_rate_upper=look.per_output,
        top1_disagreement_rate_upper=look.top1,
        proven_fraction=part.proven_total,
        refuted_fraction=part.refuted_total,
        quantile_p=p_q,
        deviation_quantile_upper=look.quantile,
        expected_deviation_upper=look.mean,
        samples=look.n,
        violations=look.violations,
        samples_per_stratum=look.per_stratum,
        strata=part.n_strata,
        sampled_strata=part.n_open,
        deviation_range=(part.root_dev[0], part.root_dev[1]),
        output_bounds=[(float(a), float(b)) for a, b in zip(part.row_lower[:k_dev], part.row_upper[:k_dev])],
        bound_used=plan.bound_names(),
        distribution=sampler.to_json() | {"spec": distribution},
        seed=int(seed),
        examples=list(acc.examples),
        comparison=comparison,
        delta_used=look.delta,
        checkpoint=checkpoint,
        time={
            "total_s": elapsed,
            "proof_s": t_proof,
            "sampling_s": sample_time,
            "samples_per_s": acc.total / sample_time if sample_time > 0 else 0.0,
        },
        stats={
            "engine": engine_name,
            "engine_probe": probe,
            "allocation": allocation if method == "simcert" else None,
            "boxes_bounded": part.boxes_bounded,
            "partition_steps": part.steps,
            "partition_stop": part.stop_reason,
            "open_fraction": plan.w_u,
            "deviation_upper_refined": float(np.max(np.maximum(np.abs(part.row_lower[:k_dev]),
                                                               np.abs(part.row_upper[:k_dev])))),
            "top1_label": label,
            "samples_needed_if_clean": _samples_needed(plan, rate, delta),
            "open_deviation_range": None if part.n_open == 0 else [
                float(part.open_dev_lower.min()), float(part.open_dev_upper.max())],
            "samples_drawn": acc.total,
            "rechecked_float64": acc.rechecked,
            "schedule": None if schedule is None else {
                "first": first, "growth": options.growth, "spending": options.spending},
        },
        notes=notes,
        top1=bool(top1),
        top1_label=label,
    )


def _samples_needed(plan: Plan, rate: float | None, delta: float) -> int | None:
    """Fixed sample count that certifies `rate` at 1 - delta if the open strata show no violation (from the
    partition alone: the smallest N with `W_V + W_U * CP(0, N, delta) <= rate`); None without a rate or when
    the refuted mass alone exceeds it."""
    if rate is None or plan.w_v >= rate:
        return None
    residual = (rate - plan.w_v) / plan.w_u if plan.w_u > 0 else 1.0
    return 0 if residual >= 1.0 else samples_needed_clopper_pearson(residual, delta)


def _keep_examples(acc: SampleAccumulator, evaluator: TwinEvaluator, xs: np.ndarray, limit: int) -> None:
    """Confirm candidate violating inputs in float64 on the original networks and keep up to `limit`."""
    room = limit - len(acc.examples)
    if room <= 0 or xs.shape[0] == 0:
        return
    xs = xs[: max(room * 4, room)]
    fy, gy, bad = evaluator.confirm(xs)
    for i in np.flatnonzero(bad)[:room]:
        d = float(np.abs(gy[i, evaluator.indices] - fy[i, evaluator.indices]).max())
        acc.examples.append(Example(xs[i].copy(), fy[i].copy(), gy[i].copy(), d))


def _comparison(
    plan: Plan, acc: SampleAccumulator, look: Look, rng: np.random.Generator, rate: float | None, notes: list[str]
) -> dict[str, Any] | None:
    """Plain Monte Carlo baselines (Clopper-Pearson, Hoeffding) with the same number of network evaluations."""
    n, delta = look.n, look.delta
    if n == 0:
        return None
    if plan.method == "simcert":
        if plan.allocation != "proportional":
            notes.append("no plain-sampling comparison for neyman allocation (its draws are not i.i.d.)")
            return None
        w_p = max(0.0, 1.0 - plan.w_u - plan.w_v)
        probs = np.array([plan.w_u, plan.w_v, w_p])
        m_u, m_v, _ = rng.multinomial(n, probs / probs.sum())
        k_plain = int(m_v) + acc.violations_before(int(m_u))
        source = "plain sample embedded in the simcert sample (same draws, same evaluations)"
    else:
        k_plain = acc.violations
        source = "the same samples"
    out: dict[str, Any] = {
        "samples": n,
        "violations": k_plain,
        "delta": delta,
        "source": source,
        "hoeffding": rate_bound("hoeffding", k_plain, n, delta),
        "clopper_pearson": rate_bound("clopper-pearson", k_plain, n, delta),
        "bernstein": rate_bound("bernstein", k_plain, n, delta),
        "this_method": look.rate_upper,
    }
    for name in ("hoeffding", "clopper_pearson"):
        out[f"ratio_{name}_to_this"] = out[name] / look.rate_upper if look.rate_upper > 0 else None
    if rate is not None:
        out["clopper_pearson_samples_needed"] = samples_needed_clopper_pearson(rate, delta)
    return out
