"""Redeeming an activation code on the QR page, on SQLite and MariaDB: exactly once, each
refusal its own answer, guessing throttled, and the license issued and mailed at once."""

import dataclasses
import threading
from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from backend.app import create_app
from backend.applications import service
from backend.codes import redeem, throttle
from backend.codes.hashing import code_hash
from backend.storage import codes as store
from backend.storage.schema import activation_codes, applications, jobs, licenses, rate_limits
from license import codes, key_ring, verify
from sandbox.mail import MailSandbox
from tests.conftest import VECTORS
from tests.integration.conftest import SignedClient, a_form, meanwhile, statements_sent

CODE_KEY = "test-code-hash-key-0123456789abcdef"
FEATURE = "9F2C-41AB-77D0-E5C3"


@pytest.fixture
def mailbox():
    sandbox = MailSandbox().start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def settings(config, mailbox):
    return dataclasses.replace(
        config,
        smtp_port=mailbox.smtp_port,
        license_signing_key=str(VECTORS / "test-signing-key.pem"),
        code_hash_key=CODE_KEY,
    )


@pytest.fixture
def shop(settings, database, clock):
    """The backend, signing licenses with the vectors' key and mailing to the sandbox."""
    app = create_app(settings, clock=clock)
    yield app
    app.extensions["database"].dispose()


@pytest.fixture
def page(shop) -> SignedClient:
    return SignedClient(shop)


@pytest.fixture
def batch(database, clock):
    """make(count=1, **terms): codes of a new batch (acme-erp, quantity 10, 30 days, open
    from a day ago for thirty days, unless ``terms`` say otherwise)."""

    def make(count: int = 1, **terms) -> list[str]:
        made = [codes.generate() for _ in range(count)]
        row = {
            "product": "acme-erp",
            "quantity": 10,
            "validity": "30d",
            "valid_from": clock() - timedelta(days=1),
            "valid_until": clock() + timedelta(days=30),
            "size": count,
            "created_at": clock(),
            **terms,
        }
        with database.transaction() as connection:
            made_batch = store.insert_batch(connection, **row)
            hashes = [code_hash(CODE_KEY.encode(), code) for code in made]
            store.insert_hashes(connection, made_batch.id, hashes)
        return made

    return make


def redemption(code: str, **changes) -> dict:
    """The page's body: the apply form without its terms, and the code."""
    form = {k: v for k, v in a_form(**changes).items() if k not in ("quantity", "validity")}
    return {**form, "code": code}


def a_typo(code: str) -> str:
    """``code`` with its first symbol changed: the check symbol catches it."""
    first = "1" if code[0] != "1" else "2"
    return first + code[1:]


def count(database, table, *where) -> int:
    with database.transaction() as connection:
        return len(connection.execute(select(table).where(*where)).all())


def test_a_valid_code_answers_201_like_an_application(page, batch):
    (code,) = batch()
    answer = page.post("/redemptions", redemption(code))
    assert answer.status_code == 201
    body = answer.get_json()
    assert body["number"].startswith("A20261123-")
    assert body["status_url"] == f"https://apply.example.com/status/{body['token']}"


def test_the_license_is_issued_at_once_and_mailed_with_the_batchs_terms(
    page, batch, shop, mailbox, clock
):
    (code,) = batch(quantity=10, validity="30d")
    body = page.post("/redemptions", redemption(code, quantity=1, validity="1y")).get_json()
    assert body["status"] == "issued"  # signed within the request
    assert shop.extensions["runner"]().run_due() == 1  # the mail
    (message,) = mailbox.mailbox.messages.values()
    (attachment,) = message.iter_attachments()
    ring = key_ring([(VECTORS / "test-public-key.pem").read_bytes()])
    lic = verify(attachment.get_content(), ring, clock(), FEATURE, "acme-erp")
    assert lic.quantity == 10 and lic.valid_until == lic.issued_at + timedelta(days=30)
    assert lic.application == body["number"]


def test_a_batch_validity_in_days_gives_a_license_of_that_many_days(page, batch, shop, database):
    (code,) = batch(validity="45d")
    page.post("/redemptions", redemption(code))
    with database.transaction() as connection:
        issued, until = connection.execute(
            select(licenses.c.issued_at, licenses.c.valid_until)
        ).one()
    assert until - issued == timedelta(days=45)


