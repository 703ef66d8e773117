"""`make test` sets the machine up first, through tools/install-system.sh, as CI does.

On a machine where something is missing and cannot be installed (not root, no apt-get), the
script stops at once with the command to run. These tests never install anything: what is
"missing" is a stand-in for dpkg-query or the MariaDB client on PATH that knows nothing.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

SCRIPT = ROOT / "tools" / "install-system.sh"
COMMAND = "sudo bash tools/install-system.sh"
KNOWS_NOTHING = "#!/bin/sh\nexit 1\n"


@pytest.fixture
def stand_ins() -> Iterator[Path]:
    """A folder for commands put first on PATH, readable by another user too."""
    with tempfile.TemporaryDirectory() as folder:
        Path(folder).chmod(0o755)
        yield Path(folder)


def stand_in(folder: Path, name: str, script: str = KNOWS_NOTHING) -> None:
    path = folder / name
    path.write_text(script)
    path.chmod(0o755)


def run_script(path: str, *args: str, as_root: bool) -> subprocess.CompletedProcess[str]:
    """The script run as CI runs it (no standard input), as root or as another user."""
    command = [shutil.which("bash") or "/bin/bash", str(SCRIPT), *args]
    if not as_root and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("setpriv is not installed: cannot run as another user")
        command = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", *command]
    if as_root and os.geteuid() != 0:
        pytest.skip("needs root")
    return subprocess.run(
        command,
        env={**os.environ, "PATH": path},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
    )


def planned(target: str) -> list[str]:
    """The commands `make TARGET` would run, as a developer types it (also under `make test`)."""
    alone = {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}
    dry = ["make", "--dry-run", target]
    return subprocess.run(
        dry, cwd=ROOT, env=alone, capture_output=True, text=True, check=True
    ).stdout.splitlines()


def test_make_test_sets_the_machine_up_before_it_builds_or_tests_anything():
    steps = planned("test")
    assert steps[0] == "bash tools/install-system.sh"
    assert any("pytest" in line for line in steps[1:])


def test_make_run_sets_the_machine_up_for_the_page_before_it_builds_anything():
    steps = planned("run")
    assert steps[0] == "bash tools/install-system.sh run"
    assert steps[-1].endswith("dingpass dev --host 127.0.0.1")


def test_for_make_run_neither_the_browser_nor_mariadb_is_needed(stand_ins):
    stand_in(stand_ins, "dpkg-query")  # no chromium, no font
    stand_in(stand_ins, "mariadb")  # no server
    done = run_script(f"{stand_ins}:{os.environ['PATH']}", "run", as_root=False)
    assert (done.returncode, done.stderr) == (0, "")


def test_for_make_run_a_missing_npm_stops_it_with_the_command_to_run(stand_ins):
    for tool in ("dirname", "grep", "tr", "dpkg-query", "mariadb", "apt-get"):  # and no npm
        (stand_ins / tool).symlink_to(shutil.which(tool) or tool)
    done = run_script(str(stand_ins), "run", as_root=False)
    assert done.returncode == 1
    assert "`make run` needs nodejs npm" in done.stderr
    assert done.stderr.rstrip().endswith(f"{COMMAND} run")


def test_ci_runs_the_suite_through_make_test():
    steps = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert steps == ["make test"]


def test_on_a_machine_that_has_everything_it_does_nothing_and_says_nothing():
    done = run_script(os.environ["PATH"], as_root=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_without_root_a_missing_package_stops_it_with_the_command_to_run(stand_ins):
    stand_in(stand_ins, "dpkg-query")  # a fresh machine: no chromium, no font
    done = run_script(f"{stand_ins}:{os.environ['PATH']}", as_root=False)
    assert done.returncode == 1
    assert "the tests need chromium fonts-wqy-microhei" in done.stderr
    assert done.stderr.rstrip().endswith(COMMAND)
    assert "installing" not in done.stderr


def test_without_apt_get_a_missing_package_stops_it_with_what_to_install(stand_ins):
    stand_in(stand_ins, "dpkg-query")
    for tool in ("dirname", "grep", "tr"):  # what the script uses, and no apt-get
        (stand_ins / tool).symlink_to(shutil.which(tool) or tool)
    done = run_script(str(stand_ins), as_root=True)
    assert done.returncode == 1
    assert "has no apt-get: install them with its package manager" in done.stderr


def test_without_root_mariadb_down_stops_it_with_the_command_to_run(stand_ins):
    stand_in(stand_ins, "mariadb")  # the client finds no server
    done = run_script(f"{stand_ins}:{os.environ['PATH']}", as_root=False)
    assert done.returncode == 1
    assert "MariaDB at 127.0.0.1:3306 does not answer" in done.stderr
    assert done.stderr.rstrip().endswith(COMMAND)
