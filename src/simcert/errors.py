"""Error types shared by the whole package.

`InputError` and its subclasses mean "the user gave us something we cannot use"; the CLI turns them into a
one-line message on stderr and exit code 2. Anything else escaping an engine is a bug.
"""

from __future__ import annotations

__all__ = ["SimcertError", "InputError", "UnsupportedOpError", "ModelFormatError"]


class SimcertError(Exception):
    """Base class of every error simcert raises on purpose."""


class InputError(SimcertError, ValueError):
    """Bad user input: a missing or corrupt file, a shape mismatch, an invalid option value (exit code 2)."""


class UnsupportedOpError(InputError):
    """A model uses an operation simcert cannot represent soundly (named in the message)."""


class ModelFormatError(InputError):
    """A model file that cannot be parsed (truncated, corrupt, NaN/inf weights, inconsistent sizes)."""
