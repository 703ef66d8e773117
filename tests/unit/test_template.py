"""template.yml: accepted by the fun tool's own validator, and the deployment the code needs."""

import dataclasses
import re
import shutil
import subprocess

import pytest
import yaml

from backend.config import Config
from tests.conftest import ROOT

FUN = ROOT / "tools" / "fun-validate"
TEMPLATE = yaml.safe_load((ROOT / "template.yml").read_text(encoding="utf-8"))
SERVICE = TEMPLATE["Resources"]["dingpass"]
FUNCTIONS = {
    name: f["Properties"] for name, f in SERVICE.items() if isinstance(f, dict) and "Type" in f
}
SETTINGS = {f.metadata["env"]: f.metadata for f in dataclasses.fields(Config)}
STARTUP = {
    "PATH",
    "PYTHONPATH",
    "DINGPASS_FUNCTION",
}  # read by the runtime and bootstrap


def fun_validate(path) -> subprocess.CompletedProcess:
    if not (FUN / "node_modules" / "@alicloud" / "fun").exists():
        pytest.fail("fun is not installed: `make test` installs it into tools/fun-validate")
    return subprocess.run(
        [shutil.which("node") or "node", "validate.js", str(path)],
        cwd=FUN,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )


def test_fun_validates_the_template():
    done = fun_validate(ROOT / "template.yml")
    assert done.returncode == 0 and "template is valid" in done.stdout, done.stdout


def test_fun_refuses_a_template_it_cannot_deploy(tmp_path):
    broken = tmp_path / "template.yml"
    broken.write_text(
        (ROOT / "template.yml").read_text().replace("Runtime: custom", "Runtime: python3.10", 1)
    )
    done = fun_validate(broken)
    assert done.returncode == 1 and "template is not valid" in done.stdout


def test_one_service_in_the_vpc_with_its_own_internet_access_off():
    properties = SERVICE["Properties"]
    assert properties["InternetAccess"] is False and properties["VpcConfig"]["VSwitchIds"]
    assert properties["LogConfig"] and properties["Role"]


@pytest.mark.parametrize("name", ["frontend", "backend", "approval", "runner"])
def test_each_function_is_a_web_function_started_by_bootstrap(name):
    function = FUNCTIONS[name]
    assert (function["Runtime"], function["CAPort"]) == ("custom", 9000)
    assert function["EnvironmentVariables"]["DINGPASS_FUNCTION"] == name
    # The platform's Python 3.10 layer, which pyproject.toml admits (test_descriptors checks).
    assert function["EnvironmentVariables"]["PATH"].startswith("/var/fc/lang/python3.10/bin:")
    assert re.search(rf"^\s+{name}\) app=[\w.]+:app ;;$", (ROOT / "bootstrap").read_text(), re.M)
    assert function["Initializer"] and function["InstanceLifecycleConfig"]["PreStop"]["Handler"]


@pytest.mark.parametrize("name", ["frontend", "backend", "approval", "runner"])
def test_variables_are_settings_and_secrets_are_hidden_parameters(name):
    parameters = TEMPLATE["Parameters"]
    for variable, value in FUNCTIONS[name]["EnvironmentVariables"].items():
        assert variable in STARTUP or variable in SETTINGS, (
            f"{name}: {variable} is not read by the code"
        )
        if variable in SETTINGS and SETTINGS[variable]["secret"]:
            assert isinstance(value, dict) and parameters[value["Ref"]].get("NoEcho") is True, (
                variable
            )


def test_the_backend_functions_get_every_production_setting():
    needed = {env for env, meta in SETTINGS.items() if meta["production"]}
    for name in ("backend", "approval", "runner"):
        assert needed <= set(FUNCTIONS[name]["EnvironmentVariables"]), name


def test_the_runner_timer_fires_every_minute_with_retries_off():
    event = SERVICE["runner"]["Events"]["every-minute"]
    assert event["Type"] == "Timer" and event["Properties"]["CronExpression"] == "@every 1m"
    assert FUNCTIONS["runner"]["AsyncConfiguration"]["MaxAsyncRetryAttempts"] == 0


def test_the_domain_sends_the_page_and_api_to_the_frontend_and_the_callback_to_approval():
    (domain,) = [
        r for r in TEMPLATE["Resources"].values() if r["Type"] == "Aliyun::Serverless::CustomDomain"
    ]
    routes = {
        path: route["FunctionName"]
        for path, route in domain["Properties"]["RouteConfig"]["Routes"].items()
    }
    assert routes == {"/*": "frontend", "/api/*": "frontend", "/dingtalk/*": "approval"}
