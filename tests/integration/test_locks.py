"""locks/ agree with pyproject.toml, and make install put exactly locks/dev.txt in this venv."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

LOCKS = ROOT / "locks"
FC_PYTHON = {"python_version": "3.10", "python_full_version": "3.10.13"}
"""The marker environment the function locks are compiled for; dev.txt is for any Python."""
PIN = re.compile(r"^([A-Za-z0-9._-]+)==(\S+)(?:\s*;\s*(.+?))?\s*\\?$")


def pins(lock: Path, environment: dict[str, str] | None = None) -> dict[str, str]:
    """The lock's pins for a marker environment (this interpreter's by default): name -> version."""
    found = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        if match := PIN.match(line):
            name, version, marker = match.groups()
            if not marker or Requirement(f"x; {marker}").marker.evaluate(environment):  # type: ignore[union-attr]
                found[canonicalize_name(name)] = version
    return found


def declared() -> dict:
    """pyproject.toml, parsed."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def check(root: Path) -> subprocess.CompletedProcess[str]:
    """tools/lock.py --check on the project at root."""
    command = [sys.executable, str(ROOT / "tools/lock.py"), "--check", "--root", str(root)]
    return subprocess.run(command, capture_output=True, text=True)


@pytest.fixture
def project_copy(tmp_path) -> Path:
    """pyproject.toml and locks/, copied where a test may change them."""
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(LOCKS, tmp_path / "locks")
    return tmp_path


def test_the_locks_were_compiled_from_this_pyproject():
    assert check(ROOT).returncode == 0, check(ROOT).stderr


def test_a_changed_dependency_fails_the_lock_check(project_copy):
    pyproject = project_copy / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    pyproject.write_text(text.replace('"segno>=1.6",', '"segno>=1.7",', 1), encoding="utf-8")
    result = check(project_copy)
    assert result.returncode == 1
    assert "changed since locks/dev.txt, locks/functions.txt, locks/frontend.txt" in result.stderr
    assert "run `make lock`" in result.stderr


def test_a_comment_in_pyproject_leaves_the_locks_valid(project_copy):
    pyproject = project_copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text(encoding="utf-8") + "# a note\n", encoding="utf-8")
    assert check(project_copy).returncode == 0


def test_this_venv_holds_exactly_the_dev_lock():
    """`pip freeze` of the venv the tests run in equals locks/dev.txt for this Python."""
    command = [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"]
    frozen = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    installed = {
        canonicalize_name(name): version
        for name, version in (line.split("==") for line in frozen.splitlines() if "==" in line)
    }
    installed.pop("pip")  # the installer that came with the venv, not a dependency
    assert installed == pins(LOCKS / "dev.txt"), "run `make install` to install locks/dev.txt"


@pytest.mark.parametrize("lock", ["functions.txt", "frontend.txt"])
def test_each_function_runs_the_versions_the_tests_run(lock):
    dev = pins(LOCKS / "dev.txt", FC_PYTHON)
    assert {name: dev.get(name) for name in pins(LOCKS / lock)} == pins(LOCKS / lock)


def test_the_frontend_group_repeats_its_lines_in_dependencies():
    data = declared()
    assert set(data["dependency-groups"]["frontend"]) <= set(data["project"]["dependencies"])


def requirements_of(lock: str) -> list[str]:
    """The requirement lines in pyproject.toml that a lock was compiled from."""
    project, groups = declared()["project"], declared()["dependency-groups"]
    return {
        "dev.txt": project["dependencies"] + project["optional-dependencies"]["dev"],
        "functions.txt": project["dependencies"],
        "frontend.txt": groups["frontend"],
    }[lock]


@pytest.mark.parametrize("lock", ["dev.txt", "functions.txt", "frontend.txt"])
def test_every_declared_requirement_is_pinned_within_its_range(lock):
    pinned = pins(LOCKS / lock)
    environment = None if lock == "dev.txt" else FC_PYTHON
    for line in requirements_of(lock):
        requirement = Requirement(line)
        if not requirement.marker or requirement.marker.evaluate(environment):
            version = pinned.get(canonicalize_name(requirement.name), "nothing")
            assert requirement.specifier.contains(version, prereleases=True), (line, version)
