"""Code batches: made once and stored hashed, looked up in every state, deleted idempotently."""

import dataclasses
import secrets
import subprocess
import sys
from datetime import timedelta
from itertools import chain

import pytest
from sqlalchemy import func, select

from backend.applications.validation import validate
from backend.catalogue import load_catalogue
from backend.codes import batches
from backend.codes.batches import BatchTerms, check_terms
from backend.codes.errors import BadTerms, CodeRedeemed, UnknownBatch, UnknownCode
from backend.codes.hashing import code_hash
from backend.codes.lookup import CodeState, look_up
from backend.storage import codes as store
from backend.storage.applications import NewApplication, insert_application
from backend.storage.licenses import IssuedLicense, store_license
from backend.storage.schema import activation_codes, code_batches
from license import ActivationCodeError, codes
from tests.integration.conftest import CATALOGUE, a_form

KEY = b"test-code-hash-key-0123456789abcdef"
CATALOG = load_catalogue(CATALOGUE)
MIB = 1024 * 1024


@pytest.fixture
def terms(clock) -> BatchTerms:
    """A month's window from now, for five seats of acme-erp for a year."""
    now = clock()
    return BatchTerms("acme-erp", 50, now, now + timedelta(days=30), quantity=5, validity="1y")


def made(database, clock, terms, **changes) -> tuple[store.Batch, list[str]]:
    """A batch generated with ``changes`` to ``terms``, and the codes it handed out."""
    handed: list[str] = []
    batch = batches.generate(
        database, KEY, CATALOG, dataclasses.replace(terms, **changes), clock(), handed.extend
    )
    return batch, handed


def state(database, code, at):
    with database.transaction() as connection:
        return look_up(connection, KEY, code, at).state


def stored(database, table) -> list[tuple]:
    with database.transaction() as connection:
        return [tuple(row) for row in connection.execute(select(table))]


def redeem(database, code, at, by="203.0.113.7") -> int:
    """Redeem ``code`` as the redemption path does (store.take); the code's row id."""
    with database.transaction() as connection:
        record = look_up(connection, KEY, code, at).record
        assert store.take(connection, record.id, at, by)
        return record.id


def test_a_batch_hands_out_distinct_codes_that_parse_and_are_unused(database, clock, terms):
    batch, handed = made(database, clock, terms)
    assert len(handed) == len(set(handed)) == batch.size == 50
    assert all(codes.parse(code) == code for code in handed)
    assert {state(database, code, clock()) for code in handed} == {CodeState.UNUSED}


def test_the_batch_records_its_terms(database, clock, terms):
    batch, _ = made(database, clock, terms, note="spring sale", validity="400d")
    assert batch.public_id.startswith("bat-")
    assert (batch.product, batch.quantity, batch.validity, batch.note) == (
        "acme-erp",
        5,
        "400d",
        "spring sale",
    )
    assert (batch.valid_from, batch.valid_until) == (terms.valid_from, terms.valid_until)


def test_only_keyed_hashes_are_stored_never_a_code(database, clock, terms):
    _, handed = made(database, clock, terms)
    rows = stored(database, activation_codes) + stored(database, code_batches)
    text = repr(rows)
    assert not any(code in text or code.replace("-", "") in text for code in handed)
    hashes = {row[2] for row in stored(database, activation_codes)}
    assert hashes == {code_hash(KEY, code) for code in handed}


def test_progress_hears_of_every_code_once_a_chunk_at_a_time(database, clock, terms):
    heard: list[int] = []
    batches.generate(
        database,
        KEY,
        CATALOG,
        dataclasses.replace(terms, count=2500),
        clock(),
        lambda chunk: None,
        heard.append,
    )
    assert heard == [1000, 1000, 500]


