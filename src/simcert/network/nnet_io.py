"""Stanford .nnet reader and writer (K. Julian 2016; used by Reluplex, ReluVal, ReluDiff, NeuroDiff, Marabou).

Layout (comma-separated, trailing commas allowed, `//` comment lines first):

    numLayers, inputSize, outputSize, maxLayerSize
    size_0, ..., size_numLayers                  (size_0 = inputSize)
    symmetric flag (unused)
    input minimums; input maximums               (inputSize values; the ReluVal variant has more: we use the
    input means + output mean; ranges + out range  first inputSize for the inputs and the last for the output)
    per layer k: size_k rows of size_{k-1} weights (W is (out, in)), then size_k rows of one bias

Semantics: x_hat = (clip(x, min, max) - mean) / range, h = ReLU(W h + b) for all layers but the last
(affine), y = y_hat * range_out + mean_out. The `Network` we build works in the *normalized* coordinates
(x_hat -> y_hat), as the ACAS Xu ONNX exports do; `net.nnet` keeps the normalization and
`net.input_domain` is the normalized (min, max) box, or None when a bound is infinite or the float32
"unbounded" sentinel (|v| >= 3.4e38).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError, ModelFormatError
from .layers import Dense, Identity, ReLU
from .network import Network, NnetNormalization

__all__ = ["load_nnet", "nnet_text"]

_UNBOUNDED = 3.4e38  # |bound| at or above this is the float32-max "no bound" convention


class _Lines:
    """Numeric rows of the file with their 1-based line numbers (comments and blank lines skipped)."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.rows: list[tuple[int, list[str]]] = []
        self.comments: list[str] = []
        for no, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if not s:
                continue
            if s.startswith("//"):
                if not self.rows:
                    self.comments.append(s[2:].strip())
                continue
            toks = [t.strip() for t in s.split(",")]
            while toks and toks[-1] == "":
                toks.pop()
            self.rows.append((no, toks))
        self.pos = 0

    def next(self, what: str, count: int | None = None, min_count: int | None = None) -> tuple[int, np.ndarray]:
        """The next row as floats; `count` (exact) or `min_count` values are required."""
        if self.pos >= len(self.rows):
            last = self.rows[-1][0] if self.rows else 0
            raise ModelFormatError(f"{self.path}: file ends after line {last}; expected {what}")
        no, toks = self.rows[self.pos]
        self.pos += 1
        if count is not None and len(toks) != count:
            raise ModelFormatError(f"{self.path}:{no}: expected {count} values for {what}, found {len(toks)}")
        if min_count is not None and len(toks) < min_count:
            raise ModelFormatError(
                f"{self.path}:{no}: expected at least {min_count} values for {what}, found {len(toks)}"
            )
        try:
            vals = np.array([float(t) for t in toks], dtype=np.float64)
        except ValueError:
            bad = next(t for t in toks if not _is_float(t))
            raise ModelFormatError(f"{self.path}:{no}: cannot parse {bad!r} as a number ({what})") from None
        return no, vals

    def ints(self, what: str, count: int | None = None) -> tuple[int, list[int]]:
        no, vals = self.next(what, count)
        if not np.all(np.isfinite(vals)) or np.any(vals != np.round(vals)):
            raise ModelFormatError(f"{self.path}:{no}: {what} must be integers")
        return no, [int(v) for v in vals]


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def load_nnet(path: str | os.PathLike, input_shape: Sequence[int] | None = None, name: str | None = None) -> Network:
    """Read a .nnet file into a `Network` in normalized coordinates (see the module docstring).

    Malformed numbers, wrong value counts, truncation and NaN/inf weights raise `ModelFormatError` with the
    line number.
    """
    from .io import read_model_bytes

    p = Path(path)
    try:
        text = read_model_bytes(p).decode("utf-8")
    except UnicodeDecodeError:
        raise ModelFormatError(f"{p}: not a text .nnet file (invalid UTF-8)") from None
    rows = _Lines(str(p), text)
    no, head = rows.ints("the header (numLayers, inputSize, outputSize, maxLayerSize)", 4)
    n_layers, n_in, n_out, _ = head
    if n_layers < 1 or n_in < 1 or n_out < 1:
        raise ModelFormatError(f"{p}:{no}: layer count and sizes must be positive, got {head}")
    no, sizes = rows.ints(f"the {n_layers + 1} layer sizes", n_layers + 1)
    if sizes[0] != n_in or sizes[-1] != n_out or min(sizes) < 1:
        raise ModelFormatError(f"{p}:{no}: layer sizes {sizes} do not match inputSize {n_in} / outputSize {n_out}")
    rows.next("the symmetric flag", 1)
    no_min, mins = rows.next("the input minimums", min_count=n_in)
    no_max, maxs = rows.next("the input maximums", len(mins))
    no_mean, means = rows.next("the input and output means", min_count=n_in + 1)
    no_rng, ranges = rows.next("the input and output ranges", len(means))
    for no, vals, what in ((no_min, mins, "minimum"), (no_max, maxs, "maximum")):
        if np.any(np.isnan(vals)):
            raise ModelFormatError(f"{p}:{no}: input {what} is NaN")
    for no, vals, what in ((no_mean, means, "mean"), (no_rng, ranges, "range")):
        if not np.all(np.isfinite(vals)):
            raise ModelFormatError(f"{p}:{no}: {what} values must be finite")
    if np.any(ranges[:n_in] == 0):
        raise ModelFormatError(f"{p}:{no_rng}: an input range is zero")
    if np.any(mins[:n_in] > maxs[:n_in]):
        raise ModelFormatError(f"{p}:{no_max}: an input maximum is below its minimum")
    norm = NnetNormalization(
        input_min=mins[:n_in],
        input_max=maxs[:n_in],
        input_mean=means[:n_in],
        input_range=ranges[:n_in],
        output_mean=float(means[-1]),
        output_range=float(ranges[-1]),
    )
    layers = []
    for k in range(1, n_layers + 1):
        rows_in, rows_out = sizes[k - 1], sizes[k]
        w = np.empty((rows_out, rows_in))
        b = np.empty(rows_out)
        for i in range(rows_out):
            no, w[i] = rows.next(f"row {i + 1} of the layer {k} weights", rows_in)
            if not np.all(np.isfinite(w[i])):
                raise ModelFormatError(f"{p}:{no}: layer {k} weight row {i + 1} contains NaN or infinite values")
        for i in range(rows_out):
            no, b[i : i + 1] = rows.next(f"bias {i + 1} of layer {k}", 1)
            if not np.isfinite(b[i]):
                raise ModelFormatError(f"{p}:{no}: layer {k} bias {i + 1} is NaN or infinite")
        layers.append(Dense(w, b))
        if k < n_layers:
            layers.append(ReLU())
    if rows.pos < len(rows.rows):
        raise ModelFormatError(f"{p}:{rows.rows[rows.pos][0]}: unexpected data after the last layer")
    if input_shape is not None and tuple(int(s) for s in input_shape) != (n_in,):
        raise InputError(f"{p}: input_shape {tuple(input_shape)} does not match the .nnet input size ({n_in},)")
    lo, hi = norm.input_min, norm.input_max
    bounded = np.all(np.abs(lo) < _UNBOUNDED) and np.all(np.abs(hi) < _UNBOUNDED)
    domain = norm.normalized_domain if bounded else None
    return Network(
        layers,
        (n_in,),
        name=name or p.stem,
        input_domain=domain,
        nnet=norm,
        source=str(p),
        meta={"format": "nnet", "nnet_comments": rows.comments},
    )


