"""Check an application form field by field, with the same rules as the page.

vue-app/src/validation.js applies these rules in the browser with the same messages;
tests/contract/ runs both over the same cases, so the two cannot drift apart.
"""

import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from backend.catalogue import Catalogue, Product
from backend.exceptions import BadRequest, Message, ValidationError

# One plain address, so the mail goes to the applicant alone: an ASCII dot-atom local part of at
# most 64 characters, and a domain of two or more letter-digit-hyphen labels whose last one starts
# with a letter. No commas, spaces, angle brackets, double quotes, semicolons or display names.
ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
TOP_LABEL = r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL = re.compile(rf"(?=[^@]{{1,64}}@){ATEXT}(?:\.{ATEXT})*@(?:{LABEL}\.)+{TOP_LABEL}")
PHONE = re.compile(r"\+?[0-9][0-9 \-]{5,19}")
WHITE_SPACE = (  # Unicode's White_Space property, trimmed from both ends of every text
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
# Controls, invisible format characters (bidi overrides, zero-width), lone surrogates, private
# use and unassigned code points spoof or hide text in the DingTalk form and the license, and a
# lone surrogate cannot be stored at all. Single-line fields refuse line separators too.
# "Unassigned" is as of this Python's Unicode tables (3.10: Unicode 13), which may be older than
# the browser's: the backend then refuses a newer character that the page let through.
SINGLE_LINE_REFUSED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# The note keeps tabs and line breaks, private use and characters newer than our Unicode tables
# (a new emoji); it refuses other controls, format characters and lone surrogates.
NOTE_REFUSED = frozenset({"Cc", "Cf", "Cs"})
NOTE_KEEPS = frozenset("\t\n\r")
TEXT_LIMITS = {  # field: (required, shortest, longest)
    "company": (True, 2, 100),
    "contact": (True, 1, 50),
    "email": (True, 3, 254),
    "phone": (False, 0, 20),
    "note": (False, 0, 1000),
    "feature_code": (True, 1, 128),
    "product_version": (False, 0, 64),
}
FIELDS = {*TEXT_LIMITS, "product", "quantity", "validity", "language"}
LANGUAGES = ("zh", "en")
# ASCII only: Unicode's case rules differ between Python's and the browser's tables (and "ß"
# upper-cases to two letters), and feature codes are machine-made ASCII.
ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)


@dataclass(frozen=True)
class ApplicationForm:
    """An application form that passed every check; its text is normalised (see normalise)."""

    product: str
    product_version: str
    feature_code: str
    company: str
    contact: str
    email: str
    phone: str
    quantity: int
    validity: str
    note: str
    language: str


Fields = Mapping[str, object]
"""A request's JSON object, before any check."""


def validate(data: object, catalogue: Catalogue) -> ApplicationForm:
    """The checked form, or ValidationError with a message for each wrong field."""
    if not isinstance(data, dict):
        raise BadRequest("请求内容应为 JSON 对象。", "The request body must be a JSON object.")
    fields: Fields = data
    errors: dict[str, Message] = {name: _unknown() for name in fields if name not in FIELDS}
    text = {name: _text(fields, name, errors) for name in TEXT_LIMITS}
    code = fields.get("product")
    product = catalogue.get(code) if isinstance(code, str) else None
    if product is None:
        errors["product"] = {"zh": "未知产品。", "en": "Unknown product."}
    else:
        _check_feature_code(product, text, errors)
    quantity, validity = _terms(product, fields, errors)
    _check_contact(text, errors)
    language = fields.get("language", "zh")
    if not isinstance(language, str) or language not in LANGUAGES:
        errors["language"] = {"zh": "语言应为 zh 或 en。", "en": "Language must be zh or en."}
    if errors or product is None or not isinstance(language, str):
        raise ValidationError(errors)
    return ApplicationForm(
        product=product.code, quantity=quantity, validity=validity, language=language, **text
    )


