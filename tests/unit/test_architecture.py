"""The dependency direction of DESIGN.md, and one set of variables for the deployment."""

import ast
import dataclasses
from pathlib import Path

import pytest

from backend.config import Config
from frontend.config import ENVIRONMENT_VARIABLES
from tests.conftest import ROOT

PROJECT = {"frontend", "backend", "approval", "license", "sandbox"}


def imported_packages(package: str) -> set[str]:
    """The project packages that any module of ``package`` imports."""
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
    return (found & PROJECT) - {package}


@pytest.mark.parametrize(("package", "allowed"), [("frontend", set()), ("license", set())])
def test_packages_import_only_what_the_design_allows(package, allowed):
    assert imported_packages(package) <= allowed


def test_the_backend_imports_the_frontend_only_to_run_it_locally():
    users = [
        path.name
        for path in (ROOT / "backend").rglob("*.py")
        if "from frontend" in path.read_text()
    ]
    assert users == ["dev.py"]


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
        "backend/cli.py",
        "backend/runner_wsgi.py",
        "backend/wsgi.py",
        "frontend/wsgi.py",
    ]


def test_no_module_uses_pickle():
    sources = [
        p for pkg in ("backend", "frontend", "license") for p in Path(ROOT, pkg).rglob("*.py")
    ]
    assert not [p for p in sources if "import pickle" in p.read_text(encoding="utf-8")]
