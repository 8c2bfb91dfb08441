"""Twin builders: float16/bfloat16 rounding, integer weight quantization, activation quantization, and
magnitude (unstructured) and L1 (structured) pruning. Each returns a new `Network`; the input is not mutated.
"""

from .activations import activation_quantizer, quantize_activations
from .floats import round_bfloat16, round_float16, to_bfloat16, to_float16
from .pipeline import TARGETS, compress
from .pruning import prune_magnitude
from .structured import l1_kept_outputs, prune_structured
from .weights import QuantizedTensor, quantize_tensor, quantize_weights

__all__ = [
    "TARGETS",
    "QuantizedTensor",
    "activation_quantizer",
    "compress",
    "l1_kept_outputs",
    "prune_magnitude",
    "prune_structured",
    "quantize_activations",
    "quantize_tensor",
    "quantize_weights",
    "round_bfloat16",
    "round_float16",
    "to_bfloat16",
    "to_float16",
]
