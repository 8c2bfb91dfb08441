"""Formulas of VNN-LIB assertions: exact linear terms, comparisons, and their disjunctive normal form.

`FormulaBuilder` turns s-expressions into `Cmp` / `Junction` trees. Terms are linearized exactly (Fraction
coefficients), so decimals in a file lose nothing before the caller rounds them (outward, for boxes).
A comparison is stored as `sum_k coeffs[k] * v_k + const  OP  0` with OP in `<=`, `<`, `==`, `!=`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from fractions import Fraction
from typing import Callable, Literal, Union

from ..errors import InputError
from .sexpr import Atom, Node, SList

__all__ = [
    "Key",
    "LinTerm",
    "Cmp",
    "Junction",
    "Formula",
    "Ref",
    "FormulaBuilder",
    "MAX_DISJUNCTS",
    "lin_sum",
    "const_true",
    "top_conjuncts",
    "keys_of",
]

Key = tuple[str, int]  # (tensor name, flat index)
LinTerm = tuple[dict[Key, Fraction], Fraction]  # a linear term: (coefficients, constant)
MAX_DISJUNCTS = 10_000  # cap on the DNF size (boxes or output disjuncts) before we give up


@dataclass(slots=True)
class Cmp:
    """sum(coeffs[k] * k) + const  OP  0, OP in <=, <, ==, !=."""

    coeffs: dict[Key, Fraction]
    const: Fraction
    op: str
    line: int


@dataclass
class Junction:
    """`(and parts...)` or `(or parts...)`."""

    kind: Literal["and", "or"]
    parts: list["Formula"]
    line: int


Formula = Union[Cmp, Junction]


@dataclass(slots=True)
class Ref:
    """A variable as written: `name` with an optional bracket index text like "[0,2]"."""

    name: str
    index: str | None
    line: int


_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")
_ZERO, _ONE = Fraction(0), Fraction(1)


@lru_cache(maxsize=4096)
def _number(text: str) -> Fraction:
    """The exact value of a decimal literal (cached: files repeat the same few constants)."""
    return Fraction(text)


_CMP_OPS = {"<=", "<", ">=", ">", "==", "=", "!=", "distinct"}


class FormulaBuilder:
    """Builds formulas; `resolve(ref) -> Key` names variables, `error(line, msg)` makes an InputError."""

    def __init__(self, resolve: Callable[[Ref], Key], error: Callable[[int | None, str], InputError]) -> None:
        self.resolve = resolve
        self.error = error

    def group(self, items: tuple[Node, ...]) -> list[Union[Node, Ref]]:
        """Operands of an operator, with `name [idx]` pairs merged into one reference."""
        out: list[Union[Node, Ref]] = []
        i = 0
        while i < len(items):
            it = items[i]
            if isinstance(it, Atom) and it.kind == "bracket":
                raise self.error(it.line, f"index {it.text} does not follow a variable name")
            if isinstance(it, Atom) and it.kind == "atom" and not _NUMBER.match(it.text):
                nxt = items[i + 1] if i + 1 < len(items) else None
                if isinstance(nxt, Atom) and nxt.kind == "bracket":
                    out.append(Ref(it.text, nxt.text.replace(" ", ""), it.line))
                    i += 2
                    continue
                out.append(Ref(it.text, None, it.line))
            else:
                out.append(it)
            i += 1
        return out

    def term(self, node: Union[Node, Ref]) -> LinTerm:
        """A linear term as (coefficients, constant), exact."""
        if isinstance(node, Ref):
            return {self.resolve(node): _ONE}, _ZERO
        if isinstance(node, Atom):
            if node.kind == "atom" and _NUMBER.match(node.text):
                return {}, _number(node.text)
            raise self.error(node.line, f"expected a number or variable, got {node.text!r}")
        op = node.head
        args = [self.term(a) for a in self.group(node.items[1:])]
        if op in ("+", "-", "*", "/") and not args:
            raise self.error(node.line, f"({op}) needs arguments")
        if op == "+":
            return lin_sum(args, [1] * len(args))
        if op == "-":
            if len(args) == 1:
                return lin_sum(args, [-1])
            return lin_sum(args, [1] + [-1] * (len(args) - 1))
        if op == "*":
            coeffs, const = {}, _ONE
            for c, k in args:
                if c:
                    if coeffs:
                        raise self.error(node.line, "non-linear product of two variables")
                    coeffs = c
                    continue
                const *= k
            if coeffs:
                # const * (sum c x + k0): the variable factor's own constant is scaled too
                var_const = next(k for c, k in args if c)
                return {key: v * const for key, v in coeffs.items()}, var_const * const
            return {}, const
        if op == "/":
            if len(args) != 2 or args[1][0]:
                raise self.error(node.line, "(/ t c) is only supported with a constant divisor")
            d = args[1][1]
            if d == 0:
                raise self.error(node.line, "division by zero")
            return {key: v / d for key, v in args[0][0].items()}, args[0][1] / d
        raise self.error(node.line, f"unsupported arithmetic operator {op!r}")

    def formula(self, node: Node) -> Formula:
        if not isinstance(node, SList):
            raise self.error(node.line, f"expected a formula, got {node.text!r}")
        op = node.head
        if op in ("and", "or"):
            parts = [self.formula(p) for p in node.items[1:]]
            if not parts:
                raise self.error(node.line, f"({op}) needs at least one argument")
            return parts[0] if len(parts) == 1 else Junction(op, parts, node.line)  # type: ignore[arg-type]
        if op in _CMP_OPS:
            operands = self.group(node.items[1:])
            if len(operands) < 2:
                raise self.error(node.line, f"({op} ...) needs two operands")
            terms = [self.term(o) for o in operands]
            if op in ("!=", "distinct") and len(terms) != 2:
                raise self.error(node.line, f"({op} ...) with more than two operands is not supported")
            cmps = [self.compare(op, a, b, node.line) for a, b in zip(terms, terms[1:])]
            return cmps[0] if len(cmps) == 1 else Junction("and", list(cmps), node.line)
        raise self.error(node.line, f"unsupported formula operator {op!r}")

    @staticmethod
    def compare(op: str, a: LinTerm, b: LinTerm, line: int) -> Cmp:
        if op in (">=", ">"):  # a >= b  <=>  b - a <= 0
            a, b = b, a
            op = "<=" if op == ">=" else "<"
        elif op in ("=", "=="):
            op = "=="
        elif op == "distinct":
            op = "!="
        coeffs, const = lin_sum([a, b], [1, -1])
        return Cmp(coeffs, const, op, line)

    def dnf(self, f: Formula) -> list[list[Cmp]]:
        """Disjunctive normal form: a list of conjunctions of comparisons (`!=` split into two `<`)."""
        if isinstance(f, Cmp):
            if f.op == "!=":
                neg = Cmp({k: -v for k, v in f.coeffs.items()}, -f.const, "<", f.line)
                return [[Cmp(f.coeffs, f.const, "<", f.line)], [neg]]
            return [[f]]
        if f.kind == "or":
            out = [conj for p in f.parts for conj in self.dnf(p)]
        else:
            out = [[]]
            for p in f.parts:
                d = self.dnf(p)
                if len(d) == 1:
                    for conj in out:
                        conj.extend(d[0])
                else:
                    out = [a + b for a in out for b in d]
                if len(out) > MAX_DISJUNCTS:
                    break
        if len(out) > MAX_DISJUNCTS:
            raise self.error(f.line, f"the formula expands to more than {MAX_DISJUNCTS} disjuncts")
        return out


def lin_sum(terms: list[LinTerm], signs: list[int]) -> LinTerm:
    """sum_i signs[i] * terms[i] for linear terms (coefficients, constant); signs are +1 or -1."""
    coeffs: dict[Key, Fraction] = {}
    const = _ZERO
    for (c, k), s in zip(terms, signs):
        for key, v in c.items():
            coeffs[key] = coeffs.get(key, _ZERO) + v if s > 0 else coeffs.get(key, _ZERO) - v
        if k:
            const = const + k if s > 0 else const - k
    return {k: v for k, v in coeffs.items() if v != 0}, const


def const_true(c: Cmp) -> bool:
    """Truth of a comparison without variables (`const OP 0`)."""
    if c.op == "<=":
        return c.const <= 0
    if c.op == "<":
        return c.const < 0
    if c.op == "==":
        return c.const == 0
    return c.const != 0


def top_conjuncts(f: Formula) -> list[Formula]:
    """The conjuncts of a (nested) top-level `and`, else [f]."""
    if isinstance(f, Junction) and f.kind == "and":
        return [c for p in f.parts for c in top_conjuncts(p)]
    return [f]


def keys_of(f: Formula) -> set[Key]:
    """All variables a formula mentions."""
    if isinstance(f, Cmp):
        return set(f.coeffs)
    out: set[Key] = set()
    for p in f.parts:
        out |= keys_of(p)
    return out


