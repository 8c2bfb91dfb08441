"""Load and save networks: format dispatch and the helpers the format modules share.

`load(model)` reads `.onnx` (`onnx_io`), `.nnet` (`nnet_io`) or converts a `torch.nn.Module` (`torch_io`);
`save(net, path)` writes `.onnx` or `.nnet` by extension, atomically (a temporary file in the target
directory, then `os.replace`), so a failed save never leaves a half-written file behind.

Shared here: `read_model_bytes` (missing/unreadable file errors), `atomic_write`, and `fold_affine`, the
peephole pass every loader runs on its layer list (elementwise affines folded into the preceding
Dense/Conv2d, consecutive elementwise affines and reshapes merged, no-ops dropped).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from .layers import Conv2d, Dense, ElementwiseAffine, Identity, Layer, Reshape, Shape
from .network import Network

__all__ = ["load", "save", "read_model_bytes", "atomic_write", "fold_affine", "MODEL_SUFFIXES"]

MODEL_SUFFIXES = (".onnx", ".nnet")


# ------------------------------------------------------------------------------------------ dispatch


def load(model: Any, input_shape: Sequence[int] | None = None, name: str | None = None) -> Network:
    """Load a model as a `Network`.

    `model` is a path to a `.onnx` or `.nnet` file, a `torch.nn.Module` (then `input_shape`, the per-sample
    input shape, is required), or a `Network` (returned unchanged). For ONNX, `input_shape` may fix
    symbolic non-batch input dimensions; for .nnet it must equal `(inputSize,)` when given.
    Raises `InputError` (or its subclasses `ModelFormatError`, `UnsupportedOpError`) naming the problem.
    """
    if isinstance(model, Network):
        return model
    if isinstance(model, (str, os.PathLike)):
        path = Path(model)
        suffix = path.suffix.lower()
        if suffix == ".onnx":
            from .onnx_io import load_onnx

            return load_onnx(path, input_shape=input_shape, name=name)
        if suffix == ".nnet":
            from .nnet_io import load_nnet

            return load_nnet(path, input_shape=input_shape, name=name)
        if not path.exists():
            raise InputError(f"{path}: no such file")
        raise InputError(f"{path}: unknown model format {suffix or '(no extension)'!r}; expected .onnx or .nnet")
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency
        torch = None  # type: ignore[assignment]
    if torch is not None and isinstance(model, torch.nn.Module):
        from .torch_io import from_torch

        if input_shape is None:
            raise InputError(f"loading a torch module ({type(model).__name__}) needs input_shape")
        return from_torch(model, input_shape, name=name)
    raise InputError(f"cannot load a model from a {type(model).__name__}; pass a .onnx/.nnet path or a torch module")


def save(net: Network, path: str | os.PathLike, dtype: Any = None) -> Path:
    """Write `net` to `path` (`.onnx` or `.nnet`, chosen by extension) atomically; returns the path.

    `.onnx`: initializers in `dtype` (default float32, like real models; float64 keeps every weight
    exactly). `.nnet`: dense-ReLU MLPs only, values written as shortest round-trip decimals (exact);
    `dtype` must be None there.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from .onnx_io import onnx_bytes

        data = onnx_bytes(net, dtype=np.float32 if dtype is None else dtype)
    elif suffix == ".nnet":
        from .nnet_io import nnet_text

        if dtype is not None:
            raise InputError(f"{path}: .nnet files are written as exact decimals; dtype is not supported")
        data = nnet_text(net).encode("utf-8")
    else:
        raise InputError(f"{path}: unknown model format {suffix or '(no extension)'!r}; expected .onnx or .nnet")
    atomic_write(path, data)
    return path


# ------------------------------------------------------------------------------------------ files


def read_model_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a model file; a missing, unreadable or empty file is an `InputError` naming it."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file")
    if p.is_dir():
        raise InputError(f"{p}: is a directory, not a model file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{p}: cannot read file ({exc.strerror or exc})") from None
    if not data:
        from ..errors import ModelFormatError

        raise ModelFormatError(f"{p}: file is empty")
    return data


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` via a temporary file in the same directory and `os.replace` (atomic on POSIX)."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{p}: directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# ------------------------------------------------------------------------------------------ folding


def _shapes(input_shape: Shape, layers: Sequence[Layer]) -> list[Shape]:
    shapes = [tuple(input_shape)]
    for layer in layers:
        shapes.append(tuple(layer.output_shape(shapes[-1])))
    return shapes


def _is_trivial(ea: ElementwiseAffine) -> bool:
    return bool(np.all(ea.scale == 1.0) and np.all(ea.shift == 0.0))


def _per_channel(a: np.ndarray, shape: Shape) -> np.ndarray | None:
    """`a` broadcast to `shape` = (C, H, W) as a (C,) vector, or None when it varies over H or W."""
    full = np.broadcast_to(a, shape)
    first = full[:, :1, :1]
    if not np.array_equal(np.broadcast_to(first, shape), full):
        return None
    return first.reshape(-1).copy()


def fold_affine(layers: Sequence[Layer], input_shape: Shape) -> list[Layer]:
    """Peephole simplification used by every loader (the function computed is unchanged).

    Rules, applied left to right:
      Dense(W, b) then s*x + t          -> Dense(diag(s) W, s*b + t)        (exact when s == 1)
      Conv2d(W, b) then per-channel s, t -> Conv2d(s_c W, s_c b + t_c)
      (s1*x + t1) then (s2*x + t2)      -> s2*s1*x + (s2*t1 + t2)
      Reshape then Reshape              -> one Reshape; a Reshape to the same shape, an Identity and an
                                           elementwise affine with s == 1, t == 0 are dropped.
    """
    out: list[Layer] = []
    shape_in: list[Shape] = []  # input shape of each layer in `out`
    cur = tuple(input_shape)
    for layer in layers:
        nxt = tuple(layer.output_shape(cur))
        if isinstance(layer, Identity):
            continue
        if isinstance(layer, ElementwiseAffine):
            if _is_trivial(layer):
                continue
            prev = out[-1] if out else None
            if isinstance(prev, Dense):
                s = np.broadcast_to(layer.scale, cur).astype(np.float64)
                t = np.broadcast_to(layer.shift, cur).astype(np.float64)
                w = prev.weight if np.all(s == 1.0) else prev.weight * s[:, None]
                b = prev.bias if np.all(s == 1.0) else prev.bias * s
                out[-1] = Dense(np.ascontiguousarray(w), b + t)
                cur = nxt
                continue
            if isinstance(prev, Conv2d):
                s_c, t_c = _per_channel(layer.scale, cur), _per_channel(layer.shift, cur)
                if s_c is not None and t_c is not None:
                    w = prev.weight * s_c[:, None, None, None]
                    out[-1] = Conv2d(w, prev.bias * s_c + t_c, prev.stride, prev.padding, prev.dilation, prev.groups)
                    cur = nxt
                    continue
            if isinstance(prev, ElementwiseAffine):
                scale = layer.scale * prev.scale
                shift = layer.scale * prev.shift + layer.shift
                merged = ElementwiseAffine(scale, shift)
                if _is_trivial(merged):
                    out.pop()
                    shape_in.pop()
                else:
                    out[-1] = merged
                cur = nxt
                continue
        if isinstance(layer, Reshape):
            if out and isinstance(out[-1], Reshape):
                start = shape_in[-1]
                out.pop()
                shape_in.pop()
                if nxt != start:
                    out.append(Reshape(nxt))
                    shape_in.append(start)
                cur = nxt
                continue
            if nxt == cur:
                continue
        out.append(layer)
        shape_in.append(cur)
        cur = nxt
    return out
