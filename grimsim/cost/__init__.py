"""Cost models: device profiles (this package's data layer) and, built on them, the models.

Importing ``grimsim.cost`` is light (PyYAML only); the analytical and learned models load
their own dependencies when used.
"""

from __future__ import annotations

from grimsim.cost.analytical import (
    CACHE_STATES,
    CPU_KERNELS,
    GPU_KERNELS,
    WINOGRAD_POLICIES,
    AnalyticalCPUModel,
    AnalyticalGPUModel,
    analytical_model,
)
from grimsim.cost.host import HostFacts, build_host_profile, detect_host_facts
from grimsim.cost.kernel_params import DEFAULT_PARAMS, KernelParams
from grimsim.cost.microarch import CoreType, Source, core_type, core_types
from grimsim.cost.network import (
    CostTable,
    LayerEstimate,
    NetworkEstimate,
    cost_table,
    estimate_network,
)
from grimsim.cost.profile import (
    Calibration,
    CpuCluster,
    DeviceProfile,
    Dram,
    Gpu,
    dump_profile,
    list_profiles,
    load_profile,
    next_version,
    profile_template,
    save_profile,
    user_data_dir,
    user_profiles_dir,
)
from grimsim.cost.protocol import BOUNDS, CostEstimate, CostModel, EstimateBatch
from grimsim.cost.rows import CostRows, Skipped, gemm_rows, rows_for

__all__ = [
    "BOUNDS",
    "CACHE_STATES",
    "CPU_KERNELS",
    "DEFAULT_PARAMS",
    "GPU_KERNELS",
    "WINOGRAD_POLICIES",
    "AnalyticalCPUModel",
    "AnalyticalGPUModel",
    "Calibration",
    "CoreType",
    "CostEstimate",
    "CostModel",
    "CostRows",
    "CostTable",
    "CpuCluster",
    "DeviceProfile",
    "Dram",
    "EstimateBatch",
    "Gpu",
    "HostFacts",
    "KernelParams",
    "LayerEstimate",
    "NetworkEstimate",
    "Skipped",
    "Source",
    "analytical_model",
    "build_host_profile",
    "core_type",
    "core_types",
    "cost_table",
    "detect_host_facts",
    "dump_profile",
    "estimate_network",
    "gemm_rows",
    "list_profiles",
    "load_profile",
    "next_version",
    "profile_template",
    "rows_for",
    "save_profile",
    "user_data_dir",
    "user_profiles_dir",
]
