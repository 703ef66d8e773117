"""The OpenAPI description is valid 3.1, and real answers match it."""

import dataclasses
import json
import re
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
from backend.codes.api import CSV, SCOPES
from backend.codes.lookup import CodeState
from license import codes
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


# The activation codes API: every route of backend/codes/api.py described with its scope, its
# examples valid, and real answers relayed by the frontend from the backend, each against the
# description of its status and media type.

CODES = "/api/v1/codes"
CODE_OPERATIONS = {
    (path, method): operation
    for path, item in SPEC["paths"].items()
    if path.startswith(CODES)
    for method, operation in item.items()
}
CODE_SCOPES = frozenset(SCOPES.values())
CODE_HASH_KEY = "test-code-hash-key-0123456789abcdef"
TERMS = {
    "product": "acme-erp",
    "count": 2,
    "valid_until": "2026-12-31T00:00:00Z",
    "quantity": 5,
    "days": 45,
}
BATCH = f"{CODES}/batches/{{id}}"
UNKNOWN_BATCH = f"{CODES}/batches/bat-0000000000000000"


def check_code(answer, path: str, method: str) -> None:
    """Validate a codes API answer: its body against the schema of its status and media type,
    its headers (those required, present), and a refusal's ``error`` named in the description."""
    described = resolved(SPEC["paths"][path][method]["responses"][str(answer.status_code)])
    content = described["content"][answer.mimetype]
    body = answer.get_json() if answer.is_json else answer.get_data(as_text=True)
    schema_validator(content["schema"]).validate(body)
    for name, header in described.get("headers", {}).items():
        header = resolved(header)
        if header.get("required"):
            assert name in answer.headers, name
        if name in answer.headers:
            schema_validator(header["schema"]).validate(answer.headers[name])
    if answer.status_code < 500 and isinstance(body, dict) and "error" in body:
        assert body["error"] in described["description"], body["error"]


def anchored(node):
    """``node`` with each of its references, however deep, made to point into the spec."""
    if isinstance(node, list):
        return [anchored(item) for item in node]
    if not isinstance(node, dict):
        return node
    found = {key: anchored(value) for key, value in node.items()}
    if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
        found["$ref"] = f"urn:openapi{node['$ref']}"
    return found


