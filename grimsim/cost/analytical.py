"""The analytical cost models (no calibration needed): CPU in ``analytical_cpu``, mobile GPU
in ``analytical_gpu``; ``analytical_model`` picks one by unit."""

from __future__ import annotations

from grimsim.cost.analytical_cpu import (
    CACHE_STATES,
    WINOGRAD_POLICIES,
    AnalyticalCPUModel,
    CpuMachine,
    cpu_machine,
)
from grimsim.cost.analytical_gpu import GPU_KERNELS, AnalyticalGPUModel
from grimsim.cost.kernel_params import CPU_KERNELS, DEFAULT_PARAMS, KernelParams
from grimsim.cost.profile import DeviceProfile
from grimsim.errors import GrimsimError

__all__ = [
    "CACHE_STATES",
    "CPU_KERNELS",
    "GPU_KERNELS",
    "WINOGRAD_POLICIES",
    "AnalyticalCPUModel",
    "AnalyticalGPUModel",
    "CpuMachine",
    "analytical_model",
    "cpu_machine",
]


def analytical_model(profile: DeviceProfile, unit: str = "cpu", *,
                     cache_state: str = "warm", winograd: str = "engine",
                     params: KernelParams = DEFAULT_PARAMS
                     ) -> AnalyticalCPUModel | AnalyticalGPUModel:
    """The analytical model of ``profile`` for ``unit`` (``cpu`` or ``gpu``); the CPU model's
    options as in ``AnalyticalCPUModel``."""
    if unit == "cpu":
        return AnalyticalCPUModel(profile, cache_state=cache_state, winograd=winograd,
                                  params=params)
    if unit == "gpu":
        return AnalyticalGPUModel(profile, params=params)
    raise GrimsimError(f"unit {unit!r} must be 'cpu' or 'gpu'")
