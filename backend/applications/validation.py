"""Check an application form field by field, with the same rules as the page.

vue-app/src/validation.js applies these rules in the browser with the same messages;
tests/contract/ runs both over the same cases, so the two cannot drift apart.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass

from backend.catalogue import Catalogue, Product
from backend.exceptions import BadRequest, Message, ValidationError

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
PHONE = re.compile(r"\+?[0-9][0-9 \-]{5,19}")
SINGLE_LINE_BAD = re.compile(r"[\x00-\x1f\x7f]")
MULTI_LINE_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # tabs and line breaks pass
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


@dataclass(frozen=True)
class ApplicationForm:
    """An application form that passed every check."""

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


def _check_feature_code(product: Product, text: dict[str, str], errors: dict[str, Message]) -> None:
    code = text["feature_code"]
    if code and "feature_code" not in errors and not product.feature_code_pattern.fullmatch(code):
        hint = product.feature_code_hint
        errors["feature_code"] = {"zh": f"格式应类似 {hint}。", "en": f"Should look like {hint}."}


def _terms(product: Product | None, fields: Fields, errors: dict[str, Message]) -> tuple[int, str]:
    """The quantity and validity, checked against the product's offer."""
    if product is None:
        return 0, ""
    quantity, validity = fields.get("quantity"), fields.get("validity")
    whole = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None
    if whole is None or not product.allows_quantity(whole):
        errors["quantity"] = {"zh": "请选择允许的数量。", "en": "Choose an allowed quantity."}
    chosen = validity if isinstance(validity, str) else None
    if chosen not in product.validities:
        errors["validity"] = {"zh": "请选择允许的有效期。", "en": "Choose an allowed validity."}
    return whole or 0, chosen or ""


def _check_contact(text: dict[str, str], errors: dict[str, Message]) -> None:
    if text["email"] and "email" not in errors and not EMAIL.fullmatch(text["email"]):
        errors["email"] = {"zh": "请输入有效的邮箱地址。", "en": "Enter a valid email address."}
    if text["phone"] and "phone" not in errors and not PHONE.fullmatch(text["phone"]):
        errors["phone"] = {"zh": "请输入有效的电话号码。", "en": "Enter a valid phone number."}


def _text(fields: Fields, name: str, errors: dict[str, Message]) -> str:
    required, shortest, longest = TEXT_LIMITS[name]
    value = fields.get(name, "")
    if value is None:
        value = ""
    if not isinstance(value, str):
        errors[name] = {"zh": "应为文本。", "en": "Must be text."}
        return ""
    value = value.strip()
    if not value:
        if required:
            errors[name] = {"zh": "请填写此项。", "en": "This field is required."}
        return ""
    if (MULTI_LINE_BAD if name == "note" else SINGLE_LINE_BAD).search(value):
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