def schema_validator(schema: dict) -> Draft202012Validator:
    """A validator of ``schema``, a part of the spec, inline or a reference."""
    return Draft202012Validator(
        anchored(schema), registry=REGISTRY, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def template(path: str) -> str:
    """A path with each parameter, Flask's <name> or OpenAPI's {name}, as {}."""
    return re.sub(r"<[^>]+>|\{[^}]+\}", "{}", path)


def redemption(code: str, **changes) -> dict:
    """The apply form a partner sends with a customer's code (the batch sets the terms)."""
    form = {k: v for k, v in a_form().items() if k not in ("quantity", "validity")}
    return {**form, "code": code, **changes}


class Partner:
    """Calls to the codes API through the frontend, signed as one app."""

    def __init__(self, front, app, clock) -> None:
        self.front, self.app, self.clock = front, app, clock

    def send(
        self, method: str, target: str, body=None, accept="application/json", then=None, **options
    ):
        """A call signed with ``options`` (tests.app_signing's), its headers changed by ``then``."""
        data = json.dumps(body).encode() if body is not None else b""
        options.setdefault("now_ms", int(self.clock().timestamp() * 1000))
        content_type = "application/json" if data else None
        headers = app_signed_headers(
            self.app.app_key, self.app.secret, method, target, data, content_type, accept, **options
        )
        headers |= then or {}
        return self.front.open(target, method=method, data=data, headers=headers)

    def codes(self, **changes) -> list[str]:
        """The codes of a new batch: TERMS with ``changes``."""
        return self.send("POST", f"{CODES}/batches", {**TERMS, **changes}).get_json()["codes"]


@pytest.fixture
def codes_backend(config, database, clock):
    backend = create_backend(
        dataclasses.replace(config, code_hash_key=CODE_HASH_KEY), clock=clock, kick=lambda: None
    )
    yield backend
    backend.extensions["database"].dispose()


@pytest.fixture
def codes_front(codes_backend, tmp_path):
    server = LiveServer(codes_backend)
    yield frontend_for(server.url, tmp_path)
    server.stop()


@pytest.fixture
def partner(codes_front, database, clock):
    """partner(name, scopes): a Partner signing as a new app allowed ``scopes``."""

    def make(name: str, scopes=CODE_SCOPES) -> Partner:
        with database.transaction() as connection:
            made = apps.create(connection, name, clock(), frozenset(scopes))
        return Partner(codes_front, made, clock)

    return make


@pytest.fixture
def shop(partner) -> Partner:
    """A partner allowed every codes operation."""
    return partner("shop")


def test_every_route_of_the_codes_api_is_described_with_its_scope(codes_backend):
    routes = {
        (template(rule.rule), method.lower(), SCOPES[rule.endpoint.split(".", 1)[1]])
        for rule in codes_backend.url_map.iter_rules()
        if rule.endpoint.startswith("codes_api.")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    described = {
        (template(path), method, operation["x-scope"])
        for (path, method), operation in CODE_OPERATIONS.items()
    }
    assert described == routes


@pytest.mark.parametrize(("path", "method"), sorted(CODE_OPERATIONS))
def test_each_codes_operation_names_its_scope_where_it_is_asked_and_refused(path, method):
    operation = CODE_OPERATIONS[path, method]
    scope = operation["x-scope"]
    assert operation["security"] == [{"apiGatewayApp": [scope]}]
    assert operation["description"].startswith(f"Scope: `{scope}`.")
    assert f"`{scope}`" in resolved(operation["responses"]["403"])["description"]


def test_no_codes_operation_takes_a_code_in_its_url():
    in_url = [
        (path, parameter["name"], parameter["schema"])
        for (path, _), operation in CODE_OPERATIONS.items()
        for parameter in map(resolved, operation["parameters"])
        if parameter["in"] != "header"
    ]
    batch_id = {"$ref": "#/components/schemas/CodeBatchId"}
    assert in_url == [(BATCH, "id", batch_id), (BATCH, "id", batch_id)]


@pytest.mark.parametrize(("path", "method"), sorted(CODE_OPERATIONS))
def test_each_codes_operation_has_examples_that_match_its_schemas(path, method):
    operation = CODE_OPERATIONS[path, method]
    success = next(resolved(r) for s, r in operation["responses"].items() if s.startswith("2"))
    contents = [success["content"], operation.get("requestBody", {}).get("content", {})]
    contents += [resolved(r)["content"] for r in operation["responses"].values()]
    assert all(media.get("examples") for media in success["content"].values())
    if "requestBody" in operation:
        assert operation["requestBody"]["content"]["application/json"]["examples"]
    for content in contents:
        for media in content.values():
            for example in media.get("examples", {}).values():
                schema_validator(media["schema"]).validate(example["value"])


def test_the_example_codes_are_codes_their_check_symbols_accept():
    described = json.dumps({path: SPEC["paths"][path] for path, _ in CODE_OPERATIONS})
    found = re.findall(r"\b[0-9A-Z]{5}(?:-[0-9A-Z]{5}){3}\b", described)
    assert found and all(codes.parse(code) == code for code in found)


def test_the_described_code_states_are_the_backends():
    schemas = SPEC["components"]["schemas"]
    known = schemas["KnownCodeStatus"]["properties"]["state"]["enum"]
    assert set(schemas["CodeState"]["enum"]) == {state.value for state in CodeState}
    assert {*known, schemas["UnknownCodeStatus"]["properties"]["state"]["const"]} == set(CodeState)


def test_a_batch_made_as_json_and_as_csv_shown_and_deleted_matches(shop):
    made = shop.send("POST", f"{CODES}/batches", TERMS)
    as_csv = shop.send("POST", f"{CODES}/batches", TERMS, accept="text/csv")
    assert (made.status_code, made.mimetype, as_csv.mimetype) == (201, "application/json", CSV)
    assert "Content-Disposition" in as_csv.headers
    check_code(made, f"{CODES}/batches", "post")
    check_code(as_csv, f"{CODES}/batches", "post")
    check_code(shop.send("GET", made.headers["Location"]), BATCH, "get")
    check_code(shop.send("DELETE", made.headers["Location"]), BATCH, "delete")


def test_every_state_a_query_gives_matches(shop, clock):
    unused, redeemed, deleted = shop.codes(count=3)
    (not_yet_valid,) = shop.codes(count=1, valid_from="2026-12-01T00:00:00Z")
    (expired,) = shop.codes(count=1, valid_until="2026-11-23T09:00:00Z")
    assert shop.send("POST", f"{CODES}/redeem", redemption(redeemed)).status_code == 201
    assert shop.send("POST", f"{CODES}/delete", {"code": deleted}).status_code == 200
    clock.advance(2 * 3600)
    states = set()
    for code in (unused, redeemed, deleted, not_yet_valid, expired, codes.generate()):
        answer = shop.send("POST", f"{CODES}/query", {"code": code})
        check_code(answer, f"{CODES}/query", "post")
        states.add(answer.get_json()["state"])
    assert states == set(CodeState)


def test_a_redemption_and_its_replay_under_its_request_id_match(shop):
    (code,) = shop.codes(count=1)
    first = shop.send("POST", f"{CODES}/redeem", redemption(code, request_id="order-1"))
    again = shop.send("POST", f"{CODES}/redeem", redemption(code, request_id="order-1"))
    replayed = (first.headers["Idempotent-Replayed"], again.headers["Idempotent-Replayed"])
    assert (first.status_code, again.status_code, replayed) == (201, 201, ("false", "true"))
    check_code(first, f"{CODES}/redeem", "post")
    check_code(again, f"{CODES}/redeem", "post")


def test_deleting_a_code_and_deleting_it_again_match(shop):
    (code,) = shop.codes(count=1)
    first = shop.send("POST", f"{CODES}/delete", {"code": code})
    again = shop.send("POST", f"{CODES}/delete", {"code": code})
    assert (first.get_json()["deleted_now"], again.get_json()["deleted_now"]) == (True, False)
    check_code(first, f"{CODES}/delete", "post")
    check_code(again, f"{CODES}/delete", "post")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"count": 10_001}, "count"),
        ({"product": "acme-os"}, "product"),
        ({"quantity": 0}, "quantity"),
        ({"valid_until": "soon"}, "valid_until"),
        ({"valid_from": 5}, "valid_from"),
        ({"validity": "1y"}, "days"),
        ({"days": 9999}, "validity"),
        ({"note": "two\nlines"}, "note"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_refused_terms_match_with_their_field_described(shop, changes, field):
    answer = shop.send("POST", f"{CODES}/batches", {**TERMS, **changes})
    assert answer.status_code == 422 and field in answer.get_json()["fields"]
    check_code(answer, f"{CODES}/batches", "post")
    described = CODE_OPERATIONS[f"{CODES}/batches", "post"]["responses"]["422"]["description"]
    terms = SPEC["components"]["schemas"]["CodeBatchTerms"]["properties"]
    assert field in described or field not in terms


@pytest.mark.parametrize("action", ["query", "delete"])
def test_a_mistyped_code_and_another_field_match(shop, action):
    (code,) = shop.codes(count=1)
    typo = ("1" if code[0] != "1" else "2") + code[1:]
    mistyped = shop.send("POST", f"{CODES}/{action}", {"code": typo})
    other = shop.send("POST", f"{CODES}/{action}", {"code": code, "batch": "bat-1"})
    errors = (mistyped.get_json()["error"], other.get_json()["error"])
    assert errors == ("code_malformed", "validation_failed")
    check_code(mistyped, f"{CODES}/{action}", "post")
    check_code(other, f"{CODES}/{action}", "post")


def test_refused_deletions_match(shop, partner):
    made, redeemed = shop.codes()
    shop.send("POST", f"{CODES}/redeem", redemption(redeemed))
    used = shop.send("POST", f"{CODES}/delete", {"code": redeemed})
    anothers = partner("rival").send("POST", f"{CODES}/delete", {"code": made})
    assert (used.status_code, anothers.status_code) == (409, 404)
    check_code(used, f"{CODES}/delete", "post")
    check_code(anothers, f"{CODES}/delete", "post")


def test_refused_redemptions_match(shop):
    first, second = shop.codes()
    shop.send("POST", f"{CODES}/redeem", redemption(first, request_id="order-1"))
    refused = [
        shop.send("POST", f"{CODES}/redeem", redemption(first)),
        shop.send("POST", f"{CODES}/redeem", redemption(second, request_id="order-1")),
        shop.send("POST", f"{CODES}/redeem", redemption(second, email="x")),
        shop.send("POST", f"{CODES}/redeem", redemption(second, request_id="a b")),
        shop.send("POST", f"{CODES}/redeem", redemption("7KQ2M")),
    ]
    errors = [(answer.status_code, answer.get_json()["error"]) for answer in refused]
    assert errors == [
        (422, "code_used"),
        (409, "conflict"),
        (422, "validation_failed"),
        (422, "validation_failed"),
        (422, "code_malformed"),
    ]
    for answer in refused:
        check_code(answer, f"{CODES}/redeem", "post")


def test_too_many_failed_redemptions_match(shop):
    for _ in range(10):
        answer = shop.send("POST", f"{CODES}/redeem", redemption(codes.generate()))
        if answer.status_code != 422:
            break
    assert answer.status_code == 429 and int(answer.headers["Retry-After"]) > 0
    check_code(answer, f"{CODES}/redeem", "post")


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_an_unknown_batch_and_an_id_no_batch_could_have_match(shop, partner, method):
    made = shop.send("POST", f"{CODES}/batches", TERMS).headers["Location"]
    refused = [
        shop.send(method, UNKNOWN_BATCH),
        partner("rival").send(method, made),
        shop.send(method, f"{CODES}/batches/bat-{'0' * 80}"),
    ]
    errors = [answer.get_json()["error"] for answer in refused]
    assert errors == ["batch_unknown", "batch_unknown", "not_found"]
    for answer in refused:
        check_code(answer, BATCH, method.lower())


ROUTES = [
    (f"{CODES}/batches", "post", f"{CODES}/batches", TERMS),
    (BATCH, "get", UNKNOWN_BATCH, None),
    (BATCH, "delete", UNKNOWN_BATCH, None),
    (f"{CODES}/query", "post", f"{CODES}/query", {"code": "x"}),
    (f"{CODES}/redeem", "post", f"{CODES}/redeem", {"code": "x"}),
    (f"{CODES}/delete", "post", f"{CODES}/delete", {"code": "x"}),
]


@pytest.mark.parametrize(("path", "method", "target", "body"), ROUTES)
def test_an_app_refused_the_operations_scope_matches(partner, path, method, target, body):
    scope = CODE_OPERATIONS[path, method]["x-scope"]
    caller = partner("partial", CODE_SCOPES - {scope} | {"changes"})
    answer = caller.send(method.upper(), target, body)
    assert (answer.status_code, answer.get_json()["error"]) == (403, "not_allowed")
    check_code(answer, path, method)


def test_signature_refusals_match_for_the_codes_api(shop, database, clock):
    target, body = f"{CODES}/query", {"code": codes.generate()}
    refused = [
        shop.send("POST", target, body, then={"X-Ca-Signature": "AAAA"}),
        shop.send("POST", target, body, now_ms=1),
        Partner(shop.front, dataclasses.replace(shop.app, app_key="999999999"), clock).send(
            "POST", target, body
        ),
        shop.front.post(target, json=body),
    ]
    with database.transaction() as connection:
        apps.disable(connection, "shop", clock())
    refused.append(shop.send("POST", target, body))
    errors = [(answer.status_code, answer.get_json()["error"]) for answer in refused]
    assert errors == [
        (401, "signature_mismatch"),
        (401, "timestamp_expired"),
        (401, "unknown_app"),
        (401, "unsigned"),
        (403, "app_disabled"),
    ]
    for answer in refused:
        check_code(answer, target, "post")


@pytest.mark.parametrize(
    ("body", "target", "status"),
    [
        (["not", "an", "object"], f"{CODES}/query", 400),
        ({"code": "x"}, f"{CODES}/query?a=1&a=2", 400),
        ({"pad": "x" * 17000}, f"{CODES}/redeem", 413),
    ],
)
def test_bodies_and_queries_the_codes_api_cannot_take_match(shop, body, target, status):
    answer = shop.send("POST", target, body)
    assert answer.status_code == status
    check_code(answer, target.split("?")[0], "post")


@pytest.mark.parametrize(("path", "method", "target", "body"), ROUTES)
def test_an_unavailable_backend_matches_for_the_codes_api(tmp_path, path, method, target, body):
    down = frontend_for("http://127.0.0.1:1", tmp_path)
    answer = down.open(target, method=method.upper(), json=body)
    assert answer.status_code == 503
    check_code(answer, path, method)


def test_a_changes_call_from_an_app_allowed_only_codes_matches(partner):
    answer = partner("reseller").send("GET", CHANGES)
    assert (answer.status_code, answer.get_json()["error"]) == (403, "not_allowed")
    check_change(answer, CHANGES, "get")
    described = resolved(SPEC["paths"][CHANGES]["get"]["responses"]["403"])["description"]
    assert "not_allowed" in described and "`changes`" in described
