"""VNN-LIB reader: input boxes and output constraints from VNN-LIB 1.0 files and a VNN-LIB 2.0 subset.

Accepted syntax
---------------
Comments run from `;` to the end of the line. Top-level commands:

VNN-LIB 1.0 (one network)::

    (declare-const X_0 Real)        ; inputs X_0 .. X_{n-1} (declare-fun X_0 () Real also accepted)
    (declare-const Y_0 Real)        ; outputs Y_0 .. Y_{m-1}
    (assert FORMULA)

VNN-LIB 2.0 (one or more networks; the official grammar's network-declaration form)::

    (vnnlib-version <2.0>)                          ; optional
    (declare-network f
        (declare-input  X_f Real [5])               ; exactly one input and one output per network;
        (declare-output Y_f Real [5]))              ; shape [d0,d1,...] ([] = scalar), optional "onnx name"
    (declare-network g
        (equal-to f)                                ; optional, see "Two networks" below
        (declare-input  X_g Real [5])
        (declare-output Y_g Real [5]))
    (assert FORMULA)

A tensor element is written `X_f[i]` / `X_f[i,j]` (row-major, one index per dimension, spaces allowed
before the bracket) or, as in VNN-LIB 1.0, `X_f_k` with a flat index k; a scalar tensor is its bare name.
`(check-sat)`, `(get-model)`, `(set-logic ...)`, `(set-info ...)`, `(set-option ...)` and `(exit)` are
ignored. `declare-hidden`, several inputs/outputs per network, quantifiers and non-linear terms are
rejected with an InputError naming file and line.

FORMULA is a comparison `(OP a b)` with OP in `<= < >= > == = != distinct` (a chain `(<= a b c)` means
`a <= b <= c`), or `(and F ...)` / `(or F ...)`. Terms are linear: numbers, tensor elements,
`(+ t ...)`, `(- t)`, `(- t u ...)`, `(* ...)` with at most one non-constant factor, `(/ t number)`.

Meaning
-------
The conjunction of all assertions describes the *unsafe* set (a counterexample satisfies every assert).
Assertions over inputs only give the region: converted to disjunctive normal form, each disjunct must
bound every input on both sides with single-variable constraints (`a*X_i + b OP c`), giving one `Box`
per disjunct (`.boxes`; `.box` when there is one). Strict inequalities are closed (`<` read as `<=`), a
sound over-approximation of the region. Decimals are converted exactly and rounded *outward* (lower bounds
down, upper bounds up), so the box always contains the stated region. Assertions over outputs only become
`output_constraints`: a list of disjuncts, each a list of `LinearConstraint(coeffs, rhs, op)` meaning
`coeffs . y OP rhs` with OP `<=` or `<` (equalities become two `<=`, `!=` two strict disjuncts), over
the output vector `y` (for several networks: their outputs concatenated in declaration order). An
assertion mixing inputs and outputs is rejected.

Two networks (twin pairs): every network reads one shared input, the first network's. The other
networks' inputs must be tied to it element by element, either by `(assert (== X_g[i] X_f[i]))` for
every i (either order, `=` also accepted, possibly inside a top-level `and`) or by `(equal-to f)` in g's
declaration. *Note:* the published VNN-LIB 2.0 grammar says `(equal-to f)` means "same structure and
weights as f"; simcert reads it as "g reads f's input", the only reading that makes sense when g is f's
compressed twin. `(isomorphic-to f)` is recorded in `.relations` but ties nothing. Bounds on a tied
input constrain the shared input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from ..errors import InputError
from .box import Box
from .rounding import fraction_down, fraction_up
from .sexpr import Atom, SList, parse_sexprs
from .vnnlib_formula import (
    Cmp,
    Formula,
    FormulaBuilder,
    Junction,
    Key,
    Ref,
    const_true,
    keys_of,
    top_conjuncts,
)

__all__ = ["LinearConstraint", "VnnlibSpec", "read_vnnlib", "parse_vnnlib"]

class LinearConstraint(NamedTuple):
    """`coeffs . y OP rhs` over the output vector y (OP is "<=" or "<")."""

    coeffs: np.ndarray
    rhs: float
    op: Literal["<=", "<"]

    def holds(self, y: np.ndarray) -> np.ndarray:
        """Whether outputs y (..., m) satisfy the constraint."""
        v = np.asarray(y, dtype=np.float64) @ self.coeffs
        return v <= self.rhs if self.op == "<=" else v < self.rhs

    def describe(self, names: list[str] | None = None) -> str:
        names = names or [f"Y_{j}" for j in range(self.coeffs.size)]
        terms = []
        for j in np.flatnonzero(self.coeffs):
            c = float(self.coeffs[j])
            sign = "-" if c < 0 else "+"
            mag = "" if abs(c) == 1 else f"{abs(c):g}*"
            terms.append(f"{sign} {mag}{names[j]}")
        lhs = " ".join(terms).lstrip("+ ") if terms else "0"
        if lhs.startswith("- "):
            lhs = "-" + lhs[2:]
        return f"{lhs} {self.op} {self.rhs:g}"


@dataclass(frozen=True, eq=False)
class VnnlibSpec:
    """What a VNN-LIB file says: input box(es) and the output constraints of the unsafe set."""

    source: str
    version: str
    boxes: tuple[Box, ...]
    output_constraints: list[list[LinearConstraint]]
    n_inputs: int
    n_outputs: int
    has_output_property: bool
    input_shape: tuple[int, ...]
    networks: tuple[str, ...] = ()
    output_sizes: tuple[int, ...] = ()
    relations: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def box(self) -> Box:
        """The input box; InputError when the file describes several (use `.boxes`)."""
        if len(self.boxes) != 1:
            raise InputError(
                f"{self.source}: the input region is a union of {len(self.boxes)} boxes; use .boxes"
            )
        return self.boxes[0]

    @property
    def is_twin(self) -> bool:
        """True for a two-network (VNN-LIB 2.0) file."""
        return len(self.networks) == 2

    def split_outputs(self, coeffs: np.ndarray) -> dict[str, np.ndarray]:
        """Coefficients over the concatenated outputs, split per network ({"": c} for VNN-LIB 1.0)."""
        if not self.networks:
            return {"": np.asarray(coeffs)}
        out, start = {}, 0
        for name, size in zip(self.networks, self.output_sizes):
            out[name] = np.asarray(coeffs)[start : start + size]
            start += size
        return out

    def twin_coeffs(self, coeffs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(c1, c2) with `coeffs . y = c1 . f + c2 . g` for a two-network file (f, g in declaration order)."""
        if not self.is_twin:
            raise InputError(f"{self.source}: not a two-network file")
        parts = self.split_outputs(coeffs)
        return parts[self.networks[0]], parts[self.networks[1]]


