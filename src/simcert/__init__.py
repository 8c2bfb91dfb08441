"""simcert: certify that a compressed neural network still behaves like its original.

>>> import simcert
>>> sorted(n for n in ("verify", "bound_spec", "Box", "EpsEquivalence", "load") if hasattr(simcert, n))
['Box', 'EpsEquivalence', 'bound_spec', 'load', 'verify']
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import InputError, ModelFormatError, SimcertError, UnsupportedOpError
from .network import Network
from .network.io import load, save
from .spec import Box, DeltaTop1, EpsEquivalence, LinearSpec, RsmSpec, Top1
from .twin import Twin
from .verify import VerificationResult, bound_spec, verify
from .rsm import RsmResult, rsm, rsm_dataset, rsm_probabilistic
from .stats.certify import certify

__all__ = [
    "__version__",
    "InputError",
    "ModelFormatError",
    "SimcertError",
    "UnsupportedOpError",
    "Network",
    "load",
    "save",
    "Box",
    "EpsEquivalence",
    "Top1",
    "DeltaTop1",
    "RsmSpec",
    "LinearSpec",
    "Twin",
    "verify",
    "bound_spec",
    "VerificationResult",
    "rsm",
    "rsm_dataset",
    "rsm_probabilistic",
    "RsmResult",
    "certify",
]
