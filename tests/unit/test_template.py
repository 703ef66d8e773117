"""template.yml: accepted by the fun tool's own validator, and the deployment the code needs."""

import dataclasses
import re
import shutil
import subprocess

import pytest
import yaml

from backend.config import Config
from frontend.config import FrontendConfig
from tests.conftest import ROOT

FUN = ROOT / "tools" / "fun-validate"
TEMPLATE = yaml.safe_load((ROOT / "template.yml").read_text(encoding="utf-8"))
SERVICES = {
    name: resource
    for name, resource in TEMPLATE["Resources"].items()
    if resource["Type"] == "Aliyun::Serverless::Service"
}
RESOURCES = {  # every function, by name, from every service
    name: (service, resource)
    for service, members in SERVICES.items()
    for name, resource in members.items()
    if isinstance(resource, dict) and resource.get("Type") == "Aliyun::Serverless::Function"
}
FUNCTIONS = {name: resource["Properties"] for name, (_, resource) in RESOURCES.items()}
SERVICE_OF = {name: service for name, (service, _) in RESOURCES.items()}
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


def test_the_core_is_one_service_in_the_vpc_with_its_own_internet_access_off():
    assert {SERVICE_OF[name] for name in ("backend", "approval", "runner")} == {"dingpass"}
    properties = SERVICES["dingpass"]["Properties"]
    assert properties["InternetAccess"] is False and properties["VpcConfig"]["VSwitchIds"]
    assert properties["LogConfig"] and properties["Role"]


def test_the_frontend_has_a_service_and_so_a_role_of_its_own_outside_the_vpc():
    web = SERVICES[SERVICE_OF["frontend"]]["Properties"]
    assert SERVICE_OF["frontend"] != "dingpass"
    assert "VpcConfig" not in web and "Role" not in web  # fun makes the role from Policies
    assert web["LogConfig"]


def test_the_frontends_role_may_invoke_the_backend_and_write_its_logs_and_nothing_else():
    """FC 2.0 writes a service's logs with its role: the one statement besides the backend's."""
    web = SERVICES[SERVICE_OF["frontend"]]["Properties"]
    (policy,) = web["Policies"]
    backend = f"services/{SERVICE_OF['backend']}/functions/backend"
    logstore = f"project/{web['LogConfig']['Project']}/logstore/{web['LogConfig']['Logstore']}"
    fc = [s for s in policy["Statement"] if any(a.startswith("fc:") for a in s["Action"])]
    assert fc == [
        {"Effect": "Allow", "Action": ["fc:InvokeFunction"], "Resource": [f"acs:fc:*:*:{backend}"]}
    ]
    assert [s for s in policy["Statement"] if s not in fc] == [
        {
            "Effect": "Allow",
            "Action": ["log:PostLogStoreLogs"],
            "Resource": [f"acs:log:*:*:{logstore}"],
        }
    ]


def test_the_backend_trigger_takes_only_fc_signed_calls():
    """FC 2.0 has no disableURLInternet: function auth is what shuts out the internet."""
    (event,) = SERVICES["dingpass"]["backend"]["Events"].values()
    assert event["Type"] == "HTTP" and event["Properties"]["AuthType"].upper() == "FUNCTION"


@pytest.mark.parametrize("name", ["frontend", "approval"])
def test_the_public_functions_keep_anonymous_triggers(name):
    """The page, and DingTalk's callback (DingTalk signs its own way, checked in code)."""
    (event,) = SERVICES[SERVICE_OF[name]][name]["Events"].values()
    assert event["Properties"]["AuthType"].upper() == "ANONYMOUS"


def resolved(value: dict) -> str:
    """A ``Fn::Sub`` of ROS's pseudo-parameters, as ROS resolves it for one account."""
    pseudo = {"ALIYUN::AccountId": "1234567890123456", "ALIYUN::Region": "cn-hangzhou"}
    return re.sub(r"\$\{([\w:]+)\}", lambda m: pseudo[m[1]], value["Fn::Sub"])


def test_the_frontend_names_the_backend_by_service_and_function_with_no_url_to_give():
    url = resolved(FUNCTIONS["frontend"]["EnvironmentVariables"]["BACKEND_URL"])
    assert url == (
        "https://1234567890123456.cn-hangzhou-internal.fc.aliyuncs.com"
        f"/2016-08-15/proxy/{SERVICE_OF['backend']}/backend"
    )
    assert not [p for p in TEMPLATE["Parameters"] if "backend" in p.lower()]


def test_the_frontend_signs_for_the_backend_with_fc2s_scheme():
    url = resolved(FUNCTIONS["frontend"]["EnvironmentVariables"]["BACKEND_URL"])
    assert FrontendConfig.from_env({"BACKEND_URL": url}).fc_scheme == "fc2"


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
def test_each_function_deploys_its_own_package_built_by_make_package(name):
    assert FUNCTIONS[name]["CodeUri"] == f"./build/{name}"


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


def test_the_kick_names_the_runner_by_the_service_that_holds_it_and_its_name():
    """An FC 2.0 function lives under its service: the kick invokes ``service/function``."""
    kicks = {
        name: function["EnvironmentVariables"]["FC_RUNNER_FUNCTION"]
        for name, function in FUNCTIONS.items()
        if "FC_RUNNER_FUNCTION" in function["EnvironmentVariables"]
    }
    assert {"backend", "approval"} <= set(kicks)
    assert set(kicks.values()) == {f"{SERVICE_OF['runner']}/runner"}


def test_the_deploy_guide_lets_the_core_role_invoke_the_runner_the_kick_names():
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    fc2 = guide[guide.index("### With `fun`") : guide.index("## 9. Deploy")]
    service, function = FUNCTIONS["backend"]["EnvironmentVariables"]["FC_RUNNER_FUNCTION"].split(
        "/"
    )
    granted = re.findall(r'"Resource": \["acs:fc:\*:\*:(services/[^"]+)"\]', fc2)
    assert granted == [f"services/{service}/functions/{function}"]


def test_the_runner_timer_fires_every_minute_with_retries_off():
    event = SERVICES["dingpass"]["runner"]["Events"]["every-minute"]
    assert event["Type"] == "Timer" and event["Properties"]["CronExpression"] == "@every 1m"
    assert FUNCTIONS["runner"]["AsyncConfiguration"]["MaxAsyncRetryAttempts"] == 0


def test_the_domain_sends_the_page_and_api_to_the_frontend_and_the_callback_to_approval():
    (domain,) = [
        r for r in TEMPLATE["Resources"].values() if r["Type"] == "Aliyun::Serverless::CustomDomain"
    ]
    routes = {
        path: (route["ServiceName"], route["FunctionName"])
        for path, route in domain["Properties"]["RouteConfig"]["Routes"].items()
    }
    front, approval = (SERVICE_OF["frontend"], "frontend"), (SERVICE_OF["approval"], "approval")
    assert routes == {"/*": front, "/api/*": front, "/dingtalk/*": approval}
