"""Fully quantized twins made by ONNX Runtime's own quantizer (`onnxruntime.quantization`).

`ort_quantize` writes the float network with simcert's ONNX writer to a temporary file, runs
`quantize_static` on it with a min/max calibration over the given inputs, and moves the result to
`out_path` atomically (a temporary file in the target directory, then `os.replace`: a failure never
leaves a half-written model). The output loads back with `simcert.network.load` (QDQ graphs through
`onnx_io`, QOperator graphs through `onnx_qoperator`).

Options map onto ONNX Runtime's (onnxruntime 1.32):

- `fmt="qdq"`: QuantizeLinear/DequantizeLinear pairs around float ops (ORT fuses them into integer
  kernels at load time); `fmt="qoperator"`: integer ops (QGemm, QLinearMatMul, QLinearConv, ...).
- `weight_bits` 8 (QInt8, symmetric) or 4 (QInt4, QDQ only: ORT's QOperator packer refuses 4-bit
  weights); `activation_bits` 8, 16 or 4 (16 and 4 need QDQ: ORT writes com.microsoft Q/DQ there).
- `activation_type` "uint8" (QUInt8/QUInt16/QUInt4) or "int8" (the signed types);
  `symmetric_activations` sets ORT's ActivationSymmetric (zero point 0 / mid-range).
- `per_channel`: per output channel weight scales.
- `reduce_range` (default: on for 8-bit weights): 7-bit weight codes (ORT's `reduce_range`, |q| <= 64). ORT's
  8-bit integer kernels on x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) multiply uint8 activation codes
  by int8 weight codes and add each pair of products in *saturating* int16 (`vpmaddubsw`; int8 activations
  are shifted to uint8 first), so where two adjacent weight codes of the same sign add up to more than 128
  ORT's output is not the model's ONNX semantics. Measured on such a CPU (onnxruntime 1.32, a 5-12-10-3
  ReLU network, 2,000 inputs): 523 of 6,000 outputs off by up to 8 output steps with 8-bit weights, none
  with `reduce_range`. simcert's bounds follow the ONNX semantics, so only reduced-range twins are certified
  for ORT on every x86 CPU; `reduce_range=False` gives full 8-bit weights for VNNI, ARM or GPU targets.

`ort_quantize_dynamic` wraps `quantize_dynamic`. Its graphs quantize activations with a scale computed
from each input at run time (DynamicQuantizeLinear), which is not a fixed quantization grid: simcert's
loader refuses them (UnsupportedOpError, CLI exit 2). It is offered to produce such files, not to verify them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..errors import InputError
from ..network import Network
from ._common import check_bool, check_choice

__all__ = ["ort_quantize", "ort_quantize_dynamic"]

_BATCH = 64  # calibration samples per ORT run


def _quant_type(signed: bool, bits: int) -> Any:
    from onnxruntime.quantization import QuantType

    table = {
        (True, 8): QuantType.QInt8, (False, 8): QuantType.QUInt8,
        (True, 16): QuantType.QInt16, (False, 16): QuantType.QUInt16,
        (True, 4): QuantType.QInt4, (False, 4): QuantType.QUInt4,
    }
    return table[(signed, bits)]


def _float_model(net: Network | str | os.PathLike, tmp: Path) -> tuple[Path, Any, Network]:
    """Write the float model with simcert's writer; returns (path, ModelProto, network)."""
    from ..network import load
    from ..network.onnx_io import onnx_model

    if not isinstance(net, Network):
        net = load(net)
    model = onnx_model(net)
    path = tmp / "float.onnx"
    path.write_bytes(model.SerializeToString())
    return path, model, net