def test_a_chunk_that_meets_a_stored_code_is_made_afresh(database, clock, terms):
    first, (taken,) = made(database, clock, terms, count=1)
    maker = chain([taken], iter(codes.generate, None))  # the stored code first, then fresh ones
    handed: list[str] = []
    batches.generate(
        database, KEY, CATALOG, terms, clock(), handed.extend, make_code=maker.__next__
    )
    assert len(handed) == terms.count and taken not in handed
    with database.transaction() as connection:
        assert look_up(connection, KEY, taken, clock()).record.batch.id == first.id


def test_a_failure_midway_stores_nothing_of_the_batch(database, clock, terms):
    def sink(chunk):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        batches.generate(database, KEY, CATALOG, terms, clock(), sink)
    assert stored(database, code_batches) == [] and stored(database, activation_codes) == []


GENERATE_AND_MEASURE = """
import sys, tracemalloc
from pathlib import Path
from datetime import datetime, timedelta, timezone
from backend.catalogue import load_catalogue
from backend.codes import batches
from backend.codes.batches import BatchTerms
from backend.storage.database import Database

now = datetime.now(timezone.utc)
terms = BatchTerms("acme-erp", 100_000, now, now + timedelta(days=30), quantity=5, validity="1y")
database = Database(sys.argv[1])
handed = []
tracemalloc.start()
batch = batches.generate(
    database, sys.argv[2].encode(), load_catalogue(Path(sys.argv[3])), terms, now,
    lambda chunk: handed.append(len(chunk)),
)
print(tracemalloc.get_traced_memory()[1], sum(handed), batch.id)
"""


