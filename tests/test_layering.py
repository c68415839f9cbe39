"""DESIGN.md's layering rules, checked on the imports of every module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "grimsim"

# package -> grimsim subpackages it may import (besides itself and the leaf modules
# grimsim.errors/meta/aligned/version)
ALLOWED: dict[str, set[str]] = {
    "network": set(),
    "pruning": {"network"},
    "cost": {"network", "pruning"},
    # calibration measures through execute's face of the kernels
    "calibration": {"cost", "network", "pruning", "execute", "_kernels"},
    "search": {"network", "pruning", "cost"},
    "execute": {"_kernels", "network", "pruning"},
    "explorer": {"api"},
}
ALWAYS = {"errors", "meta", "aligned", "__init__", "__version__"}
# search may use only the CostModel protocol (and value types) of grimsim.cost
SEARCH_COST_MODULES = {"grimsim.cost.protocol", "grimsim.cost.types"}


def _grimsim_imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("grimsim")]
        elif (isinstance(node, ast.ImportFrom) and node.module and node.level == 0
              and node.module.startswith("grimsim")):
            if node.module == "grimsim":
                found += [(f"grimsim.{a.name}", node.lineno) for a in node.names]
            else:
                found.append((node.module, node.lineno))
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for pkg in ALLOWED:
        for path in sorted((PKG / pkg).rglob("*.py")):
            out.append((pkg, path))
    return out


@pytest.mark.parametrize(("pkg", "path"), _modules(), ids=lambda v: str(v))
def test_module_respects_layering(pkg: str, path: Path) -> None:
    for module, line in _grimsim_imports(path):
        parts = module.split(".")
        if len(parts) < 2:
            continue
        target = parts[1]
        if target == pkg or target in ALWAYS:
            continue
        assert target in ALLOWED[pkg], (
            f"{path.relative_to(PKG.parent)}:{line} imports {module}: grimsim.{pkg} may import "
            f"only {sorted(ALLOWED[pkg] | ALWAYS)}")
        if pkg == "search" and target == "cost":
            assert module in SEARCH_COST_MODULES, (
                f"{path}:{line}: search may use only the CostModel protocol, not {module}")


def test_rules_cover_every_subpackage() -> None:
    subpackages = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert subpackages <= set(ALLOWED), f"no layering rule for {subpackages - set(ALLOWED)}"


def test_import_grimsim_stays_light() -> None:
    code = ("import sys, grimsim, grimsim.network, grimsim.pruning, grimsim.cli\n"
            "heavy = [m for m in ('onnx', 'sklearn', 'dash', 'plotly', 'scipy', "
            "'grimsim._kernels', 'onnxruntime') if m in sys.modules]\n"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "", f"heavy modules loaded at import: {out}"


def test_layering_checker_catches_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from grimsim.cost.analytical import x\nimport grimsim.search\n")
    assert _grimsim_imports(bad) == [("grimsim.cost.analytical", 1), ("grimsim.search", 2)]


def test_the_cost_query_api_is_reachable_from_the_package() -> None:
    import grimsim
    from grimsim import api

    for name in ("estimate", "cost_table"):
        assert getattr(grimsim, name) is getattr(api, name)
    with pytest.raises(AttributeError, match="no attribute 'estimat'"):
        grimsim.estimat  # noqa: B018
    est = grimsim.estimate("resnet18", "sd855", threads=4)
    assert est.latency_s > 0
