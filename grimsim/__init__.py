"""grimsim: a cost-model design-space explorer for BCR and other pruning schemes on mobile devices.

``import grimsim`` stays light: the heavy parts (onnx, scikit-learn, dash, the compiled
kernels) load only when a function that needs them is called.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "cost_table", "estimate", "load_device", "load_network"]

#: The cost-query API, importable from the package (``grimsim.estimate(...)``); it lives in
#: grimsim.api and loads on first use. (grimsim.api.search and .run stay there: the name
#: ``search`` is the grimsim.search subpackage.)
_API = frozenset({"estimate", "cost_table"})


def __getattr__(name: str) -> Any:
    if name in _API:
        from grimsim import api

        return getattr(api, name)
    raise AttributeError(f"module 'grimsim' has no attribute {name!r}")


def load_network(model: str, **kwargs: Any) -> Any:
    """Load a zoo network by name or a model file (.onnx, ncnn .param); see grimsim.api."""
    from grimsim import api

    return api.load_network(model, **kwargs)


def load_device(name_or_path: str = "host") -> Any:
    """Load a device profile (built-in name, ``name@version``, YAML path or ``host``)."""
    from grimsim import api

    return api.load_device(name_or_path)