@pytest.mark.mariadb
def test_a_hundred_thousand_codes_go_in_one_batch_in_bounded_memory(database_url, database):
    if not database_url.startswith("mysql"):
        pytest.skip("the size that matters is MariaDB's")
    # Measured in a process of its own, as `dingpass codes generate` runs: what a long test
    # session left behind in this one must not count against the generation.
    args = [sys.executable, "-c", GENERATE_AND_MEASURE, database_url, KEY.decode(), str(CATALOGUE)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peak, handed, batch_id = map(int, done.stdout.split())
    with database.transaction() as connection:
        assert store.counts(connection, batch_id)["unused"] == handed == 100_000
        assert connection.execute(select(func.count()).select_from(activation_codes)).scalar() == (
            100_000
        )
    # The codes alone, held in a list, would take 8 MiB (72-byte strings, 8-byte slots), their
    # hashes and rows five times that: a chunk at a time keeps the peak near one chunk's worth.
    assert peak < 4 * MIB


# -- where a code stands ---------------------------------------------------------------------


def test_a_code_never_generated_is_unknown(database, clock, terms):
    made(database, clock, terms, count=1)
    assert state(database, codes.generate(), clock()) is CodeState.UNKNOWN


def test_a_code_is_not_yet_valid_before_its_window_and_expired_at_its_end(database, clock, terms):
    _, (code,) = made(database, clock, terms, count=1)
    assert state(database, code, terms.valid_from - timedelta(seconds=1)) is CodeState.NOT_YET_VALID
    assert state(database, code, terms.valid_from) is CodeState.UNUSED
    assert state(database, code, terms.valid_until) is CodeState.EXPIRED


def test_a_redeemed_code_stays_redeemed_even_after_its_window(database, clock, terms):
    _, (code,) = made(database, clock, terms, count=1)
    redeem(database, code, clock())
    assert state(database, code, clock()) is CodeState.REDEEMED
    assert state(database, code, terms.valid_until + timedelta(days=1)) is CodeState.REDEEMED


def test_a_deleted_code_and_the_codes_of_a_deleted_batch_are_deleted(database, clock, terms):
    batch, (one, other) = made(database, clock, terms, count=2)
    batches.delete_code(database, KEY, one, clock())
    assert state(database, one, clock()) is CodeState.DELETED
    assert state(database, other, clock()) is CodeState.UNUSED
    batches.delete_batch(database, batch.public_id, clock())
    assert state(database, other, clock()) is CodeState.DELETED


# -- describe --------------------------------------------------------------------------------


def test_describe_gives_the_batch_its_terms_and_window(database, clock, terms):
    batch, (code,) = made(database, clock, terms, count=1)
    described = batches.describe(database, KEY, code.lower().replace("-", " "), clock())
    assert described == {
        "code": code,
        "state": "unused",
        "batch": batch.public_id,
        "product": "acme-erp",
        "quantity": 5,
        "validity": "1y",
        "valid_from": "2026-11-23T08:00:00Z",
        "valid_until": "2026-12-23T08:00:00Z",
        "redeemed_at": None,
        "deleted_at": None,
        "application": None,
        "license": None,
    }


def test_describe_of_an_unknown_code_says_only_that(database, clock):
    code = codes.generate()
    assert batches.describe(database, KEY, code, clock()) == {"code": code, "state": "unknown"}


def test_describe_names_the_redeemer_to_operators_only(database, clock, terms):
    _, (code,) = made(database, clock, terms, count=1)
    redeem(database, code, clock(), by="203.0.113.7")
    public = batches.describe(database, KEY, code, clock())
    operator = batches.describe(database, KEY, code, clock(), with_redeemer=True)
    assert public["state"] == "redeemed" and public["redeemed_at"] == "2026-11-23T08:00:00Z"
    assert "redeemed_by" not in public and "203.0.113.7" not in repr(public)
    assert operator["redeemed_by"] == "203.0.113.7"


def test_describe_names_the_application_and_license_a_code_made(database, clock, terms):
    _, (code,) = made(database, clock, terms, count=1)
    code_id = redeem(database, code, clock())
    with database.transaction() as connection:
        form = validate(a_form(), CATALOG)
        new = NewApplication(
            form, "A20261123-000042", secrets.token_hex(16), "203.0.113.7", clock()
        )
        application_id = insert_application(connection, new)
        store.attach_application(connection, code_id, application_id)
        store_license(
            connection,
            IssuedLicense("L20261123-CODE0001", application_id, "k1", "text", clock(), None),
        )
    described = batches.describe(database, KEY, code, clock())
    assert (described["application"], described["license"]) == (
        "A20261123-000042",
        "L20261123-CODE0001",
    )


def test_describe_refuses_a_typo_before_any_lookup(database, clock, terms):
    _, (code,) = made(database, clock, terms, count=1)
    typo = ("1" if code[0] != "1" else "2") + code[1:]
    with pytest.raises(ActivationCodeError, match="typing mistake"):
        batches.describe(database, KEY, typo, clock())


# -- summary and listing ---------------------------------------------------------------------


def test_a_summary_counts_unused_redeemed_and_deleted_codes(database, clock, terms):
    batch, handed = made(database, clock, terms, count=5)
    redeem(database, handed[0], clock())
    batches.delete_code(database, KEY, handed[1], clock())
    summary = batches.summary(database, batch.public_id)
    assert summary["id"] == batch.public_id and summary["size"] == 5
    assert summary["counts"] == {"total": 5, "redeemed": 1, "deleted": 1, "unused": 3}


def test_the_listing_shows_every_batch_newest_first(database, clock, terms):
    older, _ = made(database, clock, terms, count=1)
    newer, _ = made(database, clock, terms, count=2)
    batches.delete_batch(database, older.public_id, clock())
    listed = batches.listing(database)
    assert [b["id"] for b in listed] == [newer.public_id, older.public_id]
    assert listed[1]["deleted_at"] == "2026-11-23T08:00:00Z"
    assert [b["counts"]["total"] for b in listed] == [2, 1]


def test_a_summary_of_an_unknown_batch_says_how_to_list_them(database):
    with pytest.raises(UnknownBatch, match="dingpass codes batches"):
        batches.summary(database, "bat-0000000000000000")


# -- deleting --------------------------------------------------------------------------------


def test_deleting_a_code_twice_deletes_it_once(database, clock, terms):
    _, (code,) = made(database, clock, terms, count=1)
    assert batches.delete_code(database, KEY, code, clock()) is True
    assert batches.delete_code(database, KEY, code, clock()) is False


def test_a_redeemed_code_cannot_be_deleted(database, clock, terms):
    _, (code,) = made(database, clock, terms, count=1)
    redeem(database, code, clock())
    with pytest.raises(CodeRedeemed, match="cannot be deleted"):
        batches.delete_code(database, KEY, code, clock())
    assert state(database, code, clock()) is CodeState.REDEEMED


def test_deleting_an_unknown_code_says_it_is_unknown(database, clock):
    with pytest.raises(UnknownCode, match="CODE_HASH_KEY"):
        batches.delete_code(database, KEY, codes.generate(), clock())


def test_deleting_a_batch_twice_deletes_its_codes_once(database, clock, terms):
    batch, _ = made(database, clock, terms, count=3)
    assert batches.delete_batch(database, batch.public_id, clock()) == 3
    assert batches.delete_batch(database, batch.public_id, clock()) == 0


def test_deleting_a_batch_leaves_its_redeemed_codes_redeemed(database, clock, terms):
    batch, (used, unused) = made(database, clock, terms, count=2)
    redeem(database, used, clock())
    assert batches.delete_batch(database, batch.public_id, clock()) == 1
    assert batches.summary(database, batch.public_id)["counts"]["redeemed"] == 1
    assert state(database, used, clock()) is CodeState.REDEEMED


def test_deleting_an_unknown_batch_says_so(database, clock):
    with pytest.raises(UnknownBatch):
        batches.delete_batch(database, "bat-0000000000000000", clock())


# -- terms -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"product": "acme-ops"}, "product", "no product 'acme-ops' in the catalogue"),
        ({"quantity": 7}, "quantity", "quantity 7 is not offered: Choose one of 1, 5, 10"),
        ({"count": 0}, "count", "0 codes: a batch has 1 to 100000"),
        ({"count": 100_001}, "count", "100001 codes"),
        ({"validity": "forever"}, "validity", "validity 'forever' is unknown"),
        ({"validity": "3651d"}, "validity", "from 1d to 3650d"),
        ({"note": "two\nlines"}, "note", "one line of at most 200"),
        ({"note": "x" * 201}, "note", "one line of at most 200"),
    ],
)
def test_bad_terms_are_refused_field_by_field_and_store_nothing(
    database, clock, terms, changes, field, message
):
    with pytest.raises(BadTerms) as refused:
        made(database, clock, terms, **changes)
    assert list(refused.value.fields) == [field]
    assert message in refused.value.fields[field]["en"] and refused.value.fields[field]["zh"]
    assert stored(database, code_batches) == []


