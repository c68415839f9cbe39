"""Calibration on a device: sweep plans, timing with the C++ kernels, fitting the correction.

* ``calibrate(device_name, out_dir, budget_s=600, exclude_networks=(), threads=(1, 2),
  progress=True)`` -> ``CalibrationResult`` (``grimsim calibrate``): plan + measurement,
  appended to ``<out_dir>/points.jsonl``, resumable.
* ``grimsim.calibration.fit.fit(points_dir, out_profile=None)`` -> ``FitReport``
  (``grimsim fit``): the learned correction, a new profile version and the held-out report
  (not re-exported here: the name would clash with the ``fit`` module).
* ``run_ncnn_validation()``: device-level efficiency on ncnn's public benchmarks,
  leave-one-device-out; ``run_ncnn_gpu_validation()``: their Vulkan rows against the
  uncalibrated GPU model.

Names are imported on first use, so ``import grimsim.calibration`` stays light (measuring
needs numpy and the kernels only; fitting the baseline needs scikit-learn).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["CalibrationResult", "build_plan", "calibrate", "run_ncnn_gpu_validation",
           "run_ncnn_validation"]

_WHERE = {"CalibrationResult": "run", "calibrate": "run", "build_plan": "plan",
          "run_ncnn_validation": "ncnn_fit", "run_ncnn_gpu_validation": "ncnn_gpu"}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'grimsim.calibration' has no attribute {name!r}")
    return getattr(importlib.import_module(f"grimsim.calibration.{module}"), name)