def test_no_approval_is_asked_for(page, batch, shop):
    (code,) = batch()
    token = page.post("/redemptions", redemption(code)).get_json()["token"]
    shop.extensions["runner"]().run_due()
    status = page.get(f"/applications/{token}").get_json()
    timeline = [entry["status"] for entry in status["timeline"]]
    assert timeline == ["submitted", "approved", "issued", "delivered"]
    assert status["quantity"] == 10 and status["validity"] == "30d"


def test_the_code_records_its_application_and_the_client_address(page, batch, database):
    (code,) = batch()
    number = page.post("/redemptions", redemption(code), ip="198.51.100.4").get_json()["number"]
    with database.transaction() as connection:
        row = connection.execute(select(activation_codes)).mappings().one()
        made = connection.execute(
            select(applications.c.number).where(applications.c.id == row["application_id"])
        ).scalar()
    assert row["redeemed_by"] == "198.51.100.4" and made == number


def test_a_code_is_read_forgivingly(page, batch):
    (code,) = batch()
    typed = code.replace("-", " ").lower().replace("0", "o").replace("1", "l")
    assert page.post("/redemptions", redemption(typed)).status_code == 201


def test_a_used_code_is_refused_saying_only_that(page, batch):
    (code,) = batch()
    page.post("/redemptions", redemption(code))
    answer = page.post("/redemptions", redemption(code, email="other@example.com"))
    assert answer.status_code == 422
    body = answer.get_json()
    assert body["error"] == "code_used"
    assert body["fields"]["code"]["en"] == "This activation code has already been used."
    assert "198.51" not in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    ("terms", "error", "english"),
    [
        (
            {"valid_until": "now-1"},
            "code_expired",
            "This activation code expired on 2026-11-22 08:00 UTC.",
        ),
        (
            {"valid_from": "now+1"},
            "code_not_yet_valid",
            "This activation code can be used from 2026-11-24 08:00 UTC.",
        ),
        (
            {"product": "acme-crm", "quantity": 1, "validity": "1y"},
            "code_for_another_product",
            "This activation code is for Acme CRM Standard, not Acme ERP Enterprise.",
        ),
        (
            {"deleted_at": "now"},
            "code_deleted",
            "This activation code was withdrawn by the vendor.",
        ),
    ],
)
def test_each_state_of_a_code_has_its_own_answer(page, batch, clock, terms, error, english):
    days = {"now-1": -1, "now+1": 1, "now": 0}
    when = {k: clock() + timedelta(days=days[v]) if v in days else v for k, v in terms.items()}
    if "valid_until" in when:
        when["valid_from"] = clock() - timedelta(days=10)
    (code,) = batch(**when)
    answer = page.post("/redemptions", redemption(code))
    assert answer.status_code == 422
    assert answer.get_json()["error"] == error
    assert answer.get_json()["fields"]["code"]["en"] == english


def test_a_deleted_code_of_a_live_batch_is_refused(page, batch, database, clock):
    code, other = batch(count=2)
    with database.transaction() as connection:
        record = store.by_hash(connection, code_hash(CODE_KEY.encode(), code))
        store.delete_code(connection, record.id, clock())
    assert page.post("/redemptions", redemption(code)).get_json()["error"] == "code_deleted"
    assert page.post("/redemptions", redemption(other)).status_code == 201


def test_an_unknown_code_is_refused_as_unknown(page):
    answer = page.post("/redemptions", redemption(codes.generate()))
    assert answer.get_json()["error"] == "code_unknown"
    assert answer.get_json()["fields"]["code"]["zh"] == "没有这个激活码，请核对后重试。"


@pytest.mark.parametrize(
    ("typed", "english"),
    [
        ("typo", "This activation code has a typing mistake: check each character."),
        ("short", "An activation code has 20 characters, this one 19: check that none is missing."),
        ("U", "An activation code has only digits and letters (no U); check it."),
        ("", "Enter the activation code."),
    ],
)
def test_a_malformed_code_gets_its_own_answer(page, typed, english):
    code = codes.generate()
    text = {"typo": a_typo(code), "short": code[:-1], "U": "U" + code[1:], "": ""}[typed]
    answer = page.post("/redemptions", redemption(text))
    assert answer.status_code == 422 and answer.get_json()["error"] == "code_malformed"
    assert answer.get_json()["fields"]["code"]["en"] == english


