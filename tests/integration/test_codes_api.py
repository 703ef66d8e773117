"""The codes API for resellers and partners, on SQLite and MariaDB: generate, query, redeem
and delete, each allowed per app, an app seeing only its own batches and codes.

Requests are signed by tests/app_signing.py, a client written apart from backend.apps.
"""

import csv
import dataclasses
import io
import json

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from backend.app import create_app
from backend.apps import store as apps
from backend.codes.api import PREFIX, SCOPES
from backend.storage.schema import activation_codes
from cli import codes as code_commands
from cli.context import script_info
from license import codes
from tests.app_signing import signed_headers
from tests.integration.conftest import a_form

CODE_KEY = "test-code-hash-key-0123456789abcdef"
JSON = "application/json; charset=utf-8"
ALL = frozenset(SCOPES.values())
TERMS = {
    "product": "acme-erp",
    "count": 3,
    "valid_from": "2026-11-23T00:00:00Z",
    "valid_until": "2026-12-31T00:00:00Z",
    "quantity": 5,
    "days": 45,
    "note": "beta",
}


class Partner:
    """Requests to the backend signed as one app."""

    def __init__(self, backend, app, clock) -> None:
        self.client, self.app, self.clock = backend.test_client(), app, clock

    def send(self, method, path, body=None, accept="application/json"):
        data = b"" if body is None else json.dumps(body).encode()
        headers = signed_headers(
            self.app.app_key,
            self.app.secret,
            method,
            "http://localhost" + path,
            data,
            JSON if data else None,
            accept=accept,
            now_ms=int(self.clock().timestamp() * 1000),
        )
        return self.client.open(path, method=method, data=data, headers=headers)

    def generate(self, **changes):
        """A new batch (TERMS with ``changes``): its JSON answer."""
        return self.send("POST", f"{PREFIX}/batches", {**TERMS, **changes}).get_json()


@pytest.fixture
def backend(config, database, clock):
    app = create_app(dataclasses.replace(config, code_hash_key=CODE_KEY), clock=clock)
    yield app
    app.extensions["database"].dispose()


def partner_named(backend, database, clock, name, scopes=ALL) -> Partner:
    with database.transaction() as connection:
        app = apps.create(connection, name, clock(), frozenset(scopes))
    return Partner(backend, app, clock)


@pytest.fixture
def shop(backend, database, clock) -> Partner:
    """A partner allowed every codes operation."""
    return partner_named(backend, database, clock, "shop")


@pytest.fixture
def rival(backend, database, clock) -> Partner:
    """Another partner allowed every codes operation."""
    return partner_named(backend, database, clock, "rival")


def redemption(code: str) -> dict:
    form = {k: v for k, v in a_form().items() if k not in ("quantity", "validity")}
    return {**form, "code": code}


def test_generate_answers_201_with_the_batch_and_its_codes(shop):
    answer = shop.send("POST", f"{PREFIX}/batches", TERMS)
    assert answer.status_code == 201
    body = answer.get_json()
    assert len(body["codes"]) == 3 and all(codes.parse(c) == c for c in body["codes"])
    batch = body["batch"]
    assert batch["id"].startswith("bat-") and batch["validity"] == "45d"
    assert batch["counts"] == {"total": 3, "redeemed": 0, "deleted": 0, "unused": 3}
    assert answer.headers["Location"] == f"{PREFIX}/batches/{batch['id']}"
    assert answer.headers["Cache-Control"] == "no-store" and "app_id" not in batch


def test_generate_gives_csv_when_asked(shop):
    answer = shop.send("POST", f"{PREFIX}/batches", TERMS, accept="text/csv")
    assert answer.status_code == 201 and answer.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert rows[0] == ["code", "batch"] and len(rows) == 4
    assert {row[1] for row in rows[1:]} == {answer.headers["Location"].rsplit("/", 1)[1]}