def _feeds(model: Any, net: Network, calibration: Any) -> list[dict[str, np.ndarray]]:
    """The calibration inputs as ORT feeds for the written model's input (batched or a single vector)."""
    try:
        x = np.asarray(calibration, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"calibration inputs are not numeric: {exc}") from None
    if x.ndim == len(net.input_shape) and x.size == net.input_size:
        x = x[None]
    if x.ndim < 1 or x.shape[0] == 0 or x[0].size != net.input_size:
        raise InputError(f"calibration inputs of shape {x.shape} do not match the model input {net.input_shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("calibration inputs contain NaN or infinite values")
    inp = model.graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    name = inp.name
    n = x.shape[0]
    if dims and dims[0] is None:  # symbolic batch axis
        per = [int(d) for d in dims[1:]]
        return [{name: x[i:i + _BATCH].reshape(-1, *per)} for i in range(0, n, _BATCH)]
    shape = [int(d) for d in dims]  # fixed shape: one sample per run
    return [{name: x[i].reshape(shape)} for i in range(n)]


class _Reader:
    """An `onnxruntime.quantization.CalibrationDataReader` over a list of feeds (duck-typed; rewindable)."""

    def __init__(self, feeds: list[dict[str, np.ndarray]]) -> None:
        self.feeds = feeds
        self.it: Iterator[dict[str, np.ndarray]] = iter(feeds)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self.it, None)

    def rewind(self) -> None:
        self.it = iter(self.feeds)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.feeds)

    def __len__(self) -> int:
        return len(self.feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self.it = iter(self.feeds[start_index:end_index])


def _check_out(out_path: str | os.PathLike) -> Path:
    out = Path(out_path)
    if out.suffix.lower() != ".onnx":
        raise InputError(f"{out}: the quantized model must be written to a .onnx file")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{out}: directory {parent} does not exist")
    return out


def _publish(produced: Path, out: Path) -> Path:
    """Move the quantizer's output into place atomically (temp file in the target directory + os.replace)."""
    from ..network.io import atomic_write

    atomic_write(out, produced.read_bytes())
    return out


def ort_quantize(
    net: Network | str | os.PathLike,
    out_path: str | os.PathLike,
    calibration: np.ndarray,
    *,
    weight_bits: int = 8,
    activation_bits: int = 8,
    per_channel: bool = False,
    activation_type: str = "uint8",
    symmetric_activations: bool = False,
    fmt: str = "qdq",
    preprocess: bool = False,
    reduce_range: bool | None = None,
) -> Path:
    """Statically quantize `net` (a `Network` or a model path) with ONNX Runtime; writes `out_path`.

    `calibration` is an (N, *input_shape) or (N, input_size) array of inputs for min/max calibration.
    `preprocess` runs ORT's `quant_pre_process` (shape inference and graph optimization) first.
    `reduce_range` (None: True for 8-bit weights): 7-bit weight codes, see the module docstring.
    Returns the output path. Bad options raise InputError; quantizer failures too, naming ORT's message.
    """
    weight_bits = int(check_choice(weight_bits, (8, 4), "weight_bits"))
    activation_bits = int(check_choice(activation_bits, (8, 16, 4), "activation_bits"))
    per_channel = check_bool(per_channel, "per_channel")
    symmetric_activations = check_bool(symmetric_activations, "symmetric_activations")
    preprocess = check_bool(preprocess, "preprocess")
    reduce_range = weight_bits == 8 if reduce_range is None else check_bool(reduce_range, "reduce_range")
    activation_type = check_choice(activation_type, ("uint8", "int8"), "activation_type")
    fmt = check_choice(fmt, ("qdq", "qoperator"), "fmt")
    if fmt == "qoperator" and (weight_bits != 8 or activation_bits != 8):
        raise InputError("QOperator format supports only 8-bit weights and activations in onnxruntime; use fmt='qdq'")
    out = _check_out(out_path)
    from onnxruntime.quantization import QuantFormat, quantize_static

    with tempfile.TemporaryDirectory(prefix="simcert-ortq-") as d:
        tmp = Path(d)
        src, model, net = _float_model(net, tmp)
        feeds = _feeds(model, net, calibration)
        if preprocess:
            from onnxruntime.quantization import quant_pre_process

            pre = tmp / "pre.onnx"
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
            src = pre
        produced = tmp / "quant.onnx"
        extra = {"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True}
        try:
            quantize_static(
                str(src), str(produced), _Reader(feeds),
                quant_format=QuantFormat.QDQ if fmt == "qdq" else QuantFormat.QOperator,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=_quant_type(activation_type == "int8", activation_bits),
                weight_type=_quant_type(True, weight_bits),
                extra_options=extra,
            )
        except InputError:
            raise
        except Exception as exc:  # ORT raises plain RuntimeError/ValueError for unsupported combinations
            msg = str(exc).strip().splitlines()
            raise InputError(f"onnxruntime quantize_static failed: {msg[0][:200] if msg else type(exc).__name__}") from None
        return _publish(produced, out)


def ort_quantize_dynamic(
    net: Network | str | os.PathLike, out_path: str | os.PathLike, *, per_channel: bool = False,
    weight_type: str = "int8",
) -> Path:
    """Dynamically quantize `net` with ONNX Runtime (int8/uint8 weights, run-time activation scales).

    simcert cannot load the result (DynamicQuantizeLinear computes the scale from each input); see the
    module docstring.
    """
    per_channel = check_bool(per_channel, "per_channel")
    weight_type = check_choice(weight_type, ("uint8", "int8"), "weight_type")
    out = _check_out(out_path)
    from onnxruntime.quantization import quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="simcert-ortq-") as d:
        tmp = Path(d)
        src, _, _ = _float_model(net, tmp)
        produced = tmp / "quant.onnx"
        try:
            quantize_dynamic(str(src), str(produced), per_channel=per_channel,
                             weight_type=_quant_type(weight_type == "int8", 8))
        except Exception as exc:
            msg = str(exc).strip().splitlines()
            raise InputError(f"onnxruntime quantize_dynamic failed: {msg[0][:200] if msg else type(exc).__name__}") from None
        return _publish(produced, out)
