"""The services meet over gRPC only: no service package imports another (functions included);
only the composition root (csv_analyst_app) imports more than one. The sandboxed runner imports
none of them (it runs with only its own code and the generated messages)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("analyst_service", "runner_service", "gradio_ui")


def imported_packages(package: str) -> dict[str, set[str]]:
    """Top-level packages each module of `package` imports."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


@pytest.mark.parametrize("package", SERVICES)
def test_a_service_imports_no_other_service(package: str) -> None:
    others = set(SERVICES) - {package} | {"csv_analyst_app"}
    offenders = {module: sorted(names & others) for module, names in imported_packages(package).items()
                 if names & others}
    assert offenders == {}


def test_the_sandboxed_runner_imports_no_service() -> None:
    offenders = {module: sorted(names & {*SERVICES, "csv_analyst_app"})
                 for module, names in imported_packages("runner").items() if names & {*SERVICES, "csv_analyst_app"}}
    assert offenders == {}


def test_the_composition_root_wires_the_services() -> None:
    used = set().union(*imported_packages("csv_analyst_app").values())
    assert {"analyst_service", "runner_service", "gradio_ui"} <= used