def canonical_feature_code(product: Product, code: str) -> str:
    """The feature code as the license binds it, upper-cased where the product needs that.

    A code the product's pattern takes as given is kept (a pattern may allow lower case);
    otherwise its ASCII letters are upper-cased: a person typed it in lower case.
    """
    if product.feature_code_pattern.fullmatch(code):
        return code
    return code.translate(ASCII_UPPER)


def _check_feature_code(product: Product, text: dict[str, str], errors: dict[str, Message]) -> None:
    if not text["feature_code"] or "feature_code" in errors:
        return
    code = text["feature_code"] = canonical_feature_code(product, text["feature_code"])
    if not product.feature_code_pattern.fullmatch(code):
        hint = product.feature_code_hint
        errors["feature_code"] = {"zh": f"格式应类似 {hint}。", "en": f"Should look like {hint}."}


def _terms(product: Product | None, fields: Fields, errors: dict[str, Message]) -> tuple[int, str]:
    """The quantity and validity, checked against the product's offer."""
    if product is None:
        return 0, ""
    quantity, validity = fields.get("quantity"), fields.get("validity")
    whole = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None
    if whole is None or not product.allows_quantity(whole):
        errors["quantity"] = quantity_message(product)
    chosen = validity if isinstance(validity, str) else None
    if chosen not in product.validities:
        errors["validity"] = {"zh": "请选择允许的有效期。", "en": "Choose an allowed validity."}
    return whole or 0, chosen or ""


def quantity_message(product: Product) -> Message:
    """What to say about a quantity the product does not offer: the values or range it does."""
    if product.quantities:
        return {
            "zh": f"请从 {'、'.join(map(str, product.quantities))} 中选择数量。",
            "en": f"Choose one of {', '.join(map(str, product.quantities))}.",
        }
    top = product.max_quantity
    return {"zh": f"请选择 1 到 {top} 之间的数量。", "en": f"Choose a quantity from 1 to {top}."}


def _check_contact(text: dict[str, str], errors: dict[str, Message]) -> None:
    if text["email"] and "email" not in errors and not EMAIL.fullmatch(text["email"]):
        errors["email"] = {"zh": "请输入有效的邮箱地址。", "en": "Enter a valid email address."}
    if text["phone"] and "phone" not in errors and not PHONE.fullmatch(text["phone"]):
        errors["phone"] = {"zh": "请输入有效的电话号码。", "en": "Enter a valid phone number."}


def normalise(text: str) -> str:
    """The text as it is checked, stored and signed: NFC, without white space at either end."""
    return unicodedata.normalize("NFC", text).strip(WHITE_SPACE)


def refused_character(name: str, text: str) -> bool:
    """Whether the field ``name`` holds a character it does not allow (see SINGLE_LINE_REFUSED)."""
    if name == "note":
        return any(unicodedata.category(c) in NOTE_REFUSED and c not in NOTE_KEEPS for c in text)
    return any(unicodedata.category(c) in SINGLE_LINE_REFUSED for c in text)


def _text(fields: Fields, name: str, errors: dict[str, Message]) -> str:
    required, shortest, longest = TEXT_LIMITS[name]
    value = fields.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[name] = {"zh": "应为文本。", "en": "Must be text."}
        return ""
    value = normalise(value)
    if not value:
        if required:
            errors[name] = {"zh": "请填写此项。", "en": "This field is required."}
        return ""
    if refused_character(name, value):
        errors[name] = {
            "zh": "包含不允许的字符。",
            "en": "Contains characters that are not allowed.",
        }
    elif len(value) < shortest:
        errors[name] = {
            "zh": f"至少 {shortest} 个字符。",
            "en": f"At least {shortest} characters.",
        }
    elif len(value) > longest:
        errors[name] = {
            "zh": f"最多 {longest} 个字符。",
            "en": f"At most {longest} characters.",
        }
    return value


def _unknown() -> Message:
    return {"zh": "未知字段。", "en": "Unknown field."}