def test_a_typo_is_caught_without_a_query(page, batch, shop):
    (code,) = batch()
    with statements_sent(shop.extensions["database"].engine) as statements:
        answer = page.post("/redemptions", redemption(a_typo(code)))
    assert answer.get_json()["error"] == "code_malformed"
    assert statements == []


def test_a_wrong_form_takes_nothing(page, batch, database):
    (code,) = batch()
    answer = page.post("/redemptions", redemption(code, email="zhang@"))
    assert answer.status_code == 422 and list(answer.get_json()["fields"]) == ["email"]
    assert count(database, activation_codes, activation_codes.c.redeemed_at.is_not(None)) == 0
    assert page.post("/redemptions", redemption(code)).status_code == 201


def test_a_retry_under_the_same_key_gets_the_first_answer(page, batch, database):
    (code,) = batch()
    first = page.post("/redemptions", redemption(code), key="k-1")
    again = page.post("/redemptions", redemption(code), key="k-1")
    assert again.status_code == 201 and again.get_json()["number"] == first.get_json()["number"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(database, applications) == 1


def test_the_same_key_with_another_code_is_a_conflict(page, batch):
    one, two = batch(count=2)
    page.post("/redemptions", redemption(one), key="k-2")
    answer = page.post("/redemptions", redemption(two), key="k-2")
    assert answer.status_code == 409 and answer.get_json()["error"] == "conflict"


def test_failures_from_one_address_are_throttled(page, batch, clock):
    (code,) = batch()
    for n in range(throttle.FAILURES_PER_IP):
        unknown = redemption(codes.generate(), feature_code=f"9F2C-41AB-77D0-{n:04X}")
        assert page.post("/redemptions", unknown).status_code == 422
    answer = page.post("/redemptions", redemption(code))
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "900"
    assert "Too many failed activation codes" in answer.get_json()["message"]["en"]
    assert page.post("/redemptions", redemption(code), ip="198.51.100.9").status_code == 201
    clock.advance(throttle.FAILURE_WINDOW)
    assert page.post("/redemptions", redemption(codes.generate())).status_code == 422


def test_failures_for_one_feature_code_are_throttled_from_any_address(page, batch):
    (code,) = batch()
    for n in range(throttle.FAILURES_PER_FEATURE_CODE):
        answer = page.post("/redemptions", redemption(codes.generate()), ip=f"198.51.100.{n}")
        assert answer.status_code == 422
    answer = page.post("/redemptions", redemption(code), ip="198.51.100.99")
    assert answer.status_code == 429
    other = redemption(code, feature_code="0000-0000-0000-0001")
    assert page.post("/redemptions", other, ip="198.51.100.99").status_code == 201


def test_guesses_sent_at_once_get_no_more_answers_than_the_limit(shop, batch):
    batch()
    answers, start = [], threading.Barrier(30)

    def guesser(n: int) -> None:
        body = redemption(codes.generate(), feature_code=f"9F2C-41AB-{n:04X}-E5C3")
        client = SignedClient(shop)
        start.wait()
        answers.append(client.post("/redemptions", body, ip="198.51.100.66").status_code)

    threads = [threading.Thread(target=guesser, args=(n,)) for n in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers.count(422) <= throttle.FAILURES_PER_IP
    assert answers.count(429) >= 30 - throttle.FAILURES_PER_IP


@pytest.mark.mariadb
def test_a_failure_counted_for_the_feature_code_meanwhile_leaves_the_attempt_counted(
    snapshot_isolation, database, clock
):
    feature = ("redeem-feature:acme-erp:9F2C-41AB-77D0-E5C3", throttle.FAILURES_PER_FEATURE_CODE)
    counters = [("redeem-ip:198.51.100.7", throttle.FAILURES_PER_IP), feature]
    other = throttle.Throttle(database, throttle.FAILURE_WINDOW, clock)
    rival = threading.Thread(target=other.charge, args=([("redeem-ip:198.51.100.8", 10), feature],))

    def guess() -> None:  # another address's guess for the same code, after this one's read
        rival.start()
        rival.join(0.5)  # done at once, unless this attempt's count holds its row

    charging = throttle.Throttle(snapshot_isolation, throttle.FAILURE_WINDOW, clock)
    try:
        with meanwhile(snapshot_isolation.engine, lambda sql: sql.startswith("SELECT"), guess):
            charging.charge(counters)
    finally:
        rival.join()
    with database.transaction() as connection:
        count = connection.execute(
            select(rate_limits.c.count).where(rate_limits.c.key == feature[0])
        )
        assert count.scalar_one() == 2


def test_addresses_of_one_ipv6_network_share_their_count(page, batch):
    (code,) = batch()
    for n in range(throttle.FAILURES_PER_IP):
        unknown = redemption(codes.generate(), feature_code=f"9F2C-41AB-77D0-{n:04X}")
        assert page.post("/redemptions", unknown, ip=f"2001:db8:1:2::{n + 1:x}").status_code == 422
    answer = page.post("/redemptions", redemption(code), ip="2001:db8:1:2::ffff")
    assert answer.status_code == 429


@pytest.mark.mariadb
def test_a_code_deleted_while_it_is_redeemed_is_refused_as_deleted(
    page, batch, database, database_url, clock, monkeypatch
):
    if not database_url.startswith("mysql"):
        pytest.skip("two writers at once: SQLite's writes take turns")
    (code,) = batch()
    take = store.take

    def deleted_first(connection, code_id, now, redeemed_by):
        with database.transaction() as other:  # another request deletes it meanwhile
            store.delete_code(other, code_id, now)
        return take(connection, code_id, now, redeemed_by)

    monkeypatch.setattr(store, "take", deleted_first)
    answer = page.post("/redemptions", redemption(code))
    assert (answer.status_code, answer.get_json()["error"]) == (422, "code_deleted")


def test_typos_are_not_counted_as_guesses(page, batch):
    (code,) = batch()
    for _ in range(throttle.FAILURES_PER_FEATURE_CODE + 1):
        assert page.post("/redemptions", redemption(a_typo(code))).status_code == 422
    assert page.post("/redemptions", redemption(code)).status_code == 201


def test_fifty_concurrent_redeemers_of_one_code_make_one_license(shop, batch, database):
    (code,) = batch()
    answers, start = [], threading.Barrier(50)

    def redeemer(n: int) -> None:
        client = SignedClient(shop)
        body = redemption(code, feature_code=f"9F2C-41AB-{n:04X}-E5C3")
        start.wait()
        answers.append(client.post("/redemptions", body, ip=f"198.51.100.{n}"))

    threads = [threading.Thread(target=redeemer, args=(n,)) for n in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201] + [422] * 49
    refusals = {answer.get_json()["error"] for answer in answers if answer.status_code == 422}
    assert refusals == {"code_used"}
    assert count(database, applications) == 1
    assert count(database, jobs, jobs.c.kind == "issue_license") == 1
    assert count(database, licenses) == 1


def numbers_drawn(monkeypatch, *numbers: str):
    """Make redemptions draw ``numbers`` in turn; the iterator tells what is left undrawn."""
    drawn = iter(numbers)
    monkeypatch.setattr(service, "_new_number", lambda at: next(drawn))
    return drawn


def test_a_number_taken_already_is_drawn_again(page, batch, database, monkeypatch):
    drawn = numbers_drawn(monkeypatch, "A20261123-TAKEN0", "A20261123-TAKEN0", "A20261123-FREE00")
    first, second = batch(count=2)
    assert page.post("/redemptions", redemption(first)).status_code == 201
    again = page.post("/redemptions", redemption(second, email="li@example.com"))
    assert again.status_code == 201 and again.get_json()["number"] == "A20261123-FREE00"
    assert list(drawn) == [] and count(database, applications) == 2


def test_a_clash_on_anything_but_the_number_is_not_drawn_again(page, batch, database, monkeypatch):
    numbers = ("A20261123-FREE00", "A20261123-OTHER1", "A20261123-OTHER2", "A20261123-OTHER3")
    drawn = numbers_drawn(monkeypatch, *numbers)
    monkeypatch.setattr(redeem, "secrets", SimpleNamespace(token_urlsafe=lambda n: "same"))
    first, second = batch(count=2)
    assert page.post("/redemptions", redemption(first)).status_code == 201
    answer = page.post("/redemptions", redemption(second, email="li@example.com"))
    assert answer.status_code == 500 and list(drawn) == list(numbers[2:])
    assert count(database, activation_codes, activation_codes.c.redeemed_at.is_not(None)) == 1
