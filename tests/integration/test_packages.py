"""Each function's code package (tools/package.py) carries what it imports, for FC's Python 3.10.

The packages are built once for this module, with pip from PyPI through pip's cache (as make
install uses it); each runs under a bare Python 3.10, with nothing on its path but the package.
"""

import ast
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import ROOT, free_port
from tests.integration.test_locks import FC_PYTHON, pins

FUNCTIONS = ["frontend", "backend", "approval", "runner"]
LOCK = {"frontend": "frontend.txt", "backend": "functions.txt", "approval": "functions.txt"}
PROJECT = {"frontend", "backend", "approval", "runner", "license", "cli", "sandbox"}
NOT_IMPORTED = {
    "tomllib",  # tomli stands in before 3.11
    "_typeshed",  # for mypy only, under TYPE_CHECKING
    "backend.storage.migrations.env",  # alembic runs it
}


def python310() -> str | None:
    """A Python 3.10: this one, the Makefile's PYTHON_FC, or python3.10 on PATH."""
    if sys.version_info[:2] == (3, 10):
        return sys.executable
    for candidate in (os.environ.get("PYTHON_FC"), shutil.which("python3.10")):
        probe = [candidate or "", "-c", "import sys; assert sys.version_info[:2] == (3, 10)"]
        if candidate and subprocess.run(probe, capture_output=True).returncode == 0:
            return candidate
    return None


@pytest.fixture(scope="module")
def fc_python(tmp_path_factory) -> Path:
    """The bin folder of a venv of Python 3.10 without pip or any package: FC's runtime layer."""
    python = python310() or pytest.skip("no Python 3.10 here (make test passes PYTHON_FC)")
    venv = tmp_path_factory.mktemp("fc-python")
    subprocess.run([python, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True)
    return venv / "bin"


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> Path:
    """build/ with the four packages, as `make package` makes it."""
    out = tmp_path_factory.mktemp("build")
    command = [sys.executable, "tools/package.py", "--out", str(out)]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return out


def distributions(package: Path) -> dict[str, str]:
    """The distributions installed in a package's python/: name -> version."""
    names = (
        path.name.removesuffix(".dist-info") for path in (package / "python").glob("*.dist-info")
    )
    return {canonicalize_name(n.rsplit("-", 1)[0]): n.rsplit("-", 1)[1] for n in names}


def modules_of(package: Path) -> set[str]:
    """Every module of the package's code, and every module its code imports, from its source."""
    found = set()
    for path in package.rglob("*.py"):
        relative = path.relative_to(package)
        if relative.parts[0] == "python":
            continue
        found.add(".".join(relative.with_suffix("").parts).removesuffix(".__init__"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return found - NOT_IMPORTED


def run_fc(fc_python: Path, package: Path, *command: str, **popen) -> subprocess.Popen:
    """Start a command in the package as FC does: its Python first on PATH, PYTHONPATH as s.yaml."""
    env = {
        "PATH": f"{fc_python}:/usr/bin:/bin",
        "PYTHONPATH": f"{package}/python:{package}",
        "DATABASE_URL": f"sqlite:///{package}/dingpass.db",
        "PROXY_SECRET": "a-test-secret-of-32-characters-or-more",
        "DINGTALK_APP_KEY": "ding-test",
        "DINGTALK_CALLBACK_TOKEN": "dingpass2026tok",
        "DINGTALK_CALLBACK_AES_KEY": "dP7s3kQ9vX2mL8nR4tY6wZ1aB5cD0eF3gH7jK9pQ2rS",
        **popen.pop("env", {}),
    }
    return subprocess.Popen(command, cwd=package, env=env, **popen)


def test_the_frontend_carries_no_dingtalk_or_alibaba_cloud_sdk(packages):
    names = distributions(packages / "frontend")
    assert "flask" in names
    assert not [name for name in names if name.startswith(("alibabacloud", "dingtalk"))]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_each_package_holds_exactly_its_lock(packages, function):
    lock = ROOT / "locks" / LOCK.get(function, "functions.txt")
    assert distributions(packages / function) == pins(lock, FC_PYTHON)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_everything_a_package_imports_imports_under_fc_python(packages, fc_python, function):
    package = packages / function
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    try: importlib.import_module(name)\n"
        "    except Exception as error: failed.append(f'{name}: {error!r}')\n"
        "print('\\n'.join(failed)); sys.exit(bool(failed))\n"
    )
    modules = sorted(modules_of(package))
    process = run_fc(fc_python, package, "python3", "-c", script, *modules, stdout=subprocess.PIPE)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0, out.decode()


def test_the_frontend_package_serves_through_bootstrap_under_fc_python(packages, fc_python):
    port = free_port()
    bind = {"DINGPASS_BIND": f"127.0.0.1:{port}"}
    server = run_fc(
        fc_python, packages / "frontend", "./bootstrap", "frontend", env=bind,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # gunicorn has bound the socket: connections wait in its backlog for a worker.
        assert any("Listening at:" in line for line in server.stderr), "gunicorn did not start"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=20) as response:  # noqa: S310
            assert response.status == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stderr.close()