# ---------------------------------------------------------------------------------------------- internals
@dataclass
class _Tensor:
    name: str
    kind: Literal["input", "output"]
    network: str | None
    shape: tuple[int, ...]
    line: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    def element(self, flat: int) -> str:
        if self.network is None:
            return f"{self.name}_{flat}"
        if not self.shape:
            return self.name
        idx = np.unravel_index(flat, self.shape)
        return f"{self.name}[{','.join(str(int(i)) for i in idx)}]"


_V1_NAME = re.compile(r"^([XY])_(0|[1-9]\d*)$")
_FLAT_NAME = re.compile(r"^(.+)_(\d+)$")
_IGNORED = {"check-sat", "get-model", "set-logic", "set-info", "set-option", "exit", "get-info"}


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tensors: dict[str, _Tensor] = {}
        self.networks: list[str] = []
        self.relations: dict[str, tuple[str, str]] = {}
        self.version: str | None = None
        self.v1_indices: dict[str, dict[int, int]] = {"X": {}, "Y": {}}
        self.fb = FormulaBuilder(self.resolve, self.error)

    def error(self, line: int | None, msg: str) -> InputError:
        where = f"{self.source}:{line}" if line is not None else self.source
        return InputError(f"{where}: {msg}")

    # -------------------------------------------------------------- declarations
    def declare_v1(self, node: SList) -> None:
        items = node.items
        if node.head == "declare-fun":
            ok = len(items) == 4 and isinstance(items[2], SList) and not items[2].items
            type_node = items[3] if ok else None
        else:
            ok = len(items) == 3
            type_node = items[2] if ok else None
        if not ok or not isinstance(items[1], Atom) or not isinstance(type_node, Atom):
            raise self.error(node.line, f"malformed {node.head}")
        name = items[1].text
        m = _V1_NAME.match(name)
        if not m:
            raise self.error(node.line, f"unsupported variable {name!r}: VNN-LIB 1.0 names inputs X_i and outputs Y_j")
        seen = self.v1_indices[m.group(1)]
        if int(m.group(2)) in seen:
            raise self.error(node.line, f"{name} declared twice")
        seen[int(m.group(2))] = node.line

    def finish_v1(self) -> None:
        for letter, kind in (("X", "input"), ("Y", "output")):
            seen = self.v1_indices[letter]
            n = len(seen)
            for i in range(n):
                if i not in seen:
                    raise self.error(None, f"{letter}_{max(seen)} is declared but {letter}_{i} is not")
            line = min(seen.values(), default=1)
            self.tensors[letter] = _Tensor(letter, kind, None, (n,), line)  # type: ignore[arg-type]

    def declare_network(self, node: SList) -> None:
        items = node.items
        if len(items) < 2 or not isinstance(items[1], Atom) or items[1].kind != "atom":
            raise self.error(node.line, "declare-network needs a name")
        net = items[1].text
        if net in self.networks:
            raise self.error(node.line, f"network {net!r} declared twice")
        inputs: list[_Tensor] = []
        outputs: list[_Tensor] = []
        for sub in items[2:]:
            if not isinstance(sub, SList):
                raise self.error(getattr(sub, "line", node.line), f"unexpected {sub.text!r} in declare-network")
            head = sub.head
            if head in ("equal-to", "isomorphic-to"):
                if len(sub.items) != 2 or not isinstance(sub.items[1], Atom):
                    raise self.error(sub.line, f"({head} NETWORK) expects one network name")
                other = sub.items[1].text
                if other not in self.networks:
                    raise self.error(sub.line, f"{head} refers to undeclared network {other!r}")
                if net in self.relations:
                    raise self.error(sub.line, f"network {net!r} has two equivalence statements")
                self.relations[net] = (head, other)
            elif head in ("declare-input", "declare-output"):
                t = self.declare_tensor(sub, net, "input" if head == "declare-input" else "output")
                (inputs if t.kind == "input" else outputs).append(t)
            elif head == "declare-hidden":
                raise self.error(sub.line, "declare-hidden (constraints on hidden nodes) is not supported")
            else:
                raise self.error(sub.line, f"unknown declaration {head!r} in declare-network")
        if len(inputs) != 1 or len(outputs) != 1:
            raise self.error(
                node.line,
                f"network {net!r} declares {len(inputs)} inputs and {len(outputs)} outputs; "
                "simcert supports exactly one of each",
            )
        self.networks.append(net)

    def declare_tensor(self, node: SList, net: str, kind: Literal["input", "output"]) -> _Tensor:
        items = node.items
        if not 4 <= len(items) <= 5 or not all(isinstance(x, Atom) for x in items[1:]):
            raise self.error(node.line, f"malformed ({node.head} NAME TYPE [SHAPE])")
        name, shape_tok = items[1], items[3]
        assert isinstance(name, Atom) and isinstance(shape_tok, Atom)
        if shape_tok.kind != "bracket":
            raise self.error(node.line, f"{node.head} {name.text}: expected a shape like [5], got {shape_tok.text!r}")
        shape = self.int_list(shape_tok)
        if any(d <= 0 for d in shape):
            raise self.error(node.line, f"{name.text}: shape {shape_tok.text} has a non-positive dimension")
        if name.text in self.tensors or name.text in self.networks:
            raise self.error(node.line, f"name {name.text!r} declared twice")
        t = _Tensor(name.text, kind, net, tuple(shape), node.line)
        self.tensors[name.text] = t
        return t

    def int_list(self, tok: Atom) -> list[int]:
        body = tok.text[1:-1].strip()
        if not body:
            return []
        parts = [p for p in re.split(r"[,\s]+", body) if p]
        if not all(p.isdigit() for p in parts):
            raise self.error(tok.line, f"{tok.text} must list non-negative integers")
        return [int(p) for p in parts]

    # -------------------------------------------------------------- terms and formulas
    def resolve(self, ref: Ref) -> Key:
        if self.version == "1.0":
            m = _V1_NAME.match(ref.name)
            if ref.index is not None or not m or int(m.group(2)) >= self.tensors[m.group(1)].size:
                raise self.error(ref.line, f"undeclared variable {ref.name}{ref.index or ''}")
            return (m.group(1), int(m.group(2)))
        t = self.tensors.get(ref.name)
        if t is not None:
            if ref.index is None:
                if t.size != 1:
                    msg = f"{ref.name} has shape {list(t.shape)}: give an index like {ref.name}[0]"
                    raise self.error(ref.line, msg)
                return (t.name, 0)
            idx = self.int_list(Atom(ref.index, ref.line, "bracket"))
            if len(idx) == 1 and len(t.shape) <= 1:
                flat = idx[0]
                if flat >= t.size:
                    raise self.error(ref.line, f"index {ref.name}{ref.index} out of range for shape {list(t.shape)}")
                return (t.name, flat)
            if len(idx) != len(t.shape) or any(i >= d for i, d in zip(idx, t.shape)):
                raise self.error(ref.line, f"index {ref.name}{ref.index} does not fit shape {list(t.shape)}")
            return (t.name, int(np.ravel_multi_index(idx, t.shape)))
        m = _FLAT_NAME.match(ref.name)
        if ref.index is None and m and m.group(1) in self.tensors:
            t = self.tensors[m.group(1)]
            flat = int(m.group(2))
            if flat >= t.size:
                raise self.error(ref.line, f"{ref.name}: flat index {flat} out of range for {t.name} (size {t.size})")
            return (t.name, flat)
        raise self.error(ref.line, f"undeclared variable {ref.name}{ref.index or ''}")

    # -------------------------------------------------------------- whole file
    def read(self, text: str, n_inputs: int | None) -> VnnlibSpec:
        nodes = parse_sexprs(text, self.source)
        asserts: list[SList] = []
        for node in nodes:
            if not isinstance(node, SList) or node.head is None:
                raise self.error(node.line, f"expected a command, got {getattr(node, 'text', '()')!r}")
            head = node.head
            if head == "vnnlib-version":
                self.set_version("2.0", node.line)
                if len(node.items) != 2 or not re.fullmatch(r"<2\.\d+>", getattr(node.items[1], "text", "")):
                    raise self.error(node.line, "only (vnnlib-version <2.x>) is supported")
            elif head in ("declare-const", "declare-fun"):
                self.set_version("1.0", node.line)
                self.declare_v1(node)
            elif head == "declare-network":
                self.set_version("2.0", node.line)
                self.declare_network(node)
            elif head == "assert":
                if len(node.items) != 2:
                    raise self.error(node.line, "(assert F) takes exactly one formula")
                asserts.append(node)
            elif head in _IGNORED:
                continue
            else:
                raise self.error(node.line, f"unknown command {head!r}")
        if self.version is None:
            raise self.error(None, "no variables declared (not a VNN-LIB file?)")
        if self.version == "1.0":
            self.finish_v1()
        elif not self.networks:
            raise self.error(None, "no declare-network in a VNN-LIB 2.0 file")
        formulas = [self.fb.formula(a.items[1]) for a in asserts]
        return self.interpret(formulas, n_inputs)

    def set_version(self, version: str, line: int) -> None:
        if self.version is not None and self.version != version:
            raise self.error(line, "mixes VNN-LIB 1.0 declare-const with VNN-LIB 2.0 declare-network")
        self.version = version

    def input_tensors(self) -> list[_Tensor]:
        return [t for t in self.tensors.values() if t.kind == "input"]

    def output_tensors(self) -> list[_Tensor]:
        return [t for t in self.tensors.values() if t.kind == "output"]

    def interpret(self, formulas: list[Formula], n_inputs: int | None) -> VnnlibSpec:
        inputs = self.input_tensors()
        primary = inputs[0]
        n = primary.size
        if n == 0:
            raise self.error(None, "no input variables declared")
        if n_inputs is not None and n != int(n_inputs):
            raise self.error(None, f"the file declares {n} inputs, the model expects {n_inputs}")
        # ---- ties between the inputs of different networks
        uf = _UnionFind()
        rest: list[Formula] = []
        for f in formulas:
            for part in top_conjuncts(f):
                tie = self.as_tie(part)
                if tie is None:
                    rest.append(part)
                else:
                    uf.union(*tie)
        for net, (kind, other) in self.relations.items():
            if kind == "equal-to":
                a = self.net_input(net)
                b = self.net_input(other)
                if a.size != b.size:
                    msg = f"{net} is equal-to {other} but their inputs have {a.size} and {b.size} elements"
                    raise self.error(a.line, msg)
                for i in range(a.size):
                    uf.union((a.name, i), (b.name, i))
        input_map = self.shared_input_map(inputs, primary, uf)
        # ---- classify the remaining assertions
        out_tensors = self.output_tensors()
        kinds = {t.name: t.kind for t in self.tensors.values()}
        in_parts: list[Formula] = []
        out_parts: list[Formula] = []
        for f in rest:
            used = {kinds[k[0]] for k in keys_of(f)}
            if used == {"input", "output"}:
                raise self.error(f.line, "an assertion mixes input and output variables (not supported)")
            if "output" in used:
                out_parts.append(f)
            elif "input" in used:
                in_parts.append(f)
            elif not any(all(const_true(c) for c in conj) for conj in self.fb.dnf(f)):
                out_parts.append(f)  # constant false: the unsafe set is empty (true ones are dropped)
        boxes = self.boxes(in_parts, input_map, primary, n)
        offsets, start = {}, 0
        for t in out_tensors:
            offsets[t.name] = start
            start += t.size
        constraints = self.output_dnf(out_parts, offsets, start)
        networks = tuple(self.networks)
        return VnnlibSpec(
            source=self.source,
            version=self.version or "1.0",
            boxes=tuple(boxes),
            output_constraints=constraints,
            n_inputs=n,
            n_outputs=out_tensors[0].size if out_tensors else 0,
            has_output_property=bool(out_parts),
            input_shape=primary.shape,
            networks=networks,
            output_sizes=tuple(t.size for t in out_tensors) if networks else (),
            relations=dict(self.relations),
        )

    def net_input(self, net: str) -> _Tensor:
        return next(t for t in self.tensors.values() if t.network == net and t.kind == "input")

    def as_tie(self, f: Formula) -> tuple[Key, Key] | None:
        if not isinstance(f, Cmp) or f.op != "==" or f.const != 0 or len(f.coeffs) != 2:
            return None
        (ka, ca), (kb, cb) = f.coeffs.items()
        ta, tb = self.tensors[ka[0]], self.tensors[kb[0]]
        if ta.kind != "input" or tb.kind != "input" or ta.name == tb.name or ca != -cb:
            return None
        return ka, kb

    def shared_input_map(self, inputs: list[_Tensor], primary: _Tensor, uf: "_UnionFind") -> dict[Key, int]:
        """Map every input element to its index in the shared (first network's) input."""
        root_to_index: dict[Key, int] = {}
        for i in range(primary.size):
            r = uf.find((primary.name, i))
            if r in root_to_index:
                raise self.error(
                    None,
                    f"input ties make {primary.element(root_to_index[r])} and {primary.element(i)} equal "
                    "(only element-wise ties between networks are supported)",
                )
            root_to_index[r] = i
        mapping: dict[Key, int] = {(primary.name, i): i for i in range(primary.size)}
        for t in inputs:
            if t is primary:
                continue
            if t.size != primary.size:
                raise self.error(t.line, f"input {t.name} has {t.size} elements but {primary.name} has {primary.size}")
            for i in range(t.size):
                j = root_to_index.get(uf.find((t.name, i)))
                if j is None:
                    raise self.error(
                        t.line,
                        f"input {t.element(i)} of network {t.network!r} is not tied to {primary.element(i)}: "
                        f"add (assert (== {t.element(i)} {primary.element(i)})) for every element "
                        f"or declare (equal-to {primary.network}) in network {t.network!r}",
                    )
                if j != i:
                    raise self.error(
                        t.line,
                        f"{t.element(i)} is tied to {primary.element(j)}: inputs must be tied element by element",
                    )
                mapping[(t.name, i)] = i
        return mapping

    def boxes(self, parts: list[Formula], input_map: dict[Key, int], primary: _Tensor, n: int) -> list[Box]:
        disjuncts = self.fb.dnf(Junction("and", parts, 0)) if parts else [[]]
        boxes: list[Box] = []
        empty_reason = ""
        for conj in disjuncts:
            lower: list[Fraction | None] = [None] * n
            upper: list[Fraction | None] = [None] * n
            feasible = True
            for c in conj:
                coeffs: dict[int, Fraction] = {}
                for k, v in c.coeffs.items():
                    i = input_map[k]
                    coeffs[i] = coeffs.get(i, Fraction(0)) + v
                coeffs = {i: v for i, v in coeffs.items() if v != 0}
                if not coeffs:
                    feasible = feasible and const_true(Cmp({}, c.const, c.op, c.line))
                    continue
                if len(coeffs) > 1:
                    names = ", ".join(primary.element(i) for i in sorted(coeffs)[:4])
                    msg = f"only bounds on single inputs are supported, got a constraint over {names}"
                    raise self.error(c.line, msg)
                ((i, a),) = coeffs.items()
                q = -c.const / a  # a*x + const OP 0  <=>  x OP' -const/a
                is_upper = a > 0
                if c.op == "==" or is_upper:
                    upper[i] = q if upper[i] is None else min(upper[i], q)  # type: ignore[type-var]
                if c.op == "==" or not is_upper:
                    lower[i] = q if lower[i] is None else max(lower[i], q)  # type: ignore[type-var]
            for i in range(n):
                if lower[i] is None or upper[i] is None:
                    which = "lower" if lower[i] is None else "upper"
                    extra = ""
                    if len(disjuncts) > 1:
                        extra = f" in disjunct {disjuncts.index(conj) + 1} of {len(disjuncts)}"
                    raise self.error(None, f"input {primary.element(i)} has no {which} bound{extra}")
            if not feasible:
                empty_reason = "a constant assertion is false"
                continue
            bad = [i for i in range(n) if lower[i] > upper[i]]  # type: ignore[operator]
            if bad:
                i = bad[0]
                lo_i, hi_i = float(lower[i]), float(upper[i])  # type: ignore[arg-type]
                empty_reason = f"{primary.element(i)} >= {lo_i} and <= {hi_i}"
                continue
            lo = np.array([fraction_down(v) for v in lower], dtype=np.float64)  # type: ignore[arg-type]
            hi = np.array([fraction_up(v) for v in upper], dtype=np.float64)  # type: ignore[arg-type]
            boxes.append(Box(lo.reshape(-1), hi.reshape(-1)))
        if not boxes:
            raise self.error(None, f"the input region is empty ({empty_reason})")
        return boxes

    def output_dnf(self, parts: list[Formula], offsets: dict[str, int], m: int) -> list[list[LinearConstraint]]:
        if not parts:
            return []
        out: list[list[LinearConstraint]] = []
        for conj in self.fb.dnf(Junction("and", parts, 0)):
            row: list[LinearConstraint] = []
            feasible = True
            for c in conj:
                coeffs = np.zeros(m, dtype=np.float64)
                for (name, i), v in c.coeffs.items():
                    coeffs[offsets[name] + i] += float(v)
                if not coeffs.any():
                    feasible = feasible and const_true(Cmp({}, c.const, c.op, c.line))
                    continue
                rhs = float(-c.const)
                if c.op == "==":
                    row.append(LinearConstraint(coeffs, rhs, "<="))
                    row.append(LinearConstraint(-coeffs, -rhs, "<="))
                else:
                    row.append(LinearConstraint(coeffs, rhs, c.op))  # type: ignore[arg-type]
            if feasible:
                out.append(row)
        return out


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[Key, Key] = {}

    def find(self, k: Key) -> Key:
        root = k
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while k != root:  # path compression
            self.parent[k], k = root, self.parent.get(k, k)
        return root

    def union(self, a: Key, b: Key) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def parse_vnnlib(text: str, source: str = "<string>", n_inputs: int | None = None) -> VnnlibSpec:
    """Parse VNN-LIB text (see the module docstring for the accepted syntax and its meaning).

    >>> spec = parse_vnnlib("(declare-const X_0 Real) (declare-const Y_0 Real) (declare-const Y_1 Real)"
    ...                     "(assert (>= X_0 -1)) (assert (<= X_0 0.5)) (assert (<= Y_1 Y_0))")
    >>> spec.box
    Box(lower=[-1.0], upper=[0.5])
    >>> [[c.describe() for c in conj] for conj in spec.output_constraints]
    [['-Y_0 + Y_1 <= 0']]
    """
    return _Reader(source).read(text, n_inputs)


def read_vnnlib(path: str | Path, n_inputs: int | None = None) -> VnnlibSpec:
    """Read a .vnnlib file. `n_inputs`, when given, must equal the number of declared inputs.

    Returns a `VnnlibSpec` (`.box` / `.boxes`, `.output_constraints`, `.networks`, ...); any syntax or
    unsupported construct raises InputError naming the file and line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file") from None
    return parse_vnnlib(text, str(path), n_inputs)
