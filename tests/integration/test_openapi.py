"""The OpenAPI description is valid 3.1, and real answers match it."""

import json
import socket
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from backend.app import create_app as create_backend
from backend.apps import signature
from backend.apps import store as apps
from backend.changes.types import change_types
from backend.cloud.plugins import all_plugins
from tests.app_signing import signed_headers as app_signed_headers
from tests.integration.conftest import LiveServer, a_form
from tests.integration.test_frontend import frontend_for

SPEC = json.loads((Path(__file__).parents[2] / "frontend" / "openapi.json").read_text())
REGISTRY = Registry().with_resource(
    "urn:openapi", Resource.from_contents(SPEC, default_specification=DRAFT202012)
)


def check(answer, path: str, method: str) -> None:
    """Validate an answer's JSON against the spec's schema for its status."""
    described = SPEC["paths"][path][method]["responses"][str(answer.status_code)]
    schema = described["content"]["application/json"]["schema"]
    resolver_schema = {"$ref": f"urn:openapi{schema['$ref']}"}
    Draft202012Validator(
        resolver_schema,
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    ).validate(answer.get_json())
    for header in described.get("headers", {}):
        assert header in answer.headers


def test_the_description_is_valid_openapi_3_1():
    validate(SPEC)
    assert SPEC["openapi"] == "3.1.0"


@pytest.fixture
def front(live_backend, tmp_path):
    return frontend_for(live_backend.url, tmp_path)


def test_submitting_and_reading_status_match(front):
    submitted = front.post("/api/applications", json=a_form())
    check(submitted, "/api/applications", "post")
    status = front.get(f"/api/applications/{submitted.get_json()['token']}")
    check(status, "/api/applications/{token}", "get")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (a_form(email="x"), 422),
        (["list"], 400),
        ({"padding": "x" * 17000}, 413),
        ({"deep": json.loads("[" * 40 + "]" * 40)}, 400),
    ],
)
def test_refusals_match(front, body, status):
    answer = front.post("/api/applications", json=body)
    assert answer.status_code == status
    check(answer, "/api/applications", "post")


def test_an_unusable_idempotency_key_and_a_body_not_json_match(front):
    bad_key = front.post("/api/applications", json=a_form(), headers={"Idempotency-Key": "a b"})
    not_json = front.post("/api/applications", data="x", content_type="text/plain")
    assert (bad_key.status_code, not_json.status_code) == (400, 415)
    check(bad_key, "/api/applications", "post")
    check(not_json, "/api/applications", "post")


def test_a_submission_with_an_idempotency_key_matches(front):
    answer = front.post("/api/applications", json=a_form(), headers={"Idempotency-Key": "k-1"})
    check(answer, "/api/applications", "post")


