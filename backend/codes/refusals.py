"""Why a code cannot be redeemed, each reason its own answer, under the form's ``code`` field.

CodeRefused (ValidationError)  422  {"error": <reason>, "fields": {"code": {zh, en}}}
 +-- CodeMalformed                  code_malformed: a typo, a missing character (no lookup made)
 +-- CodeUnknown                    code_unknown
 +-- CodeUsed                       code_used: already redeemed (never by whom, nor when)
 +-- CodeExpired                    code_expired, with the date it ended
 +-- CodeNotYetValid                code_not_yet_valid, with the date it starts
 +-- CodeDeleted                    code_deleted: withdrawn by the vendor
 +-- CodeForAnotherProduct          code_for_another_product, naming the code's product
"""

from datetime import datetime

from backend.exceptions import Message, ValidationError
from license.codes import ALPHABET, LENGTH

FIELD = "code"


class CodeRefused(ValidationError):
    """A code that cannot be redeemed; the reason is the error's code."""

    code = "code_refused"

    def __init__(self, zh: str, en: str) -> None:
        super().__init__({FIELD: {"zh": zh, "en": en}})
        self.message = {"zh": zh, "en": en}

    @property
    def reason(self) -> Message:
        """What is said of the code."""
        return self.fields[FIELD]


class CodeMalformed(CodeRefused):
    """The text is no activation code: a typo the check symbol caught, or the wrong length."""

    code = "code_malformed"

    def __init__(self, text: str) -> None:
        compact = "".join(text.split()).replace("-", "").upper()
        if not compact:
            super().__init__("请输入激活码。", "Enter the activation code.")
        elif any(c not in ALPHABET + "ILO" for c in compact):
            super().__init__(
                "激活码只包含数字和字母（没有 U），请核对。",
                "An activation code has only digits and letters (no U); check it.",
            )
        elif len(compact) != LENGTH:
            super().__init__(
                f"激活码有 {LENGTH} 个字符，这里有 {len(compact)} 个，请检查是否漏输。",
                f"An activation code has {LENGTH} characters, this one {len(compact)}: "
                "check that none is missing.",
            )
        else:
            super().__init__(
                "激活码有输入错误，请逐个字符核对。",
                "This activation code has a typing mistake: check each character.",
            )


class CodeUnknown(CodeRefused):
    """No code has this hash."""

    code = "code_unknown"

    def __init__(self) -> None:
        super().__init__(
            "没有这个激活码，请核对后重试。",
            "There is no such activation code; check it and try again.",
        )


class CodeUsed(CodeRefused):
    """The code was redeemed (by someone else, or by this customer before)."""

    code = "code_used"

    def __init__(self) -> None:
        super().__init__("该激活码已被使用。", "This activation code has already been used.")


class CodeExpired(CodeRefused):
    """The batch's redemption window has ended."""

    code = "code_expired"

    def __init__(self, until: datetime) -> None:
        super().__init__(
            f"该激活码已于 {_shown(until)} 过期。",
            f"This activation code expired on {_shown(until)}.",
        )


class CodeNotYetValid(CodeRefused):
    """The batch's redemption window has not begun."""

    code = "code_not_yet_valid"

    def __init__(self, since: datetime) -> None:
        super().__init__(
            f"该激活码自 {_shown(since)} 起可用。",
            f"This activation code can be used from {_shown(since)}.",
        )


class CodeDeleted(CodeRefused):
    """The code, or its batch, was deleted."""

    code = "code_deleted"

    def __init__(self) -> None:
        super().__init__(
            "该激活码已被供应商作废。", "This activation code was withdrawn by the vendor."
        )


class CodeForAnotherProduct(CodeRefused):
    """The code's batch is for another product than the one applied for."""

    code = "code_for_another_product"

    def __init__(self, names: Message, asked: Message) -> None:
        super().__init__(
            f"该激活码适用于 {names['zh']}，而不是 {asked['zh']}。",
            f"This activation code is for {names['en']}, not {asked['en']}.",
        )


def _shown(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"
