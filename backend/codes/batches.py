"""Code batches: make one (its codes shown once, stored hashed), query it, delete it or a code.

The plain codes leave generate() through its ``sink`` and are never stored: the database holds
their keyed hashes (backend.codes.hashing), so a copy of it gives no code away.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from backend.applications.validation import quantity_message
from backend.catalogue import MAX_DAYS, VALIDITIES, Catalogue, validity_length
from backend.codes.errors import BadTerms, CodeRedeemed, UnknownBatch, UnknownCode
from backend.codes.hashing import code_hash
from backend.codes.lookup import Lookup, canonical, look_up
from backend.exceptions import Message
from backend.storage import applications, licenses
from backend.storage import codes as store
from backend.storage.codes import Batch
from backend.storage.database import Database
from license import codes

MAX_COUNT = 100_000
"""Codes in one batch: 100,000 go in bounded memory; more, make several batches."""
MAX_NOTE = 200
"""Characters of a batch's note (its column's width)."""
DEFAULT_VALIDITY = "1y"
"""The license a code gives when its batch names no validity."""
CHUNK = store.INSERT_CHUNK
"""Codes made, hashed, stored and handed out together: what generation holds in memory."""
CHUNK_ATTEMPTS = 3
"""Times a chunk is made afresh should one of its codes already be stored (see _insert_chunk)."""


@dataclass(frozen=True)
class BatchTerms:
    """What a batch is asked to be: how many codes, when they may be redeemed, for which license.

    ``validity`` is a key of backend.catalogue.VALIDITIES or "<N>d"; ``app_id`` is the API
    application that asked (None: the command line).
    """

    product: str
    count: int
    valid_from: datetime
    valid_until: datetime
    quantity: int = 1
    validity: str = DEFAULT_VALIDITY
    note: str = ""
    app_id: int | None = None


def generate(
    database: Database,
    key: bytes,
    catalogue: Catalogue,
    terms: BatchTerms,
    now: datetime,
    sink: Callable[[list[str]], None],
    progress: Callable[[int], None] | None = None,
    make_code: Callable[[], str] = codes.generate,
) -> Batch:
    """Record a batch of new codes in one transaction, handing each code to ``sink`` once.

    ``sink`` gets the codes a chunk at a time while the transaction is open: they are
    redeemable only once generate returns (an error rolls the whole batch back), so keep
    them from people until then. ``progress`` gets the number of codes each chunk added.
    Raises BadTerms, before anything is stored, when the terms cannot be.
    """
    check_terms(catalogue, terms, now)
    with database.transaction() as connection:
        batch = store.insert_batch(connection, **_row(terms), created_at=now)
        for size in _chunk_sizes(terms.count):
            sink(_insert_chunk(connection, key, batch.id, size, make_code))
            if progress is not None:
                progress(size)
    return batch


def check_terms(catalogue: Catalogue, terms: BatchTerms, now: datetime) -> None:
    """BadTerms with a message for each field that is wrong; nothing if every one is right."""
    errors = {
        **_product_errors(catalogue, terms),
        **_count_errors(terms.count),
        **_window_errors(terms, now),
        **_validity_errors(terms.validity),
        **_note_errors(terms.note),
    }
    if errors:
        raise BadTerms(errors)


def summary(database: Database, public_id: str) -> dict[str, Any]:
    """The batch ``public_id`` and its codes counted by state, as JSON; UnknownBatch if none."""

    def read(connection: Connection) -> dict[str, Any]:
        batch = _batch(connection, public_id)
        return _view(batch, store.counts(connection, batch.id))

    return database.run(read)


def listing(database: Database, app_id: int | None = None) -> list[dict[str, Any]]:
    """Every batch (or an app's) as summary() gives it, deleted ones too, newest first."""
    return database.run(
        lambda connection: [
            _view(batch, store.counts(connection, batch.id))
            for batch in store.batches(connection, app_id)
        ]
    )


def delete_batch(database: Database, public_id: str, now: datetime) -> int:
    """Delete a batch and its unredeemed codes; how many codes just now (0 the second time).

    UnknownBatch if there is none. Redeemed codes keep their state: their licenses stand.
    """
    return database.run(
        lambda connection: store.delete_batch(connection, _batch(connection, public_id).id, now)
    )


def delete_code(database: Database, key: bytes, text: str, now: datetime) -> bool:
    """Delete the code typed as ``text``; whether just now (False if it was deleted already).

    Raises ActivationCodeError (malformed, before any query), UnknownCode, or CodeRedeemed:
    a redeemed code cannot be deleted, its license is issued.
    """
    code = canonical(text)
    deleted = database.run(lambda connection: _delete_code(connection, key, code, now))
    if deleted is None:  # redeemed or deleted meanwhile: see which, in a fresh transaction
        deleted = database.run(lambda connection: _delete_code(connection, key, code, now))
    return bool(deleted)


def describe(
    database: Database, key: bytes, text: str, now: datetime, *, with_redeemer: bool = False
) -> dict[str, Any]:
    """Where the code typed as ``text`` stands, as JSON; ActivationCodeError if malformed.

    Who redeemed it (the client address or partner) is for operators only: ``with_redeemer``
    on the command line, never through an API.
    """
    code = canonical(text)
    return database.run(
        lambda connection: _described(
            connection, look_up(connection, key, code, now), with_redeemer
        )
    )


def _row(terms: BatchTerms) -> dict[str, Any]:
    return {
        "product": terms.product,
        "quantity": terms.quantity,
        "validity": terms.validity,
        "valid_from": terms.valid_from,
        "valid_until": terms.valid_until,
        "note": terms.note,
        "size": terms.count,
        "app_id": terms.app_id,
    }


def _chunk_sizes(count: int) -> list[int]:
    return [min(CHUNK, count - start) for start in range(0, count, CHUNK)]


def _insert_chunk(
    connection: Connection, key: bytes, batch_id: int, size: int, make_code: Callable[[], str]
) -> list[str]:
    """``size`` new codes, stored by their hashes: each distinct from every code stored.

    Two random 95-bit codes are alike with odds of 2**-95, yet the unique index would fail
    the whole batch: a chunk that hits a stored code is rolled back to its savepoint and
    made afresh (a savepoint costs two round trips per CHUNK codes).
    """
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        made = _distinct(size, make_code)
        try:
            with connection.begin_nested():
                store.insert_hashes(connection, batch_id, [code_hash(key, c) for c in made])
        except IntegrityError:
            if attempt == CHUNK_ATTEMPTS:
                raise
            continue
        return made
    raise AssertionError("unreachable: the last attempt returns or raises")


def _distinct(size: int, make_code: Callable[[], str]) -> list[str]:
    made: set[str] = set()
    while len(made) < size:
        made.add(make_code())
    return list(made)


def _delete_code(connection: Connection, key: bytes, code: str, now: datetime) -> bool | None:
    """True if deleted now, False if deleted before; None if it changed under this transaction."""
    record = look_up(connection, key, code, now).record
    if record is None:
        raise UnknownCode(code)
    if record.redeemed_at is not None:
        raise CodeRedeemed(code)
    if record.deleted_at is not None:
        return False
    return True if store.delete_code(connection, record.id, now) else None


def _described(connection: Connection, found: Lookup, with_redeemer: bool) -> dict[str, Any]:
    view: dict[str, Any] = {"code": found.code, "state": found.state.value}
    record = found.record
    if record is None:
        return view
    batch = record.batch
    view |= {
        "batch": batch.public_id,
        "product": batch.product,
        "quantity": batch.quantity,
        "validity": batch.validity,
        "valid_from": _time(batch.valid_from),
        "valid_until": _time(batch.valid_until),
        "redeemed_at": _time(record.redeemed_at),
        "deleted_at": _time(record.deleted_at or batch.deleted_at),
        **_made(connection, record.application_id),
    }
    if with_redeemer:
        view["redeemed_by"] = record.redeemed_by
    return view


def _made(connection: Connection, application_id: int | None) -> dict[str, str | None]:
    """The application a redeemed code made, and its license once issued."""
    if application_id is None:
        return {"application": None, "license": None}
    application = applications.by_id(connection, application_id)
    issued = licenses.license_of(connection, application_id)
    return {
        "application": None if application is None else application.number,
        "license": None if issued is None else issued.id,
    }


def _batch(connection: Connection, public_id: str) -> Batch:
    batch = store.batch_by_public_id(connection, public_id)
    if batch is None:
        raise UnknownBatch(public_id)
    return batch


def _view(batch: Batch, counts: dict[str, int]) -> dict[str, Any]:
    return {
        "id": batch.public_id,
        "product": batch.product,
        "quantity": batch.quantity,
        "validity": batch.validity,
        "valid_from": _time(batch.valid_from),
        "valid_until": _time(batch.valid_until),
        "note": batch.note,
        "size": batch.size,
        "app_id": batch.app_id,
        "created_at": _time(batch.created_at),
        "deleted_at": _time(batch.deleted_at),
        "counts": counts,
    }


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _window_errors(terms: BatchTerms, now: datetime) -> dict[str, Message]:
    """What is wrong with the redemption window: times with a zone, ending after it starts."""
    start, end = terms.valid_from, terms.valid_until
    errors: dict[str, Message] = {}
    for name, moment in (("valid_from", start), ("valid_until", end)):
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            errors[name] = {
                "zh": "须为带时区的时间（如 2026-12-01T00:00:00Z）。",
                "en": f"{moment!r} is not a time with its zone (2026-12-01T00:00:00Z).",
            }
    if errors:
        return errors
    if end <= start:
        errors["valid_until"] = {
            "zh": "截止时间须晚于开始时间。",
            "en": f"the window ends ({_time(end)}) before it starts ({_time(start)}).",
        }
    elif end <= now:
        errors["valid_until"] = {
            "zh": "截止时间已过；请选择将来的时间。",
            "en": f"{_time(end)} has passed: no code could be redeemed; choose a later end.",
        }
    return errors


def _product_errors(catalogue: Catalogue, terms: BatchTerms) -> dict[str, Message]:
    """The product must be in the catalogue, the quantity one it offers."""
    product = catalogue.get(terms.product) if isinstance(terms.product, str) else None
    if product is None:
        return {"product": _unknown_product(terms.product, catalogue)}
    if _whole(terms.quantity) and product.allows_quantity(terms.quantity):
        return {}
    offer = quantity_message(product)
    return {
        "quantity": {
            "zh": f"数量 {terms.quantity!r} 不可选：{offer['zh']}",
            "en": f"quantity {terms.quantity!r} is not offered: {offer['en']}",
        }
    }


def _count_errors(count: object) -> dict[str, Message]:
    if _whole(count) and 1 <= count <= MAX_COUNT:
        return {}
    return {
        "count": {
            "zh": f"数量 {count!r} 须在 1 到 {MAX_COUNT} 之间；更多请分批生成。",
            "en": f"{count!r} codes: a batch has 1 to {MAX_COUNT}; make several for more.",
        }
    }


def _validity_errors(validity: object) -> dict[str, Message]:
    try:
        if isinstance(validity, str):
            validity_length(validity)
            return {}
    except ValueError:
        pass
    choices = ", ".join(VALIDITIES)
    return {
        "validity": {
            "zh": f"有效期 {validity!r} 无效：请选 {choices}，或 1d 到 {MAX_DAYS}d 的天数。",
            "en": f"validity {validity!r} is unknown: use one of {choices}, "
            f"or a number of days from 1d to {MAX_DAYS}d.",
        }
    }


def _note_errors(note: object) -> dict[str, Message]:
    if isinstance(note, str) and len(note) <= MAX_NOTE and note.isprintable():
        return {}
    return {
        "note": {
            "zh": f"备注须为一行，最多 {MAX_NOTE} 个字符。",
            "en": f"a note is one line of at most {MAX_NOTE} characters.",
        }
    }


def _unknown_product(code: str, catalogue: Catalogue) -> Message:
    choices = ", ".join(catalogue)
    return {
        "zh": f"目录中没有产品 {code!r}；可选：{choices}。",
        "en": f"no product {code!r} in the catalogue; choose one of {choices}.",
    }
