"""s.yaml describes a deployment Function Compute accepts, and the one the code needs."""

import dataclasses
import json
import re
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft7Validator

from backend.compat import tomllib
from backend.config import Config
from frontend.config import ENVIRONMENT_VARIABLES as FRONTEND_VARIABLES
from tests.conftest import ROOT

SCHEMAS = ROOT.parent / "shared" / "schemas"
DESCRIPTOR = yaml.safe_load((ROOT / "s.yaml").read_text(encoding="utf-8"))
RESOURCES = DESCRIPTOR["resources"]
FUNCTIONS = {name: r["props"] for name, r in RESOURCES.items() if r["component"] == "fc3"}
SETTINGS = {f.metadata["env"]: f.metadata for f in dataclasses.fields(Config)}
# Function Compute's runtime layer for custom runtimes, as in its own web-function template.
PLATFORM_PYTHON = "3.10"
FROM_ENV = re.compile(r"^\$\{env\('([A-Z0-9_]+)'\)\}$")


def requires_python() -> tuple[int, ...]:
    """The lowest Python pyproject.toml admits."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    lowest = re.fullmatch(r">=(\d+)\.(\d+)", project["project"]["requires-python"])
    return (int(lowest[1]), int(lowest[2]))


def strict(schema):
    """The schema, refusing keys it does not name (the published one lets vpcConfg through).

    An ``if`` is a condition, not a shape: made strict, it would fail for every real function
    and send it down the ``else`` branch (which asks custom runtimes for a handler).
    """
    if isinstance(schema, dict):
        schema = {k: v if k == "if" else strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(v) for v in schema]
    return schema


def schema_of(name: str) -> dict:
    """The published schema of a resource's component."""
    kind = "fc3-function" if RESOURCES[name]["component"] == "fc3" else "fc3-domain"
    return json.loads((SCHEMAS / f"{kind}.schema.json").read_text())


TRIGGER_CONFIGS = {
    "timer": "ITimerTriggerConfig",
    "http": "IHttpTriggerConfig",
    "oss": "IOssTriggerConfig",
    "log": "ILogTriggerConfig",
    "mns_topic": "IMnsTriggerConfig",
    "cdn_events": "ICdnTriggerConfig",
    "tablestore": "IOtsConfig",
    "eventbridge": "IEventBridge",
}
"""The schema of each trigger type's triggerConfig. The published schema accepts any of them
(anyOf), and the tablestore one is any object: a trigger's keys are checked against its own."""


def problems(schema: dict, props: dict) -> list[str]:
    """Every complaint of the schema about ``props``, with those inside anyOf branches."""
    found, pending = [], list(Draft7Validator(schema).iter_errors(props))
    while pending:
        error = pending.pop()
        found.append(f"{'/'.join(map(str, error.absolute_path))}: {error.message}")
        pending.extend(error.context or [])
    return sorted(found)


