"""A small s-expression reader (the SMT-LIB surface syntax of VNN-LIB) that keeps line numbers.

Tokens: `(`, `)`, comments from `;` to the end of the line, double-quoted strings, bracket groups
`[...]` (tensor shapes and indices, kept whole), version tokens `<2.0>`, and atoms (any other run of
characters without whitespace, parentheses, brackets, `;` or `"`). A stray `]` is an error.
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple, Union

from ..errors import InputError

__all__ = ["Atom", "SList", "Node", "parse_sexprs"]


class Atom(NamedTuple):
    """A leaf: `kind` is "atom" (symbol or number), "string", "bracket" (text includes the brackets)."""

    text: str
    line: int
    kind: Literal["atom", "string", "bracket"] = "atom"


class SList(NamedTuple):
    """A parenthesized list; `line` is the line of its opening parenthesis."""

    items: tuple["Node", ...]
    line: int

    @property
    def head(self) -> str | None:
        """The first item's text when it is an atom (the operator or command name)."""
        if self.items and isinstance(self.items[0], Atom) and self.items[0].kind == "atom":
            return self.items[0].text
        return None


Node = Union[Atom, SList]

_TOKEN = re.compile(
    r"""
    (?P<nl>\n)
  | (?P<ws>[ \t\r\f\v]+)
  | (?P<comment>;[^\n]*)
  | (?P<open>\()
  | (?P<close>\))
  | (?P<string>"[^"\n]*")
  | (?P<bracket>\[[^\]\n;()]*\])
  | (?P<atom>[^\s()\[\]\;"]+)
  | (?P<bad>.)
    """,
    re.VERBOSE,
)


def parse_sexprs(text: str, source: str = "<string>") -> list[Node]:
    """All top-level s-expressions of `text`. InputError "source:line: ..." on unbalanced input."""
    stack: list[tuple[list[Node], int]] = []
    top: list[Node] = []
    line = 1
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        tok = m.group()
        if kind == "nl":
            line += 1
        elif kind in ("ws", "comment"):
            continue
        elif kind == "open":
            stack.append(([], line))
        elif kind == "close":
            if not stack:
                raise InputError(f"{source}:{line}: unexpected ')'")
            items, start = stack.pop()
            node = SList(tuple(items), start)
            (stack[-1][0] if stack else top).append(node)
        elif kind == "bad":
            what = "unterminated string" if tok == '"' else "unclosed '['" if tok == "[" else f"unexpected {tok!r}"
            raise InputError(f"{source}:{line}: {what}")
        else:
            node = Atom(tok, line, "atom" if kind == "atom" else kind)  # type: ignore[arg-type]
            (stack[-1][0] if stack else top).append(node)
    if stack:
        raise InputError(f"{source}:{stack[-1][1]}: '(' is never closed")
    return top