def test_the_codes_are_stored_only_as_hashes(shop, database):
    made = shop.generate()["codes"]
    with database.transaction() as connection:
        stored = " ".join(connection.execute(select(activation_codes.c.code_hash)).scalars())
    assert not any(code.replace("-", "") in stored.upper() for code in made)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"count": 10_001}, "count"),
        ({"product": "acme-os"}, "product"),
        ({"valid_until": "2026-11-01T00:00:00Z"}, "valid_until"),
        ({"valid_until": "soon"}, "valid_until"),
        ({"validity": "1y"}, "days"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_wrong_terms_are_422_with_a_message_per_field(shop, changes, field):
    answer = shop.send("POST", f"{PREFIX}/batches", {**TERMS, **changes})
    assert answer.status_code == 422
    assert field in answer.get_json()["fields"]


def test_at_most_ten_thousand_codes_a_batch_through_the_api(shop):
    answer = shop.send("POST", f"{PREFIX}/batches", {**TERMS, "count": 10_001})
    assert "dingpass codes generate" in answer.get_json()["fields"]["count"]["en"]


def test_a_batch_shows_its_counts_to_its_app_only(shop, rival):
    batch = shop.generate()["batch"]["id"]
    answer = shop.send("GET", f"{PREFIX}/batches/{batch}")
    assert answer.status_code == 200 and answer.get_json()["counts"]["unused"] == 3
    refused = rival.send("GET", f"{PREFIX}/batches/{batch}")
    assert refused.status_code == 404 and refused.get_json()["error"] == "batch_unknown"


def test_an_app_lists_its_own_batches_only(shop, rival):
    first, second = (shop.generate()["batch"]["id"] for _ in range(2))
    rival.generate()
    listed = shop.send("GET", f"{PREFIX}/batches").get_json()["batches"]
    assert [batch["id"] for batch in listed] == [second, first]


def test_a_batch_made_for_an_app_on_the_command_line_is_the_apps_to_redeem(
    shop, rival, database, clock, config
):
    settings = dataclasses.replace(config, code_hash_key=CODE_KEY)
    window = ["--valid-from", "2026-11-01", "--valid-until", "2099-01-01"]
    made = CliRunner().invoke(
        code_commands.group,
        ["generate", "--product", "acme-erp", "--count", "1", *window, "--app", "shop"],
        obj=script_info(settings),
    )
    assert made.exit_code == 0, made.output
    code = made.output.splitlines()[1].split(",")[0]
    assert rival.send("POST", f"{PREFIX}/redeem", redemption(code)).status_code == 422
    assert shop.send("POST", f"{PREFIX}/redeem", redemption(code)).status_code == 201


def test_query_says_state_product_and_window(shop):
    code = shop.generate()["codes"][0]
    answer = shop.send("POST", f"{PREFIX}/query", {"code": code.lower()})
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["code"], body["state"], body["product"]) == (code, "unused", "acme-erp")
    assert (body["valid_from"], body["valid_until"]) == (TERMS["valid_from"], TERMS["valid_until"])


def test_query_of_a_redeemed_code_never_says_who(shop):
    code = shop.generate()["codes"][0]
    shop.send("POST", f"{PREFIX}/redeem", redemption(code))
    body = shop.send("POST", f"{PREFIX}/query", {"code": code}).get_json()
    assert body["state"] == "redeemed"
    assert not {"redeemed_by", "application", "license"} & body.keys()
    assert "shop" not in json.dumps(body)


def test_query_of_another_apps_code_says_unknown(shop, rival):
    code = shop.generate()["codes"][0]
    body = rival.send("POST", f"{PREFIX}/query", {"code": code}).get_json()
    assert body == {"code": code, "state": "unknown"}


def test_query_of_a_mistyped_code_is_422_on_the_code_field(shop):
    code = shop.generate()["codes"][0]
    typo = ("1" if code[0] != "1" else "2") + code[1:]
    answer = shop.send("POST", f"{PREFIX}/query", {"code": typo})
    assert answer.status_code == 422 and answer.get_json()["error"] == "code_malformed"


def test_redeem_answers_201_and_records_the_app_as_redeemer(shop, database):
    code = shop.generate()["codes"][0]
    answer = shop.send("POST", f"{PREFIX}/redeem", redemption(code))
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["status_url"] == f"https://apply.example.com/status/{body['token']}"
    with database.transaction() as connection:
        redeemers = connection.execute(select(activation_codes.c.redeemed_by)).scalars().all()
    assert sorted(redeemers, key=str) == [None, None, "shop"]


