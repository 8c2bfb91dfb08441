"""Network IR, loaders and writers."""

from .layers import (
    AvgPool2d,
    Conv2d,
    Dense,
    ElementwiseAffine,
    Identity,
    Layer,
    QuantizeActivation,
    ReLU,
    Reshape,
    Shape,
)
from .network import Network, NnetNormalization

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "Dense",
    "ElementwiseAffine",
    "Identity",
    "Layer",
    "QuantizeActivation",
    "ReLU",
    "Reshape",
    "Shape",
    "Network",
    "NnetNormalization",
]

from .io import load, save  # noqa: E402  (loaders/writers: .onnx, .nnet, torch.nn.Module)

__all__ += ["load", "save"]
