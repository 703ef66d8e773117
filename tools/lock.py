"""Compile locks/ from pyproject.toml with uv, and check that they still agree with it.

    python tools/lock.py                          # after pyproject.toml's dependencies change
    python tools/lock.py --upgrade-package flask  # a newer flask and what it needs; nothing else
    python tools/lock.py --upgrade                # the newest of everything
    python tools/lock.py --check                  # exit 1 if pyproject.toml changed since

Three locks, each with every file's sha256 (pip's --require-hashes):

* ``dev.txt``: everything, for development and the tests (``make install``), on any Python from
  3.10 and any platform. One version of each package for all of them (``--fork-strategy fewest``),
  so the suite on 3.11 runs the versions that Function Compute's 3.10 runs.
* ``functions.txt``: ``[project] dependencies``, for backend, approval and runner, on Function
  Compute's runtime layer: CPython 3.10 on Debian 10 (glibc 2.28), x86_64.
* ``frontend.txt``: the ``frontend`` dependency group, for the frontend, on the same platform.

The last two are constrained by the first, so each function runs the versions the tests ran.
Each lock records a digest of the dependency declarations it was compiled from; ``--check``
compares it with pyproject.toml's (as poetry.lock's content-hash does).
"""

import argparse
import hashlib
import json
import shutil
import subprocess  # noqa: S404  # runs uv, the compiler
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - tomllib before 3.11
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = "x86_64-manylinux_2_28"  # Debian 10's glibc 2.28: FC's custom.debian10
PYTHON = "3.10"  # FC's runtime layer; also the lowest the project supports
DIGEST_PREFIX = "# pyproject.toml dependencies sha256: "
COMMAND = "make lock"

# Each lock: its uv arguments, in order (each later one is constrained by dev.txt).
LOCKS = {
    "dev.txt": ["pyproject.toml", "--extra", "dev", "--universal", "--fork-strategy", "fewest"],
    "functions.txt": ["pyproject.toml", "--python-platform", PLATFORM, "-c", "locks/dev.txt"],
    "frontend.txt": [
        "--group", "pyproject.toml:frontend", "--python-platform", PLATFORM, "-c", "locks/dev.txt",
    ],
}  # fmt: skip


class LockDrift(Exception):
    """pyproject.toml's dependencies changed after the locks were compiled."""


def declared_digest(pyproject: Path) -> str:
    """The sha256 of pyproject.toml's dependency declarations, blind to comments and layout."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data.get("project", {})
    declared = {
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "dependency-groups": data.get("dependency-groups", {}),
    }
    return hashlib.sha256(json.dumps(declared, sort_keys=True).encode()).hexdigest()


def recorded_digest(lock: Path) -> str | None:
    """The digest a lock was compiled from, or None when it carries none."""
    for line in lock.read_text(encoding="utf-8").splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line.removeprefix(DIGEST_PREFIX).strip()
    return None


def check(root: Path) -> None:
    """Raise LockDrift naming each lock that pyproject.toml no longer matches."""
    expected = declared_digest(root / "pyproject.toml")
    stale = [
        name
        for name in LOCKS
        if not (root / "locks" / name).is_file()
        or recorded_digest(root / "locks" / name) != expected
    ]
    if stale:
        raise LockDrift(
            f"pyproject.toml's dependencies changed since locks/{', locks/'.join(stale)} "
            f"were compiled: run `{COMMAND}` and commit locks/ with pyproject.toml"
        )


def uv() -> str:
    """The uv that compiles: the one installed beside this Python (make install puts it there)."""
    found = Path(sys.executable).with_name("uv")
    return str(found) if found.exists() else shutil.which("uv") or "uv"


def compile_lock(root: Path, name: str, upgrade: list[str]) -> None:
    """Compile one lock with uv, keeping its current pins except those to upgrade, then stamp it."""
    lock = root / "locks" / name
    command = [uv(), "pip", "compile", *LOCKS[name], "--python-version", PYTHON]
    command += ["--generate-hashes", "--quiet", "--custom-compile-command", COMMAND]
    command += ["--output-file", f"locks/{name}", *upgrade]
    subprocess.run(command, cwd=root, check=True)  # noqa: S603  # our own arguments
    stamp(lock, declared_digest(root / "pyproject.toml"))


def stamp(lock: Path, digest: str) -> None:
    """Write the digest under uv's header, replacing any earlier one."""
    text = lock.read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith(DIGEST_PREFIX)]
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    lines.insert(header, DIGEST_PREFIX + digest)
    lock.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Compile the locks (passing --upgrade/--upgrade-package on to uv), or --check them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check for drift")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--upgrade", action="store_true", help="take the newest of everything")
    parser.add_argument("--upgrade-package", action="append", default=[], metavar="NAME")
    args = parser.parse_args(argv)
    if args.check:
        try:
            check(args.root)
        except LockDrift as drift:
            print(f"error: {drift}", file=sys.stderr)
            return 1
        return 0
    upgrade = ["--upgrade"] if args.upgrade else []
    upgrade += [f"--upgrade-package={name}" for name in args.upgrade_package]
    (args.root / "locks").mkdir(exist_ok=True)
    for name in LOCKS:
        compile_lock(args.root, name, upgrade)
    return 0


if __name__ == "__main__":
    sys.exit(main())
