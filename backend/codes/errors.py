"""Errors of code batches and codes (a malformed code is license.ActivationCodeError).

CodeError (DingpassError)
 +-- BadTerms (ValueError)          a batch cannot have these terms; ``fields``: a message per
 |                                  field, as an API answers 422 with them
 +-- UnknownBatch (LookupError)     no batch has that id
 +-- UnknownCode (LookupError)      no code like it was generated (with this CODE_HASH_KEY)
 +-- CodeRedeemed                   a redeemed code cannot be deleted
"""

from backend.exceptions import DingpassError, Message


class CodeError(DingpassError):
    """A command about code batches or codes could not do what was asked."""


class BadTerms(CodeError, ValueError):
    """The terms of a batch are wrong; ``fields`` says what is wrong with each, by field."""

    def __init__(self, fields: dict[str, Message]) -> None:
        super().__init__("; ".join(f"{name}: {text['en']}" for name, text in fields.items()))
        self.fields = fields


class UnknownBatch(CodeError, LookupError):
    """No batch has the id given."""

    def __init__(self, public_id: str) -> None:
        super().__init__(f"no code batch {public_id!r}: `dingpass codes batches` lists them")


class UnknownCode(CodeError, LookupError):
    """No code like the one given was generated, under the key codes are hashed with."""

    def __init__(self, code: str) -> None:
        super().__init__(
            f"no code {code} was generated here (or it was, under another CODE_HASH_KEY)"
        )


class CodeRedeemed(CodeError):
    """The code was redeemed: its license exists, so deleting the code would undo nothing."""

    def __init__(self, code: str) -> None:
        super().__init__(
            f"code {code} was redeemed and cannot be deleted: its license is issued already "
            "(`dingpass codes show` says which application)"
        )
