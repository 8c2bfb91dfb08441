"""ONNX reader and writer for the network IR (a facade): `load_onnx` is in `onnx_read` (its op handlers in
`onnx_ops`), `onnx_model` / `onnx_bytes` in `onnx_write`; see those modules for the supported ops."""

from __future__ import annotations

from .onnx_read import load_onnx
from .onnx_write import onnx_bytes, onnx_model

__all__ = ["load_onnx", "onnx_model", "onnx_bytes"]