def test_a_redemption_sent_again_under_its_request_id_gets_the_first_answer(shop):
    code = shop.generate()["codes"][0]
    first = shop.send("POST", f"{PREFIX}/redeem", {**redemption(code), "request_id": "order-7"})
    again = shop.send("POST", f"{PREFIX}/redeem", {**redemption(code), "request_id": "order-7"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json()["number"] == first.get_json()["number"]
    assert again.headers["Idempotent-Replayed"] == "true"


def test_another_apps_request_id_is_its_own(shop, rival):
    code = shop.generate()["codes"][0]
    shop.send("POST", f"{PREFIX}/redeem", {**redemption(code), "request_id": "order-7"})
    answer = rival.send("POST", f"{PREFIX}/redeem", {**redemption(code), "request_id": "order-7"})
    # Not the shop's answer replayed: the rival's own request, about a code it does not know.
    assert answer.status_code == 422 and answer.get_json()["error"] == "code_unknown"


def test_another_apps_code_cannot_be_redeemed_and_is_unknown_to_it(shop, rival):
    code = shop.generate()["codes"][0]
    answer = rival.send("POST", f"{PREFIX}/redeem", redemption(code))
    assert (answer.status_code, answer.get_json()["error"]) == (422, "code_unknown")
    assert shop.send("POST", f"{PREFIX}/redeem", redemption(code)).status_code == 201


def test_a_request_id_sent_again_with_another_body_is_a_conflict_in_the_callers_words(shop):
    first, second = shop.generate(count=2)["codes"]
    shop.send("POST", f"{PREFIX}/redeem", {**redemption(first), "request_id": "order-8"})
    answer = shop.send("POST", f"{PREFIX}/redeem", {**redemption(second), "request_id": "order-8"})
    assert answer.status_code == 409
    assert "request_id" in answer.get_json()["message"]["en"]


def test_a_product_that_is_not_a_string_is_422_not_500(shop):
    answer = shop.send("POST", f"{PREFIX}/batches", {**TERMS, "product": ["acme-erp"]})
    assert answer.status_code == 422 and "product" in answer.get_json()["fields"]


def test_redeeming_twice_through_the_api_is_refused_as_used(shop):
    code = shop.generate()["codes"][0]
    shop.send("POST", f"{PREFIX}/redeem", redemption(code))
    answer = shop.send("POST", f"{PREFIX}/redeem", redemption(code))
    assert answer.status_code == 422 and answer.get_json()["error"] == "code_used"


def test_delete_a_code_is_idempotent(shop):
    code = shop.generate()["codes"][0]
    first = shop.send("POST", f"{PREFIX}/delete", {"code": code})
    again = shop.send("POST", f"{PREFIX}/delete", {"code": code})
    assert (first.status_code, first.get_json()["deleted_now"]) == (200, True)
    assert (again.status_code, again.get_json()["deleted_now"]) == (200, False)
    assert shop.send("POST", f"{PREFIX}/query", {"code": code}).get_json()["state"] == "deleted"


def test_a_redeemed_code_cannot_be_deleted(shop):
    code = shop.generate()["codes"][0]
    shop.send("POST", f"{PREFIX}/redeem", redemption(code))
    answer = shop.send("POST", f"{PREFIX}/delete", {"code": code})
    assert answer.status_code == 409 and answer.get_json()["error"] == "code_used"


def test_another_apps_code_cannot_be_deleted(shop, rival):
    code = shop.generate()["codes"][0]
    answer = rival.send("POST", f"{PREFIX}/delete", {"code": code})
    assert answer.status_code == 404 and answer.get_json()["error"] == "code_unknown"
    assert shop.send("POST", f"{PREFIX}/query", {"code": code}).get_json()["state"] == "unused"


def test_delete_a_batch_is_idempotent_and_keeps_redeemed_codes(shop):
    made = shop.generate()
    batch, code = made["batch"]["id"], made["codes"][0]
    shop.send("POST", f"{PREFIX}/redeem", redemption(code))
    first = shop.send("DELETE", f"{PREFIX}/batches/{batch}").get_json()
    again = shop.send("DELETE", f"{PREFIX}/batches/{batch}").get_json()
    assert (first["deleted_now"], again["deleted_now"]) == (2, 0)
    assert first["counts"] == {"total": 3, "redeemed": 1, "deleted": 2, "unused": 0}
    assert shop.send("POST", f"{PREFIX}/query", {"code": code}).get_json()["state"] == "redeemed"


def test_another_apps_batch_cannot_be_deleted(shop, rival):
    batch = shop.generate()["batch"]["id"]
    assert rival.send("DELETE", f"{PREFIX}/batches/{batch}").status_code == 404
    assert shop.send("GET", f"{PREFIX}/batches/{batch}").get_json()["deleted_at"] is None


ROUTES = [
    ("codes.generate", "POST", "/batches", TERMS),
    ("codes.query", "GET", "/batches/bat-0000", None),
    ("codes.query", "POST", "/query", {"code": "x"}),
    ("codes.redeem", "POST", "/redeem", {"code": "x"}),
    ("codes.delete", "POST", "/delete", {"code": "x"}),
    ("codes.delete", "DELETE", "/batches/bat-0000", None),
]


@pytest.mark.parametrize(("scope", "method", "path", "body"), ROUTES)
def test_each_route_needs_its_scope(backend, database, clock, scope, method, path, body):
    others = ALL - {scope} | {"changes"}
    caller = partner_named(backend, database, clock, "partial", others)
    answer = caller.send(method, PREFIX + path, body)
    assert answer.status_code == 403 and answer.get_json()["error"] == "not_allowed"
    assert f"is not allowed {scope};" in answer.get_json()["message"]["en"]
    assert "`dingpass apps allow partial changes,codes." in answer.get_json()["message"]["en"]


def test_every_route_has_a_scope_and_no_route_takes_a_code_in_its_url(backend):
    rules = [r for r in backend.url_map.iter_rules() if r.endpoint.startswith("codes_api.")]
    assert {r.endpoint.split(".", 1)[1] for r in rules} == set(SCOPES)
    assert all("code" not in arguments for r in rules for arguments in r.arguments)


def test_an_unsigned_request_is_refused(backend):
    answer = backend.test_client().post(f"{PREFIX}/query", json={"code": "x"})
    assert answer.status_code == 401
