"""`simcert compress`: build the compressed twin (simcert's quantizers and pruning, or ONNX Runtime's
quantize_static) and save it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from ..cli_common import _load_model
from ..errors import InputError


def _domain_samples(net: Any, model: str, n: int = 1000) -> np.ndarray:
    """Calibration inputs drawn uniformly (seed 0) from the model's recorded input domain."""
    if net.input_domain is None:
        raise InputError(f"{model}: no input domain recorded; give calibration inputs with --calibration CSV")
    lo, hi = (np.asarray(a, dtype=np.float64).reshape(-1) for a in net.input_domain)
    return np.random.default_rng(0).uniform(lo, hi, size=(n, lo.size))


def _ort_compress(model: str, net: Any, target: str | None, per_channel: bool, asymmetric: bool,
                  activations: int, calib: np.ndarray, qformat: str, out: str, full_range: bool = False) -> int:
    """`--quantizer onnxruntime`: ONNX Runtime's quantize_static writes the fully quantized twin."""
    from ..compress.ort_quant import ort_quantize
    from ..network import load
    from ..report.terminal import compress_summary_line

    if target not in ("int8", "int4"):
        raise InputError("--quantizer onnxruntime quantizes weights to --to int8 or --to int4")
    if asymmetric:
        raise InputError("--quantizer onnxruntime quantizes weights symmetrically; drop --asymmetric")
    import logging

    logging.disable(logging.WARNING)  # ONNX Runtime's quantizer advises pre-processing on the root logger
    try:
        ort_quantize(net, out, calib, weight_bits=int(target[3:]), activation_bits=activations,
                     per_channel=per_channel, fmt=qformat, reduce_range=False if full_range else None)
    finally:
        logging.disable(logging.NOTSET)
    twin = load(out)
    codes = " (7-bit codes)" if target == "int8" and not full_range else ""
    what = f"onnxruntime {qformat} {target}{codes}{' per-channel' if per_channel else ''} {activations}-bit-activation"
    click.echo(compress_summary_line(model, out, what, net.summary(), twin.summary()))
    return 0


def _read_calibration(path: str, n_inputs: int) -> np.ndarray:
    from ..spec import read_vector

    flat = read_vector(path)
    if flat.size % n_inputs:
        raise InputError(f"{path}: {flat.size} values is not a whole number of inputs of size {n_inputs}")
    return flat.reshape(-1, n_inputs)


def _compress_body(
    model: str,
    target: str | None,
    per_channel: bool,
    asymmetric: bool,
    activations: int | None,
    calibration: str | None,
    quantizer: str,
    qformat: str,
    full_range: bool,
    prune: float | None,
    structured: bool,
    prune_scope: str,
    out: str,
) -> int:
    from ..certificate import check_writable
    from ..compress import compress as run_compress
    from ..network.io import MODEL_SUFFIXES, save
    from ..report.terminal import compress_summary_line

    suffix = Path(out).suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise InputError(f"{out}: unknown output format {suffix or '(no extension)'!r}; expected .onnx or .nnet")
    check_writable(out)
    if calibration is not None and activations is None:
        raise InputError("--calibration needs --activations BITS")
    if full_range and quantizer != "onnxruntime":
        raise InputError("--full-range applies to --quantizer onnxruntime only")
    if quantizer == "onnxruntime" and (activations is None or suffix != ".onnx" or prune is not None):
        raise InputError("--quantizer onnxruntime needs --activations BITS, an .onnx output and no pruning")
    net = _load_model(model)
    calib = _read_calibration(calibration, net.input_size) if calibration is not None else None
    if calib is None and activations is not None:
        calib = _domain_samples(net, model)
    if quantizer == "onnxruntime":
        return _ort_compress(model, net, target, per_channel, asymmetric, activations, calib, qformat, out, full_range)
    twin = run_compress(
        net, to=target, per_channel=per_channel, symmetric=not asymmetric, activations=activations,
        calibration=calib, prune=prune, structured=structured, prune_scope=prune_scope,  # type: ignore[arg-type]
    )
    # ONNX initializers in float64 keep every twin weight exact; the QuantizeLinear writer needs float32
    onnx_dtype = np.float32 if activations is not None else np.float64
    save(twin, out, dtype=onnx_dtype if suffix == ".onnx" else None)
    parts = []
    if prune is not None:
        parts.append(f"{prune:g}-{'structured' if structured else 'magnitude'}-pruned")
    if target is not None:
        parts.append(target + (" per-channel" if per_channel else "") + (" asymmetric" if asymmetric else ""))
    if activations is not None:
        parts.append(f"{activations}-bit-activation")
    click.echo(compress_summary_line(model, out, " ".join(parts), net.summary(), twin.summary()))
    return 0
