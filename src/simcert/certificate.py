"""Certificates: the JSON record every command with `--json` writes, and its atomic writer.

A certificate says what was checked (models with their file hashes, region, property, method) and what came
out (verdict, certified bounds, counterexample, statistics). The format is documented in
docs/certificate.md. The JSON is strict (RFC 8259): non-finite floats are written as the strings
"inf", "-inf" and "nan" (`to_strict_json`), never as the non-standard tokens `Infinity`/`NaN`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .errors import InputError
from .network import Network
from .spec import Box

__all__ = [
    "CERTIFICATE_FORMAT",
    "REGION_INLINE_LIMIT",
    "STATISTICAL_FIELDS",
    "build_certificate",
    "check_writable",
    "file_sha256",
    "model_record",
    "region_record",
    "region_sha256",
    "to_strict_json",
    "dumps",
    "write_json_atomic",
]

CERTIFICATE_FORMAT = "simcert-certificate/1"
REGION_INLINE_LIMIT = 1000  # regions with more inputs are stored as a summary plus their sha256
STATISTICAL_FIELDS = (
    "confidence",
    "samples",
    "violation_rate_upper",
    "proven_fraction",
    "deviation_quantile_upper",
    "expected_deviation_upper",
)


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot read file ({exc.strerror or exc})") from None
    return h.hexdigest()


def region_sha256(region: Box) -> str:
    """sha256 of the region: of `lower` then `upper` as little-endian float64 bytes, concatenated."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(region.lower, dtype="<f8").tobytes())
    h.update(np.ascontiguousarray(region.upper, dtype="<f8").tobytes())
    return h.hexdigest()


def model_record(path: str | os.PathLike | None, net: Network, role: str | None = None) -> dict[str, Any]:
    """{role, path, format, sha256, summary} for one model; path/sha256 are null for in-memory models."""
    rec: dict[str, Any] = {}
    if role is not None:
        rec["role"] = role
    if path is not None:
        p = Path(path)
        rec["path"] = str(p)
        rec["format"] = p.suffix.lower().lstrip(".") or "unknown"
        rec["sha256"] = file_sha256(p)
    else:
        rec["path"] = None
        rec["format"] = str(net.meta.get("format", "in-memory"))
        rec["sha256"] = None
    rec["summary"] = net.summary()
    return rec


def region_record(region: Box, source: dict[str, Any] | None = None) -> dict[str, Any]:
    """The region as JSON: full lower/upper lists up to `REGION_INLINE_LIMIT` inputs, else a summary.

    Both forms carry `dim` and `sha256` (see `region_sha256`), so a large region can still be matched
    against the file it came from.
    """
    rec: dict[str, Any] = {"type": "box", "dim": region.dim, "sha256": region_sha256(region)}
    if region.dim <= REGION_INLINE_LIMIT:
        rec["lower"] = region.lower.tolist()
        rec["upper"] = region.upper.tolist()
    else:
        width = region.width
        rec["summary"] = {
            "lower_min": float(region.lower.min()),
            "lower_max": float(region.lower.max()),
            "upper_min": float(region.upper.min()),
            "upper_max": float(region.upper.max()),
            "width_min": float(width.min()),
            "width_max": float(width.max()),
            "width_mean": float(width.mean()),
            "fixed_inputs": int(np.count_nonzero(width == 0)),
        }
    if source:
        rec["source"] = dict(source)
    return rec


def build_certificate(
    command: str,
    models: Sequence[tuple[str | os.PathLike | None, Network]],
    region: Box,
    property_json: dict[str, Any] | None,
    result_dict: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The certificate of one run, as a JSON-ready dict (pass it to `write_json_atomic`).

    `models` are (path, network) pairs, reference first then twin (roles "f" and "g" when there are two);
    `result_dict` is a result's `to_dict()` (verdict, method, bounds, counterexample, stats, and for
    `certify` the statistical fields listed in `STATISTICAL_FIELDS`); `extra` is merged in last (for
    example `argv` or the region's source).
    """
    roles = ["f", "g"] if len(models) == 2 else [None] * len(models)
    method = result_dict.get("method")
    if isinstance(method, str):
        method = {"name": method}
    cert: dict[str, Any] = {
        "format": CERTIFICATE_FORMAT,
        "simcert_version": _version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "models": [model_record(path, net, role) for (path, net), role in zip(models, roles)],
        "region": region_record(region),
        "property": property_json if property_json is not None else result_dict.get("property"),
        "method": method,
        "verdict": result_dict.get("verdict", "unknown"),
        "bounds": result_dict.get("bounds", []),
        "counterexample": result_dict.get("counterexample"),
        "stats": result_dict.get("stats", {}),
    }
    if command == "certify":
        stats = result_dict.get("stats") or {}
        for key in STATISTICAL_FIELDS:  # top level in the result, or inside its stats
            cert[key] = result_dict.get(key, stats.get(key) if isinstance(stats, dict) else None)
    for key, value in result_dict.items():  # keep anything else the result reports
        if key not in cert:
            cert[key] = value
    if extra:
        region_source = extra.get("region_source")
        if region_source:
            cert["region"]["source"] = region_source
        cert.update({k: v for k, v in extra.items() if k != "region_source"})
    return to_strict_json(cert)


def to_strict_json(obj: Any) -> Any:
    """`obj` with only JSON types: numpy/torch values converted, tuples as lists, paths as strings, and
    non-finite floats as the strings "inf", "-inf", "nan".

    >>> to_strict_json({"a": float("inf"), "b": (np.float32(1.5), -math.inf), "c": np.array([1, 2])})
    {'a': 'inf', 'b': [1.5, '-inf'], 'c': [1, 2]}
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        v = float(obj)
        if math.isfinite(v):
            return v
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): to_strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_strict_json(obj.tolist())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):  # torch.Tensor, without importing torch here
        return to_strict_json(obj.detach().cpu().tolist())
    if hasattr(obj, "to_dict"):
        return to_strict_json(obj.to_dict())
    if hasattr(obj, "to_json"):
        return to_strict_json(obj.to_json())
    raise TypeError(f"cannot encode a {type(obj).__name__} as JSON")


def dumps(obj: Any) -> str:
    """Strict JSON text of `obj` (indent 2, trailing newline); see `to_strict_json`."""
    return json.dumps(to_strict_json(obj), indent=2, allow_nan=False) + "\n"


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    """Write `obj` as strict JSON to `path` atomically (temp file in the same directory, then os.replace).

    `path` "-" writes to standard output. The text is fully encoded before anything is written, so an
    encoding error never leaves a partial file; a missing directory is an InputError.
    """
    text = dumps(obj)
    if str(path) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    from .network.io import atomic_write

    atomic_write(path, text.encode("utf-8"))


def check_writable(path: str | os.PathLike) -> None:
    """Fail early (InputError) when `path` cannot be written later: missing directory or a directory."""
    if str(path) == "-":
        return
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{p}: directory {parent} does not exist")
    if p.is_dir():
        raise InputError(f"{p}: is a directory")


def _version() -> str:
    from . import __version__

    return __version__
