"""The Python API: wiring of the packages for scripts and the explorer (no algorithms here)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grimsim.cost.profile import DeviceProfile
from grimsim.network.graph import Network
from grimsim.network.loader import load_network as _load_network

__all__ = ["load_device", "load_network"]


def load_network(model: str | Path, input_shape: Sequence[int] | str | None = None,
                 seq_len: int | None = None, fuse: bool = True) -> Network:
    """Load a zoo network by name, or an ``.onnx`` / ncnn ``.param`` file.

    ``input_shape`` may be a tuple or a string such as ``"1x3x224x224"``.
    """
    if isinstance(input_shape, str):
        from grimsim.network.loader import parse_shape

        input_shape = parse_shape(input_shape)
    return _load_network(model, input_shape=input_shape, seq_len=seq_len, fuse=fuse)


def load_device(name_or_path: str | Path = "host") -> DeviceProfile:
    """A device profile: a built-in name (``sd855``), ``name@version``, a YAML path, or
    ``host`` (this machine: detected and measured once, then read from the user data folder)."""
    from grimsim.cost.profile import load_profile

    if str(name_or_path) == "host":
        from grimsim.calibration.host import measured_host_profile

        return measured_host_profile()
    return load_profile(name_or_path)
