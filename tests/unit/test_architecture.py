"""The dependency direction of DESIGN.md, and one set of variables for the deployment."""

import ast
import dataclasses
from pathlib import Path

import pytest

from backend.config import Config
from frontend.config import ENVIRONMENT_VARIABLES
from tests.conftest import ROOT

PROJECT = {"frontend", "backend", "approval", "runner", "cli", "license", "sandbox"}
LAYERS = {
    "license": set(),  # pure: the products copy its verifier
    "backend": {"license"},  # the backend function and the core every function shares
    "approval": {"backend", "license"},  # functions stand on the core
    "runner": {"backend", "license"},
    "frontend": set(),  # a thin proxy that must start fast
    "sandbox": set(),  # tests the project, so it must not mirror it
}
"""What each package may import; `cli`, the composition root, may import anything."""


def imports_of(path: Path) -> set[str]:
    """The absolute module names that one source file imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def imported_packages(package: str) -> set[str]:
    """The project packages that any module of ``package`` imports."""
    names = {name for path in (ROOT / package).rglob("*.py") for name in imports_of(path)}
    return {name.split(".")[0] for name in names} & PROJECT - {package}


@pytest.mark.parametrize(("package", "allowed"), sorted(LAYERS.items()))
def test_packages_import_only_the_layers_below_them(package, allowed):
    assert imported_packages(package) <= allowed


def test_every_package_has_its_layer():
    assert {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"} == PROJECT


def test_the_core_never_imports_the_backend_functions_app():
    """backend.app and the entry modules sit above the core; only their entry points build them."""
    tops = {"backend.app", "backend.wsgi", "approval.wsgi", "frontend.wsgi", "runner.wsgi"}
    users = sorted(
        str(path.relative_to(ROOT))
        for package in LAYERS
        for path in (ROOT / package).rglob("*.py")
        if imports_of(path) & tops
    )
    assert users == ["backend/wsgi.py"]


def test_the_frontend_reads_the_backends_variable_names():
    declared = {field.metadata["env"] for field in dataclasses.fields(Config)}
    assert set(ENVIRONMENT_VARIABLES) <= declared


def test_only_entry_points_read_the_environment():
    readers = sorted(
        str(path.relative_to(ROOT))
        for package in PROJECT & {p.name for p in ROOT.iterdir()}
        for path in (ROOT / package).rglob("*.py")
        if "os.environ" in path.read_text(encoding="utf-8")
    )
    assert readers == [
        "approval/wsgi.py",
        "backend/wsgi.py",
        "cli/main.py",
        "frontend/wsgi.py",
        "runner/wsgi.py",
    ]


def test_no_module_uses_pickle():
    sources = [p for pkg in sorted(PROJECT) for p in Path(ROOT, pkg).rglob("*.py")]
    assert not [p for p in sources if "import pickle" in p.read_text(encoding="utf-8")]
