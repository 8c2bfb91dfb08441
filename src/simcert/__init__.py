"""simcert: certify that a compressed neural network still behaves like its original."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import InputError, ModelFormatError, SimcertError, UnsupportedOpError
from .network import Network

__all__ = ["__version__", "InputError", "ModelFormatError", "SimcertError", "UnsupportedOpError", "Network"]
