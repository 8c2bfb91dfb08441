"""Regions (boxes, L-inf balls, VNN-LIB files, ACAS Xu property boxes) and properties of twin pairs."""

from .acas import (
    ACAS_NETWORK_IDS,
    ACAS_NORMALIZATION,
    AcasProperty,
    acas_network_id,
    acas_properties,
    acas_property,
    acas_property_names,
    acas_region,
    acas_regions,
    acas_suite,
)
from .box import Box, read_vector
from .properties import (
    DeltaTop1,
    EpsEquivalence,
    LinearSpec,
    Property,
    RsmSpec,
    Top1,
    check_outputs,
    property_from_json,
    top1_specs,
)
from .vnnlib import LinearConstraint, VnnlibSpec, parse_vnnlib, read_vnnlib

__all__ = [
    "ACAS_NETWORK_IDS",
    "ACAS_NORMALIZATION",
    "AcasProperty",
    "acas_network_id",
    "acas_properties",
    "acas_property",
    "acas_property_names",
    "acas_region",
    "acas_regions",
    "acas_suite",
    "Box",
    "read_vector",
    "DeltaTop1",
    "EpsEquivalence",
    "LinearSpec",
    "Property",
    "RsmSpec",
    "Top1",
    "check_outputs",
    "property_from_json",
    "top1_specs",
    "LinearConstraint",
    "VnnlibSpec",
    "parse_vnnlib",
    "read_vnnlib",
]