def test_an_unavailable_backend_matches(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    down = frontend_for(f"http://127.0.0.1:{port}", tmp_path)
    submitted = down.post("/api/applications", json=a_form())
    status = down.get("/api/applications/abcdefghijklmnopqrstu")
    assert submitted.status_code == status.status_code == 503
    check(submitted, "/api/applications", "post")
    check(status, "/api/applications/{token}", "get")


def test_rate_limit_and_not_found_match(front):
    for n in range(6):
        answer = front.post("/api/applications", json=a_form(email=f"r{n}@example.com"))
    assert answer.status_code == 429
    check(answer, "/api/applications", "post")
    missing = front.get("/api/applications/abcdefghijklmnopqrstu")
    check(missing, "/api/applications/{token}", "get")


def test_the_catalogue_matches(front):
    check(front.get("/catalogue.json"), "/catalogue.json", "get")


# The changes API: its signature scheme's worked example, its change types, and real answers
# relayed by the frontend from the backend, each against the description of its status.

SCHEME = SPEC["components"]["securitySchemes"]["apiGatewayApp"]
CHANGES = "/api/v1/changes"


def check_change(answer, path: str, method: str) -> None:
    """Validate a changes API answer: its JSON, and its headers (those required, present)."""
    described = resolved(SPEC["paths"][path][method]["responses"][str(answer.status_code)])
    validator(described["content"]["application/json"]["schema"]).validate(answer.get_json())
    for name, header in described.get("headers", {}).items():
        header = resolved(header)
        if header.get("required"):
            assert name in answer.headers, name
        if name in answer.headers:
            validator(header["schema"]).validate(answer.headers[name])


def resolved(node: dict) -> dict:
    """A component where ``node`` is a reference to it (``#/components/...``), else ``node``."""
    if "$ref" not in node:
        return node
    found = SPEC
    for part in node["$ref"].removeprefix("#/").split("/"):
        found = found[part]
    return found


def validator(schema: dict) -> Draft202012Validator:
    if "$ref" in schema:
        schema = {"$ref": f"urn:openapi{schema['$ref']}"}
    return Draft202012Validator(
        schema, registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def test_the_signature_example_is_what_the_backend_verifies():
    example = SCHEME["x-example"]
    headers, body = example["headers"], example["body"].encode()
    signed = signature.read(example["method"], example["path"], "", headers, body)
    assert signed.string_to_sign == example["string_to_sign"]
    assert signature.sign(example["app_secret"], signed.string_to_sign) == headers["X-Ca-Signature"]
    assert signature.content_md5(body) == headers["Content-MD5"]


def test_the_signature_example_is_written_out_in_the_schemes_description():
    example = SCHEME["x-example"]
    shown = "\n".join(f"    {line}" for line in example["string_to_sign"].split("\n"))
    assert shown in SCHEME["description"]
    assert example["headers"]["X-Ca-Signature"] in SCHEME["description"]
    assert f"    {example['body']}\n" in SCHEME["description"]


def described_parameter(param) -> dict:
    """The JSON schema a plugin's declared parameter is described with."""
    bounds = {"int": ("minimum", "maximum")}.get(param.kind, ("minLength", "maxLength"))
    kinds = {"str": "string", "int": "integer", "bool": "boolean"}
    schema: dict = {"type": kinds.get(param.kind, "string")}
    if param.pattern:
        schema["pattern"] = f"^(?:{param.pattern})$"
    for name, value in zip(bounds, (param.low, param.high), strict=True):
        if value is not None:
            schema[name] = value
    if param.kind == "list":
        schema = {"type": "array", "items": schema}
    if param.choices is not None:
        schema["enum"] = list(param.choices)
    if param.default is not None:
        schema["default"] = list(param.default) if param.kind == "list" else param.default
    return schema | ({"description": param.help} if param.help else {})


def spec_schema_of(type_name: str) -> dict:
    """The spec schema the description gives ``type_name``."""
    for branch in SPEC["components"]["schemas"]["ChangeRequest"]["oneOf"]:
        request = resolved(branch)
        if request["properties"]["type"]["const"] == type_name:
            return resolved(request["properties"]["spec"])
    raise AssertionError(f"the description has no change type {type_name}")


def test_the_described_change_types_are_those_the_backend_plans():
    kinds = change_types(all_plugins())
    described = SPEC["components"]["schemas"]["ChangeRequest"]["discriminator"]["mapping"]
    assert set(described) == set(kinds)
    for name, kind in kinds.items():
        schema = spec_schema_of(name)
        assert schema["properties"] == {
            key: described_parameter(param) for key, param in kind.parameters.items()
        }, name
        assert set(schema.get("required", [])) == {
            k for k, p in kind.parameters.items() if p.required
        }


def test_the_request_examples_are_valid_change_requests():
    post = SPEC["paths"][CHANGES]["post"]
    examples = post["requestBody"]["content"]["application/json"]["examples"]
    for example in examples.values():
        validator({"$ref": "#/components/schemas/ChangeRequest"}).validate(example["value"])


@pytest.mark.parametrize(
    ("path", "method", "status"),
    [(CHANGES, "post", "202"), (CHANGES, "get", "200"), (f"{CHANGES}/{{id}}", "get", "200")],
)
def test_the_answer_examples_match_their_schemas(path, method, status):
    content = SPEC["paths"][path][method]["responses"][status]["content"]["application/json"]
    for example in content["examples"].values():
        validator(content["schema"]).validate(example["value"])


@pytest.fixture
def app_backend(config, database, clock):
    """The backend with the changes API, and an app ``itsm`` to call it: (app, api_app)."""
    backend = create_backend(config, clock=clock, kick=lambda: None)
    with database.transaction() as connection:
        made = apps.create(connection, "itsm", clock())
    yield backend, made
    backend.extensions["database"].dispose()


@pytest.fixture
def changes_front(app_backend, tmp_path):
    server = LiveServer(app_backend[0])
    yield frontend_for(server.url, tmp_path)
    server.stop()


@pytest.fixture
def caller(changes_front, app_backend, clock):
    """send(method, target, body=None, key=None, then={}, **signing options): a call signed as
    the app ``itsm`` (or with another ``key``), its headers changed by ``then`` once signed."""
    made = app_backend[1]

    def send(method: str, target: str, body=None, key=None, then=None, **options):
        data = json.dumps(body).encode() if body is not None else b""
        options.setdefault("now_ms", int(clock().timestamp() * 1000))
        content_type = "application/json" if data else None
        headers = app_signed_headers(
            key or made.app_key, made.secret, method, target, data, content_type, **options
        )
        headers |= then or {}
        return changes_front.open(target, method=method, data=data, headers=headers)

    return send


COMPOSITE = SPEC["paths"][CHANGES]["post"]["requestBody"]["content"]["application/json"][
    "examples"
]["instance-in-a-new-network"]["value"]


def test_a_change_its_progress_and_the_listing_match(caller):
    taken = caller("POST", CHANGES, COMPOSITE)
    check_change(taken, CHANGES, "post")
    again = caller("POST", CHANGES, COMPOSITE)
    assert (taken.status_code, again.headers["Idempotent-Replayed"]) == (202, "true")
    check_change(caller("GET", taken.headers["Location"]), f"{CHANGES}/{{id}}", "get")
    check_change(caller("GET", f"{CHANGES}?status=planned&limit=1"), CHANGES, "get")


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"type": "dns.record", "request_id": "r-1", "spec": {}}, 422),
        ({"type": "ecs.instance", "request_id": "r-1", "spec": {"vpc": "new"}}, 422),
        (["not", "an", "object"], 400),
        ({"pad": "x" * 17000}, 413),
    ],
)
def test_refused_changes_match(caller, body, status):
    answer = caller("POST", CHANGES, body)
    assert answer.status_code == status
    check_change(answer, CHANGES, "post")


