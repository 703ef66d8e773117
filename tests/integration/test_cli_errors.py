"""The installed command answers a mistake with one clear line and a non-zero exit, no traceback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CATALOGUE, free_port

SCRIPT = Path(sys.executable).with_name("dingpass")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["runner", "--once"], {}, "dingpass: CATALOGUE_FILE: cannot read catalogue.toml"),
        (
            ["jobs", "list"],
            {"DATABASE_URL": "mysql+pymysql://root@127.0.0.1:9/x"},
            "dingpass: the database cannot be reached",
        ),
        (
            [
                "license",
                "issue",
                "--product",
                "p",
                "--company",
                "c",
                "--contact",
                "c",
                "--email",
                "e@x.io",
                "--feature-code",
                "f",
                "--days",
                "1",
            ],
            {"DINGPASS_ENV": "production"},
            "LICENSE_SIGNING_KEY is not set",
        ),
    ],
)
def test_a_mistake_is_one_clear_line(tmp_path, args, env, message):
    done = subprocess.run(
        [SCRIPT, *args],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert message in done.stderr and "Traceback" not in done.stderr


def test_dev_with_its_mail_port_taken_says_which_and_what_to_do(tmp_path, taken_port):
    env = {
        "SMTP_PORT": str(taken_port),
        "CATALOGUE_FILE": str(CATALOGUE),
        "DINGPASS_VAR_DIR": str(tmp_path / "var"),
    }
    done = subprocess.run(
        [SCRIPT, "dev"],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"127.0.0.1:{taken_port}: in use" in done.stderr
    assert "set SMTP_PORT" in done.stderr and "Traceback" not in done.stderr


def test_dev_with_its_inbox_port_taken_names_that_port(tmp_path, taken_port):
    env = {
        "SMTP_PORT": str(free_port()),
        "CATALOGUE_FILE": str(CATALOGUE),
        "DINGPASS_VAR_DIR": str(tmp_path / "var"),
    }
    done = subprocess.run(
        [SCRIPT, "dev", "--inbox-port", str(taken_port)],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert f"Port {taken_port} is in use" in done.stderr  # werkzeug's own words
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("host", ["198.51.100.254", "no-such-host.invalid"])
def test_dev_on_an_address_this_machine_does_not_have_says_which_to_use(tmp_path, host):
    env = {"CATALOGUE_FILE": str(CATALOGUE), "DINGPASS_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run(
        [SCRIPT, "dev", "--host", host],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert f"{host} is not an address of this machine" in done.stderr
    assert "0.0.0.0 for the local network" in done.stderr and "Traceback" not in done.stderr
