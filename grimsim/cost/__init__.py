"""Cost models: device profiles (this package's data layer) and, built on them, the models.

Importing ``grimsim.cost`` is light (PyYAML only); the analytical and learned models load
their own dependencies when used.
"""

from __future__ import annotations

from grimsim.cost.host import HostFacts, build_host_profile, detect_host_facts
from grimsim.cost.microarch import CoreType, Source, core_type, core_types
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

__all__ = [
    "Calibration",
    "CoreType",
    "CpuCluster",
    "DeviceProfile",
    "Dram",
    "Gpu",
    "HostFacts",
    "Source",
    "build_host_profile",
    "core_type",
    "core_types",
    "detect_host_facts",
    "dump_profile",
    "list_profiles",
    "load_profile",
    "next_version",
    "profile_template",
    "save_profile",
    "user_data_dir",
    "user_profiles_dir",
]
