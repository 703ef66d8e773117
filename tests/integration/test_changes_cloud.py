"""Changes carried out through the official Alibaba Cloud SDKs against the cloud sandbox:
VPC, then vSwitch, then instance, each wait honoured; exactly one resource per step when a
runner is killed after its create call or the answer is lost; throttling outlasted; a
permanent error failing the change, and `dingpass changes cleanup` removing what it made.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from backend.changes.model import StepStatus
from backend.clock import utc_now
from backend.config import Config
from backend.work import runner as build_runner
from backend.work import services
from sandbox.cloud.server import CloudSandbox
from tests.conftest import CATALOGUE, wait_for
from tests.integration.test_changes_api import AppClient

AK, SECRET = "sandbox-ak", "sandbox-secret-0123456789"
SCRIPT = Path(sys.executable).with_name("dingpass")
DONE = ("succeeded", "failed")
FINISHED_WITHIN = 30
"""Seconds a change on the cloud sandbox has to finish: it takes a few."""
NEW_NETWORK = {
    "type": "ecs.instance",
    "request_id": "ITSM-7",
    "spec": {
        "vpc": "new",
        "zone_id": "cn-hangzhou-h",
        "image_id": "ubuntu_22_04_x64_20G_alibase_20240130.vhd",
        "instance_type": "ecs.g7.large",
        "name": "web-1",
    },
}


@pytest.fixture
def cloud():
    sandbox = CloudSandbox(keys={AK: SECRET}, ready_after=0.3).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def cloud_config(config, cloud) -> Config:
    return replace(
        config,
        cloud_endpoint=cloud.url,
        cloud_access_key_id=AK,
        cloud_access_key_secret=SECRET,
    )


@pytest.fixture
def cloud_backend(cloud_config, database):
    from backend.app import create_app

    app = create_app(cloud_config, clock=utc_now)
    yield app
    app.extensions["database"].dispose()


@pytest.fixture
def itsm(cloud_backend, database):
    from backend.apps import store

    with database.transaction() as connection:
        app = store.create(connection, "itsm", utc_now())
    return AppClient(cloud_backend, app, utc_now)


@pytest.fixture
def running(cloud_config, database):
    """A runner loop in a thread, on the real clock, calling the sandbox through the SDKs."""
    jobs = build_runner(cloud_config, services(cloud_config, database, {}, None, utc_now))
    stop = threading.Event()
    thread = threading.Thread(target=jobs.loop, args=(1, stop), daemon=True)
    thread.start()
    yield jobs
    stop.set()
    jobs.kick()
    thread.join(5)


def progress(itsm, change_id) -> dict:
    return itsm.send("GET", f"/api/v1/changes/{change_id}").get_json()


def finished(itsm, change_id, seconds: float = FINISHED_WITHIN) -> dict:
    assert wait_for(lambda: progress(itsm, change_id)["status"] in DONE, seconds), progress(
        itsm, change_id
    )
    return progress(itsm, change_id)


def test_an_instance_in_a_new_vpc_is_made_vpc_then_vswitch_then_instance(itsm, running, cloud):
    change = itsm.send("POST", "/api/v1/changes", NEW_NETWORK).get_json()
    seen, deadline = [progress(itsm, change["id"])], time.monotonic() + FINISHED_WITHIN
    # By the clock, not a count of polls: how many fit in the cloud's waits is the machine's.
    while seen[-1]["status"] not in DONE:
        assert time.monotonic() < deadline, seen[-1]
        running.kick()
        time.sleep(0.005)
        seen.append(progress(itsm, change["id"]))

    steps = [{s["name"]: s["status"] for s in shown["steps"]} for shown in seen]
    for name in ("vpc", "vswitch", "instance"):  # each asynchronous wait was seen and honoured
        assert any(s[name] == StepStatus.WAITING for s in steps), name
    assert all(s["vswitch"] == "planned" for s in steps if s["vpc"] != "succeeded")
    assert all(s["instance"] == "planned" for s in steps if s["vswitch"] != "succeeded")
    done = seen[-1]
    assert done["status"] == "succeeded", done
    instance = done["results"]["instance"]
    assert instance["instance_id"].startswith("i-")
    assert instance["private_ip"].startswith("10.0.0.")
    assert (cloud.count("vpc"), cloud.count("vswitch"), cloud.count("instance")) == (1, 1, 1)


def test_throttling_is_outlasted(itsm, running, cloud):
    cloud.faults.set("throttling", action="CreateVpc", times=2)
    change = itsm.send("POST", "/api/v1/changes", {"type": "vpc", "request_id": "t1"}).get_json()

    done = finished(itsm, change["id"], seconds=60)

    assert done["status"] == "succeeded"
    assert done["steps"][0]["attempts"] == 3
    assert cloud.count("vpc") == 1


def test_a_create_whose_answer_was_lost_gets_the_same_resource_again(itsm, running, cloud):
    cloud.faults.set("lose_answer", action="CreateVpc", times=1)
    change = itsm.send("POST", "/api/v1/changes", {"type": "vpc", "request_id": "l1"}).get_json()

    done = finished(itsm, change["id"], seconds=60)

    assert done["status"] == "succeeded"
    assert done["steps"][0]["attempts"] == 2
    assert cloud.count("vpc") == 1


def test_a_permanent_error_fails_the_change_and_cleanup_removes_what_it_made(
    itsm, running, cloud, cloud_config, tmp_path
):
    outside = {**NEW_NETWORK["spec"], "vswitch_cidr_block": "192.168.0.0/24"}
    body = {**NEW_NETWORK, "request_id": "p1", "spec": outside}
    change = itsm.send("POST", "/api/v1/changes", body).get_json()

    failed = finished(itsm, change["id"])

    assert failed["status"] == "failed"
    steps = {s["name"]: s for s in failed["steps"]}
    assert steps["vswitch"]["status"] == "failed"
    assert "InvalidCidrBlock" in steps["vswitch"]["last_error"] or (
        "InvalidParameter" in steps["vswitch"]["last_error"]
    )
    assert steps["instance"]["status"] == "cancelled"
    made = [r["id"] for r in failed["resources"]]
    assert cloud.count("vpc") == 1 and made[0].startswith("vpc-")

    done = cleanup(change["id"], cloud_config, tmp_path)

    assert done.returncode == 0, done.stderr
    assert f"deleted vpc {made[0]}" in done.stdout
    assert cloud.count("vpc") == cloud.count("security_group") == 0
    assert all(not r["exists"] for r in progress(itsm, change["id"])["resources"])


def test_a_runner_killed_right_after_a_create_leaves_one_resource(
    itsm, cloud, cloud_config, database, tmp_path
):
    # The sandbox makes the VPC at once and holds its answer back: the runner dies waiting.
    cloud.faults.set("slow", action="CreateVpc", times=1, seconds=30)
    change = itsm.send("POST", "/api/v1/changes", {"type": "vpc", "request_id": "k1"}).get_json()
    env = _environment(cloud_config) | {"JOB_LEASE": "2", "RUNNER_INTERVAL": "1"}
    doomed = subprocess.Popen(
        [str(SCRIPT), "runner"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL
    )
    try:
        assert wait_for(lambda: cloud.count("vpc") == 1, 30)
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
    assert progress(itsm, change["id"])["steps"][0]["resource_id"] is None

    survivor = build_runner(cloud_config, services(cloud_config, database, {}, None, utc_now))
    assert wait_for(lambda: survivor.run_due() and False or _done(itsm, change["id"]), 30)

    done = progress(itsm, change["id"])
    assert done["status"] == "succeeded"
    assert cloud.count("vpc") == 1
    assert done["steps"][0]["attempts"] == 2


def cleanup(change_id: str, config: Config, folder: Path) -> subprocess.CompletedProcess:
    """`dingpass changes cleanup CHANGE_ID`, as an operator runs it."""
    return subprocess.run(
        [str(SCRIPT), "changes", "cleanup", change_id],
        env=_environment(config),
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _done(itsm, change_id) -> bool:
    return progress(itsm, change_id)["status"] == "succeeded"


def _environment(config: Config) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": config.database,
        "CATALOGUE_FILE": str(CATALOGUE),
        "CLOUD_ENDPOINT": config.cloud_endpoint or "",
        "CLOUD_ACCESS_KEY_ID": AK,
        "CLOUD_ACCESS_KEY_SECRET": SECRET,
        "PROXY_SECRET": "unused-by-the-runner",
    }


def test_on_function_compute_the_invocations_credentials_sign_the_calls(itsm, cloud, cloud_config):
    from runner.app import create_app as create_runner

    cloud.add_key("STS.fc-runner", "fc-secret", "fc-token")
    unknown_key = replace(cloud_config, cloud_access_key_id="not-a-key-of-the-sandbox")
    invoker = create_runner(unknown_key, clock=utc_now).test_client()
    fc = {
        "x-fc-access-key-id": "STS.fc-runner",
        "x-fc-access-key-secret": "fc-secret",
        "x-fc-security-token": "fc-token",
    }
    change = itsm.send("POST", "/api/v1/changes", {"type": "vpc", "request_id": "fc1"}).get_json()

    assert wait_for(
        lambda: (
            invoker.post("/invoke", json={"source": "kick"}, headers=fc)
            and _done(itsm, change["id"])
        ),
        30,
    )
    assert cloud.count("vpc") == 1


def test_a_user_whose_policy_is_refused_is_reported_and_cleaned_up(
    itsm, running, cloud, cloud_config, tmp_path
):
    body = {
        "type": "ram.user",
        "request_id": "u1",
        "spec": {"user_name": "bob", "policies": ["NoSuchPolicy"]},
    }
    change = itsm.send("POST", "/api/v1/changes", body).get_json()

    failed = finished(itsm, change["id"])

    assert failed["status"] == "failed"
    assert [(r["id"], r["exists"]) for r in failed["resources"]] == [("bob", True)]
    done = cleanup(change["id"], cloud_config, tmp_path)
    assert done.returncode == 0, done.stderr
    assert cloud.count("user") == 0


def test_a_name_ecs_would_refuse_is_refused_before_anything_is_made(itsm, cloud):
    spec = {**NEW_NETWORK["spec"], "name": "web 1"}

    answer = itsm.send("POST", "/api/v1/changes", {**NEW_NETWORK, "request_id": "n1", "spec": spec})

    assert answer.status_code == 422
    assert "spec.name" in answer.get_json()["fields"]
    assert cloud.count("vpc") == 0