def test_a_request_id_used_for_another_body_matches(caller):
    caller("POST", CHANGES, COMPOSITE)
    answer = caller("POST", CHANGES, {**COMPOSITE, "spec": {**COMPOSITE["spec"], "name": "web-2"}})
    assert answer.status_code == 409
    check_change(answer, CHANGES, "post")


def test_signature_refusals_match(caller, app_backend, database, clock):
    mismatch = caller("GET", CHANGES, then={"X-Ca-Signature": "AAAA"})
    unknown = caller("GET", CHANGES, key="999999999")
    late = caller("GET", CHANGES, now_ms=1)
    with database.transaction() as connection:
        apps.disable(connection, "itsm", clock())
    disabled = caller("GET", CHANGES)
    statuses = [a.status_code for a in (mismatch, unknown, late, disabled)]
    assert statuses == [401, 401, 401, 403]
    assert "X-Ca-Error-Message" in mismatch.headers
    for answer in (mismatch, unknown, late, disabled):
        check_change(answer, CHANGES, "get")


def test_bad_filters_an_unknown_change_and_an_unusable_query_match(caller):
    bad = caller("GET", f"{CHANGES}?limit=0&status=done")
    assert bad.status_code == 422 and set(bad.get_json()["fields"]) == {"limit", "status"}
    check_change(bad, CHANGES, "get")
    repeated = caller("GET", f"{CHANGES}?status=planned&status=failed")
    assert repeated.status_code == 400
    check_change(repeated, CHANGES, "get")
    missing = caller("GET", f"{CHANGES}/chg-0000000000000000")
    assert missing.status_code == 404
    check_change(missing, f"{CHANGES}/{{id}}", "get")


def test_an_unavailable_backend_matches_for_the_changes_api(tmp_path):
    down = frontend_for("http://127.0.0.1:1", tmp_path)
    answer = down.post(CHANGES, json=COMPOSITE)
    assert answer.status_code == 503
    check_change(answer, CHANGES, "post")
