"""Every third-party distribution that a module of hwnas imports is declared in pyproject.toml.

A development machine keeps what was installed by hand, so an undeclared import passes there and
fails on a user's fresh install (pandas did). This reads every import of the package with ``ast``
and maps it to its installed distribution, as ../shared/tools/check_deps.py does.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return {_normal(re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0]) for r in reqs}


def _imports(package: Path) -> dict[str, str]:
    """First place each top-level module is imported: ``{module: "path:line"}``."""
    found: dict[str, str] = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], f"{path.relative_to(package.parent)}:{node.lineno}")
    return found


def test_every_third_party_import_is_declared():
    declared, providers = _declared(), md.packages_distributions()
    undeclared = []
    for module, where in sorted(_imports(REPO / "hwnas").items()):
        if module in sys.stdlib_module_names or module in ("hwnas", "__future__"):
            continue
        dists = {_normal(d) for d in providers.get(module, [])}
        if not dists and _normal(module) in declared:
            continue  # an optional extra's package (e.g. litert_torch of hwnas[litert]) not installed here
        if not dists & declared:
            undeclared.append(f"{where}: {module} ({', '.join(sorted(dists)) or 'not installed'})")
    assert not undeclared, "undeclared in pyproject.toml: " + "; ".join(undeclared)


def test_the_check_catches_an_undeclared_import(tmp_path):
    """The scan sees imports inside functions too (hwnas imports wandb and Lightning lazily)."""
    (tmp_path / "mod.py").write_text("def f():\n    import pandas.io\n    from yaml import safe_load\n")
    assert set(_imports(tmp_path)) == {"pandas", "yaml"}

