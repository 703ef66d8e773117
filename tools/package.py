"""Build each function's code package for Function Compute, into build/<function>/.

    python tools/package.py [--compile-with python3.10] [FUNCTION ...]

Each package is what FC's custom runtime runs as /code: ``bootstrap``, ``catalogue.toml``, the
code packages that function imports, and its locked dependencies in ``python/`` (on PYTHONPATH),
installed for FC's runtime layer (CPython 3.10, glibc 2.28, x86_64) whatever this machine is.
The frontend's comes from locks/frontend.txt, so it carries no DingTalk or Alibaba Cloud SDK:
its cold start and code size are what customers wait for. Prints each package's size.
"""

import argparse
import ast
import io
import shutil
import subprocess  # noqa: S404  # runs pip and the target Python's compileall
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags, parse_tag

ROOT = Path(__file__).resolve().parent.parent
PYTHON_VERSION = (3, 10)
# glibc 2.28 (Debian 10, FC's custom.debian10) runs every manylinux wheel up to manylinux_2_28.
PLATFORMS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
COMMON = ("bootstrap", "catalogue.toml")
OWN = ("change-forms.toml", "robots.toml", "database-ca.pem")
"""A deployment's own files, copied when it has them (CHANGE_FORMS_FILE=change-forms.toml, ...;
DATABASE_URL's ?ssl_ca=/code/database-ca.pem)."""
# alibabacloud_dingtalk ships all of DingTalk's APIs (126 of them, 41 MB); each package keeps the
# ones its code imports (`import alibabacloud_dingtalk.<api>...`), nothing else.
SLIM = ("alibabacloud_dingtalk",)


class PackageError(Exception):
    """A code package cannot be built as asked."""


@dataclass(frozen=True)
class Function:
    """One function's package: the lock its dependencies come from, and the code it imports."""

    lock: str
    code: tuple[str, ...]


# The frontend imports only frontend/ (tests/unit/test_architecture.py), and bootstrap runs
# gunicorn with backend/gunicorn_conf.py, which imports backend/request_log.py and
# backend/answer_socket.py.
FRONTEND_RUNTIME = (
    "backend/__init__.py",
    "backend/gunicorn_conf.py",
    "backend/request_log.py",
    "backend/answer_socket.py",
)
FUNCTIONS = {
    "frontend": Function("frontend.txt", ("frontend", *FRONTEND_RUNTIME)),
    "backend": Function("functions.txt", ("backend", "license")),
    "approval": Function("functions.txt", ("backend", "license", "approval")),
    "runner": Function("functions.txt", ("backend", "license", "runner")),
}


def install_dependencies(lock: Path, target: Path) -> None:
    """Install exactly the lock's files, checked against its hashes, for FC's Python into target."""
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    command += ["--target", str(target), "--require-hashes", "--no-deps", "--no-compile"]
    # The few pure-Python packages published only as source (alibabacloud-endpoint-util, ...)
    # are built with this environment's locked setuptools; tags_problems() refuses anything
    # built that is not pure Python.
    command += ["--prefer-binary", "--no-build-isolation", "--use-pep517", "--implementation", "cp"]
    command += ["--python-version", ".".join(map(str, PYTHON_VERSION))]
    command += [f"--platform={platform}" for platform in PLATFORMS]
    subprocess.run([*command, "-r", str(lock)], check=True)  # noqa: S603  # our own arguments


def tags_problems(site: Path) -> list[str]:
    """The installed distributions whose wheel FC's Python could not have installed."""
    supported = set(cpython_tags(PYTHON_VERSION, platforms=PLATFORMS))
    supported |= set(compatible_tags(PYTHON_VERSION, "cp310", PLATFORMS))
    problems = []
    for wheel in sorted(site.glob("*.dist-info/WHEEL")):
        tags: set[Tag] = set()
        for line in wheel.read_text(encoding="utf-8").splitlines():
            if line.startswith("Tag: "):
                tags |= parse_tag(line.removeprefix("Tag: "))
        if not tags & supported:
            problems.append(f"{wheel.parent.name} ({', '.join(sorted(map(str, tags)))})")
    return problems