def test_a_window_must_end_after_it_starts_and_after_now(clock, terms):
    backwards = dataclasses.replace(terms, valid_until=terms.valid_from)
    with pytest.raises(BadTerms, match="valid_until: the window ends"):
        check_terms(CATALOG, backwards, clock())
    with pytest.raises(BadTerms, match="has passed"):
        check_terms(CATALOG, terms, terms.valid_until)


def test_a_window_needs_times_with_a_zone(clock, terms):
    naive = dataclasses.replace(terms, valid_from=terms.valid_from.replace(tzinfo=None))
    with pytest.raises(BadTerms) as refused:
        check_terms(CATALOG, naive, clock())
    assert list(refused.value.fields) == ["valid_from"]


def test_every_wrong_field_is_named_at_once(clock, terms):
    wrong = dataclasses.replace(terms, product="nope", count=0, validity="0d")
    with pytest.raises(BadTerms) as refused:
        check_terms(CATALOG, wrong, clock())
    assert list(refused.value.fields) == ["product", "count", "validity"]


@pytest.mark.parametrize(
    "changes",
    [
        {"count": 1},
        {"count": 100_000},
        {"validity": "perpetual"},
        {"validity": "3650d"},
        {"product": "acme-crm", "quantity": 500, "validity": "7d"},
    ],
)
def test_terms_within_the_offer_are_taken(clock, terms, changes):
    check_terms(CATALOG, dataclasses.replace(terms, **changes), clock())