def substituted(value):
    """The descriptor with Serverless Devs' ${...} expressions filled in, as `s` would."""
    if isinstance(value, dict):
        return {k: substituted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [substituted(v) for v in value]
    if not isinstance(value, str):
        return value
    whole = re.fullmatch(r"\$\{vars\.(\w+)\}", value)
    if whole:
        return substituted(DESCRIPTOR["vars"][whole[1]])
    value = re.sub(
        r"\$\{resources\.(\w+)\.output\.url\.system_intranet_url\}",
        lambda m: f"https://{RESOURCES[m[1]]['props']['functionName']}-x.cn-hangzhou-vpc.fcapp.run",
        value,
    )
    value = re.sub(
        r"\$\{resources\.(\w+)\.props\.(\w+)\}",
        lambda m: RESOURCES[m[1]]["props"][m[2]],
        value,
    )
    value = re.sub(r"\$\{vars\.(\w+)\}", lambda m: DESCRIPTOR["vars"][m[1]], value)
    value = re.sub(r"\$\{config\(\"AccountID\"\)\}", "1234567890123456", value)
    return re.sub(r"\$\{env\('([A-Z0-9_]+)'\)\}", lambda m: f"value-of-{m[1].lower()}", value)


@pytest.mark.parametrize("name", list(RESOURCES))
def test_each_resource_validates_against_its_published_schema(name):
    assert problems(schema_of(name), substituted(RESOURCES[name]["props"])) == []


def strict_problems(name: str, props: dict) -> list[str]:
    """Every key the strict schema does not know, each trigger's against its own type's."""
    schema = strict(schema_of(name))
    found = problems(schema, props)
    for n, trigger in enumerate(props.get("triggers", [])):
        own = {"definitions": schema["definitions"]}
        own["$ref"] = f"#/definitions/{TRIGGER_CONFIGS[trigger['triggerType']]}"
        found += [
            f"triggers/{n}/triggerConfig/{p}" for p in problems(own, trigger["triggerConfig"])
        ]
    return found


@pytest.mark.parametrize("name", list(RESOURCES))
def test_each_resource_names_only_keys_its_schema_knows(name):
    assert strict_problems(name, substituted(RESOURCES[name]["props"])) == []


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_each_function_starts_through_bootstrap_with_an_app_bootstrap_knows(name):
    runtime = FUNCTIONS[name]["customRuntimeConfig"]
    assert runtime["command"] == ["/code/bootstrap"] and runtime["port"] == 9000
    (function,) = runtime["args"]
    apps = dict(
        re.findall(r"^\s+(\w+)\) app=([\w.]+):app ;;$", (ROOT / "bootstrap").read_text(), re.M)
    )
    module = Path(ROOT, *apps[function].split(".")).with_suffix(".py")
    assert "\napp = create_app(" in module.read_text()


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_each_function_deploys_its_own_package_built_from_the_locks(name):
    (function,) = FUNCTIONS[name]["customRuntimeConfig"]["args"]
    assert FUNCTIONS[name]["code"] == f"./build/{function}"
    (build,) = RESOURCES[name]["actions"]["pre-deploy"]
    assert build == {"run": f"make package FUNCTIONS={function}", "path": "./"}


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_each_function_runs_on_the_platforms_python_layer_that_dingpass_supports(name):
    props = substituted(FUNCTIONS[name])
    assert props["runtime"] == "custom.debian10"
    first = props["environmentVariables"]["PATH"].split(":")[0]
    assert first == f"/var/fc/lang/python{PLATFORM_PYTHON}/bin"
    assert requires_python() <= tuple(map(int, PLATFORM_PYTHON.split(".")))


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_every_function_answers_the_lifecycle_hooks(name):
    assert FUNCTIONS[name]["instanceLifecycleConfig"] == "${vars.lifecycle}"


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_every_variable_is_one_the_code_reads_and_no_secret_is_inline(name):
    variables = FUNCTIONS[name]["environmentVariables"]
    for variable, value in variables.items():
        if variable in ("PATH", "PYTHONPATH"):
            continue
        assert variable in SETTINGS, f"{name}: {variable} is not a setting the code reads"
        if SETTINGS[variable]["secret"]:
            assert FROM_ENV.match(str(value)), (
                f"{name}: the secret {variable} must come from ${{env(...)}}"
            )


def test_the_backend_functions_get_every_production_setting():
    needed = {env for env, meta in SETTINGS.items() if meta["production"]}
    for name in ("backend", "approval", "runner"):
        assert needed <= set(FUNCTIONS[name]["environmentVariables"]), name


def test_the_frontend_gets_the_variables_it_reads():
    assert set(FRONTEND_VARIABLES) - {"BACKEND_TIMEOUT"} <= set(
        FUNCTIONS["frontend"]["environmentVariables"]
    )


def test_the_runner_timer_fires_every_minute_without_blind_retries():
    (trigger,) = FUNCTIONS["runner"]["triggers"]
    assert trigger["triggerType"] == "timer"
    expression = trigger["triggerConfig"]["cronExpression"]
    assert expression == "@every 1m" or len(expression.split()) == 6
    assert FUNCTIONS["runner"]["asyncInvokeConfig"]["maxAsyncRetryAttempts"] == 0


def test_every_function_is_in_the_vpc_with_its_own_internet_access_off():
    """The frontend too: the backend's trigger is reachable only from the VPC."""
    for name, props in FUNCTIONS.items():
        assert props["vpcConfig"] == "${vars.vpc}" and props["internetAccess"] is False, name


def test_the_backend_trigger_takes_only_fc_signed_calls_and_is_closed_to_the_internet():
    (trigger,) = FUNCTIONS["backend"]["triggers"]
    assert trigger["triggerConfig"]["authType"] == "function"
    assert trigger["triggerConfig"]["disableURLInternet"] is True


def test_the_frontend_names_the_backend_and_one_deploy_passes_it_the_trigger_url():
    variables = FUNCTIONS["frontend"]["environmentVariables"]
    assert variables["BACKEND_URL"] == "${resources.backend.output.url.system_intranet_url}"
    assert "env('BACKEND_URL')" not in (ROOT / "s.yaml").read_text()


def test_the_frontend_runs_under_a_role_of_its_own():
    roles = {name: props["role"] for name, props in FUNCTIONS.items()}
    assert roles.pop("frontend") == "${vars.frontend_role}"
    assert roles.pop("runner") == "${vars.runner_role}"  # the changes' cloud actions: its own
    assert set(roles.values()) == {"${vars.role}"}
    assert len({DESCRIPTOR["vars"][r] for r in ("frontend_role", "runner_role", "role")}) == 3


def policy_in_the_guide(role: str) -> dict:
    """The policy docs/deploy.md gives ``role``: the JSON block after its name."""
    guide = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    block = re.search(rf"^`{role}` is .*?```json\n(.*?)```", guide, re.S | re.M)
    assert block, f"docs/deploy.md gives no policy for {role}"
    return json.loads(block[1])


def test_the_frontends_role_may_invoke_the_backend_and_nothing_else():
    (statement,) = policy_in_the_guide("dingpass-frontend")["Statement"]
    backend = FUNCTIONS["backend"]["functionName"]
    assert statement == {
        "Effect": "Allow",
        "Action": ["fc:InvokeFunction"],
        "Resource": [f"acs:fc:*:*:functions/{backend}"],
    }


PLUGINS = ROOT / "backend" / "cloud" / "plugins"
SDK_CALL = re.compile(r"\bcloud\.(\w+)\(\)\.(\w+)\(")
"""A plugin's call of a cloud API through its client: the service, the SDK method."""
LABEL = re.compile(r"\b(?:translated|describing|deleting)\(\s*\"(\w+)\"")
"""How a plugin names the action of a call, for its errors (backend/cloud/errors.py)."""


def actions_the_plugins_call() -> set[str]:
    """Every ``service:Action`` a resource plugin calls, read from the plugins' sources.

    The service is the client the call goes through; the action is spelt as its label
    (create_vswitch is CreateVSwitch). A call without a label fails here with its name.
    """
    actions = set()
    for module in sorted(PLUGINS.glob("*.py")):
        text = module.read_text(encoding="utf-8")
        labels = {name.lower(): name for name in LABEL.findall(text)}
        for service, method in SDK_CALL.findall(text):
            actions.add(f"{service}:{labels[method.replace('_', '')]}")
    return actions


def allowed(policy: dict) -> set[str]:
    return {action for statement in policy["Statement"] for action in statement["Action"]}


def test_the_runner_creates_in_the_deployments_region():
    variables = FUNCTIONS["runner"]["environmentVariables"]
    assert variables["CLOUD_REGION"] == "${vars.region}"
    assert not {"CLOUD_ENDPOINT", "CLOUD_ACCESS_KEY_ID", "CLOUD_ACCESS_KEY_SECRET"} & set(variables)


def test_the_runners_role_may_call_exactly_what_the_plugins_call():
    policy = policy_in_the_guide("dingpass-runner")
    assert {s["Effect"] for s in policy["Statement"]} == {"Allow"}
    assert allowed(policy) == actions_the_plugins_call()
    assert "ram:PassRole" not in allowed(policy)


def test_a_new_ram_user_may_be_given_only_the_system_policies_the_guide_lists():
    policy = policy_in_the_guide("dingpass-runner")
    (attach,) = [s for s in policy["Statement"] if "ram:AttachPolicyToUser" in s["Action"]]
    policies = [r for r in attach["Resource"] if ":policy/" in r]
    assert policies and all(r.startswith("acs:ram:*:system:policy/") for r in policies)
    assert "*" not in attach["Resource"] and not any(r.endswith("policy/*") for r in policies)


def test_fc2s_template_gives_the_core_role_the_same_policy():
    """FC 2.0 gives roles to services: the runner calls the cloud with dingpass-fc."""
    template = yaml.safe_load((ROOT / "template.yml").read_text(encoding="utf-8"))
    (policy,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "ALIYUN::RAM::ManagedPolicy"
    ]
    core_role = template["Resources"]["dingpass"]["Properties"]["Role"].rsplit("/", 1)[1]
    assert policy["Roles"] == [core_role]
    assert policy["PolicyDocument"] == policy_in_the_guide("dingpass-runner")
    runner = template["Resources"]["dingpass"]["runner"]["Properties"]
    assert runner["EnvironmentVariables"]["CLOUD_REGION"] == {"Ref": "ALIYUN::Region"}


MISSPELT = [
    ("backend", ("vpcConfg",)),  # a function's own key
    ("backend", ("customRuntimeConfig", "comand")),  # a key of one of its settings
    ("runner", ("triggers", 0, "triggerNmae")),  # a trigger's key
    ("runner", ("triggers", 0, "triggerConfig", "cronExpresion")),  # a trigger's setting
    ("domain", ("routeConfig", "route")),  # the custom domain's
]


@pytest.mark.parametrize(("name", "path"), MISSPELT, ids=[f"{n}:{p[-1]}" for n, p in MISSPELT])
def test_a_misspelt_key_is_caught(name, path):
    props = substituted(RESOURCES[name]["props"])
    *parents, key = path
    where = props
    for part in parents:
        where = where[part]
    where[key] = "x"
    assert problems(schema_of(name), props) == []  # the published schema lets it through
    assert f"'{key}' was unexpected" in "\n".join(strict_problems(name, props))


@pytest.mark.parametrize("ignore", [".fcignore", ".funignore"])
def test_the_code_package_leaves_out_tools_tests_and_local_state(ignore):
    lines = set((ROOT / ignore).read_text().split())
    assert {"node_modules", "tests", "var", ".env", ".venv"} <= lines
    # Bytecode is what make package compiles for FC's read-only /code: it must reach it.
    assert not {"frontend/static", "python", "__pycache__", "*.pyc"} & lines