def imported_submodules(code: list[Path], package: str) -> set[str]:
    """The first-level submodules of ``package`` that the modules in ``code`` import."""
    found = set()
    for path in code:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            found |= {n.split(".")[1] for n in names if n.startswith(f"{package}.")}
    return found


def slim(site: Path, code: list[Path]) -> None:
    """Remove the submodules of each SLIM distribution that the package's code never imports."""
    for package in SLIM:
        keep = imported_submodules(code, package) | {"__init__.py", "__pycache__"}
        for entry in (site / package).iterdir() if (site / package).is_dir() else []:
            if entry.name.removesuffix(".py") not in keep and entry.name not in keep:
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def sources(path: Path) -> list[Path]:
    """The Python modules at path: itself, or every module under it."""
    return sorted(path.rglob("*.py")) if path.is_dir() else [path] * (path.suffix == ".py")


def copy_code(root: Path, function: Function, out: Path) -> None:
    """Copy bootstrap, the catalogue and the function's code packages, without bytecode."""
    if function is FUNCTIONS["frontend"] and not (root / "frontend/static/index.html").is_file():
        raise PackageError("frontend/static/index.html is missing: run `make page` first")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    own = tuple(name for name in OWN if (root / name).is_file())
    for name in (*COMMON, *own, *function.code):
        source, target = root / name, out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)


def build(root: Path, name: str, out: Path, site: Path) -> Path:
    """Assemble one function's package at out/name from its code and its installed dependencies."""
    package = out / name
    shutil.rmtree(package, ignore_errors=True)
    copy_code(root, FUNCTIONS[name], package)
    shutil.copytree(site, package / "python", symlinks=True)
    code = [path for part in FUNCTIONS[name].code for path in sources(package / part)]
    slim(package / "python", code)
    return package


def precompile(package: Path, python: str) -> None:
    """Write bytecode with FC's Python: /code is read-only, so a cold start cannot cache its own.

    unchecked-hash: the upload does not keep source mtimes exactly, and these files never change.
    """
    command = [python, "-m", "compileall", "-q", "-j0", "--invalidation-mode", "unchecked-hash"]
    subprocess.run([*command, str(package)], check=True, stdout=subprocess.DEVNULL)  # noqa: S603


def size_line(name: str, package: Path) -> str:
    """One line of the size report: files, bytes on disk, and bytes zipped as FC receives them."""
    files = [p for p in package.rglob("*") if p.is_file()]
    unpacked = sum(p.stat().st_size for p in files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, path.relative_to(package))
    mib, zipped = 1024 * 1024, buffer.getbuffer().nbytes / 1024 / 1024
    return f"{name:<9} {len(files):>5} files {unpacked / mib:6.1f} MiB, {zipped:5.1f} MiB zipped"


def main(argv: list[str] | None = None) -> int:
    """Build the packages asked for (all by default) and print their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("functions", nargs="*", metavar="FUNCTION", help=", ".join(FUNCTIONS))
    parser.add_argument("--out", type=Path, default=ROOT / "build")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--compile-with", metavar="PYTHON3.10", help="write .pyc files with it")
    args = parser.parse_args(argv)
    names = args.functions or list(FUNCTIONS)
    args.out.mkdir(parents=True, exist_ok=True)
    # Each run installs in a folder of its own: s deploy may run two functions' pre-deploy at once.
    with tempfile.TemporaryDirectory(dir=args.out, prefix=".python-") as staging:
        return build_all(args, names, Path(staging))


def build_all(args: argparse.Namespace, names: list[str], staging: Path) -> int:
    """Install each lock the functions need once, then assemble and measure each package."""
    sites: dict[str, Path] = {}
    try:
        if unknown := sorted(set(names) - set(FUNCTIONS)):
            raise PackageError(f"no function {unknown}: choose from {', '.join(FUNCTIONS)}")
        for lock in sorted({FUNCTIONS[name].lock for name in names}):
            sites[lock] = staging / lock.removesuffix(".txt")
            install_dependencies(args.root / "locks" / lock, sites[lock])
            if problems := tags_problems(sites[lock]):
                raise PackageError(f"not for CPython 3.10 on manylinux x86_64: {problems}")
        for name in names:
            package = build(args.root, name, args.out, sites[FUNCTIONS[name].lock])
            if args.compile_with:
                precompile(package, args.compile_with)
            print(size_line(name, package))
    except PackageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
