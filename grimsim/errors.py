"""The errors grimsim raises on bad input: each says what is wrong and where."""

from __future__ import annotations


class GrimsimError(Exception):
    """Base class of every error grimsim raises for bad input or an impossible request."""


class ModelFormatError(GrimsimError):
    """A model file (ONNX, ncnn .param) is malformed; names the file, line or node."""


class UnsupportedOpError(ModelFormatError):
    """A model uses an operator grimsim does not know; names the op, file and line or node."""


class ShapeError(GrimsimError):
    """Shapes do not fit together (shape inference failed, or a wrong --input)."""


class UnknownModelError(GrimsimError):
    """A model name is neither a zoo network nor a readable file."""


class SchemeError(GrimsimError):
    """A pruning-scheme spec is malformed, or the scheme is illegal for a layer."""


class DeviceProfileError(GrimsimError):
    """A device profile is malformed; names the file, key and reason."""


class MappingError(GrimsimError):
    """A mapping file is malformed or names layers the network does not have."""


class SearchError(GrimsimError):
    """A search target cannot be met; says what the closest feasible point is."""


class ReferenceDataError(GrimsimError):
    """A public reference file (e.g. ncnn's benchmark table) is missing or malformed."""


class CalibrationError(GrimsimError):
    """Calibration data or a fitted correction artefact is unusable; says what to fix."""


class KernelCheckError(GrimsimError):
    """A kernel's output differs from numpy's (masked W) @ X beyond the tolerance."""


class SweepError(GrimsimError):
    """A sweep cannot start: bad targets, unknown networks or devices, no cluster."""
