"""Shared by the ONNX reader and writer: the lazy `onnx` import and the ONNX integer types of quantizers."""

from __future__ import annotations

from typing import Any

# ONNX integer element types usable as a quantization zero point: (bits, signed)
_QUANT_TYPES = {2: (8, False), 3: (8, True), 4: (16, False), 5: (16, True), 21: (4, False), 22: (4, True)}


def _onnx() -> Any:
    import onnx

    return onnx
