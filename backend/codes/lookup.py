"""Where a typed activation code stands: malformed, unknown, unused, redeemed, outside its
batch's window, or deleted."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from backend.codes.hashing import code_hash
from backend.compat import StrEnum
from backend.storage import codes as store
from backend.storage.codes import CodeRecord
from license import codes


class CodeState(StrEnum):
    """A code's state, as an answer says it."""

    UNKNOWN = "unknown"
    UNUSED = "unused"
    REDEEMED = "redeemed"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    DELETED = "deleted"


@dataclass(frozen=True)
class Lookup:
    """A code in its canonical form, its state, and its record (None when unknown)."""

    code: str
    state: CodeState
    record: CodeRecord | None


def canonical(text: str) -> str:
    """The code ``text`` stands for; license.ActivationCodeError (malformed, a typo) if none."""
    return codes.parse(text)


def look_up(connection: Connection, key: bytes, text: str, now: datetime) -> Lookup:
    """The state of the code typed as ``text``; ActivationCodeError if it is malformed.

    The check symbol is checked before any lookup, so a typo costs no query.
    """
    code = canonical(text)
    record = store.by_hash(connection, code_hash(key, code))
    return Lookup(code, state_of(record, now), record)


def state_of(record: CodeRecord | None, now: datetime) -> CodeState:
    """What a code's record says of it at ``now``: a redeemed code stays redeemed."""
    if record is None:
        return CodeState.UNKNOWN
    if record.redeemed_at is not None:
        return CodeState.REDEEMED
    if record.deleted_at is not None or record.batch.deleted_at is not None:
        return CodeState.DELETED
    if now < record.batch.valid_from:
        return CodeState.NOT_YET_VALID
    if now >= record.batch.valid_until:
        return CodeState.EXPIRED
    return CodeState.UNUSED