def _mlp(net: Network) -> list[Dense]:
    """The Dense layers of a dense-ReLU MLP (Dense (ReLU Dense)*), or an InputError naming the obstacle.

    The network is used as is when it already has that form (weights written exactly); otherwise its
    `simplified()` form (normalizations merged into the Dense layers, flattening absorbed) is tried.
    """
    problem = ""
    for cand in (net, net.simplified()):
        layers = [l for l in cand.layers if not isinstance(l, Identity)]
        problem = next((f"layer {i} is {l.describe()}" for i, l in enumerate(layers)
                        if not isinstance(l, Dense if i % 2 == 0 else ReLU)), "")
        if not problem and len(cand.input_shape) != 1:
            problem = "its input is not a flat vector"
        if not problem and layers and isinstance(layers[-1], Dense):
            return [l for l in layers if isinstance(l, Dense)]
        problem = problem or "it does not end in a Dense layer"
    raise InputError(f"{net.name}: .nnet holds only dense-ReLU MLPs (Dense, ReLU, ..., Dense); {problem}")


def _row(values: np.ndarray) -> str:
    return ",".join(repr(float(v)) for v in np.asarray(values).reshape(-1)) + ","


def nnet_text(net: Network) -> str:
    """The .nnet text of a dense-ReLU MLP; numbers are shortest round-trip decimals (reload is exact).

    The normalization comes from `net.nnet` (mean 0, range 1 and infinite min/max when absent, or the
    input domain as min/max when the network has one).
    """
    denses = _mlp(net)
    sizes = [denses[0].in_features] + [d.out_features for d in denses]
    n_in = sizes[0]
    if net.nnet is not None:
        n = net.nnet
        mins, maxs = np.broadcast_to(n.input_min, (n_in,)), np.broadcast_to(n.input_max, (n_in,))
        means = np.append(np.broadcast_to(n.input_mean, (n_in,)), n.output_mean)
        ranges = np.append(np.broadcast_to(n.input_range, (n_in,)), n.output_range)
    else:
        if net.input_domain is not None:
            mins = np.broadcast_to(np.asarray(net.input_domain[0], dtype=np.float64).reshape(-1), (n_in,))
            maxs = np.broadcast_to(np.asarray(net.input_domain[1], dtype=np.float64).reshape(-1), (n_in,))
        else:
            mins, maxs = np.full(n_in, -np.inf), np.full(n_in, np.inf)
        means, ranges = np.zeros(n_in + 1), np.ones(n_in + 1)
    comments = list(net.meta.get("nnet_comments", [])) if net.meta.get("format") == "nnet" else []
    out = [f"// {c}" for c in comments] + [f"// {net.name}: written by simcert"]
    out.append(f"{len(denses)},{n_in},{sizes[-1]},{max(sizes)},")
    out.append(",".join(str(s) for s in sizes) + ",")
    out.append("0,")
    for vals in (mins, maxs, means, ranges):
        out.append(_row(vals))
    for d in denses:
        out.extend(_row(row) for row in d.weight)
        out.extend(_row(v) for v in d.bias)
    return "\n".join(out) + "\n"
