"""The catalogue's public part, for the apply page: names and the choices it may offer.

The backend reads the same file strictly (and `dingpass config check` reports its
mistakes); here only the keys the page needs are passed on, and a QR code's product and
feature code are checked against them as the page checks them.
"""

import re
import string
import sys
from pathlib import Path
from typing import Any

from frontend.exceptions import BadRequest

# As backend.compat does, which the frontend does not import (it imports nothing of the backend).
if sys.version_info >= (3, 11):
    import tomllib
else:  # Function Compute's Python 3.10
    import tomli as tomllib

# As backend.applications.validation upper-cases feature codes: ASCII letters only.
ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
PUBLIC_KEYS = (
    "name",
    "quantities",
    "max_quantity",
    "validities",
    "feature_code_pattern",
    "feature_code_hint",
)


def public_catalogue(path: Path) -> dict[str, Any]:
    """{"products": {code: {public keys}}} from the catalogue file."""
    products = tomllib.loads(path.read_text(encoding="utf-8")).get("products", {})
    return {
        "products": {
            code: {key: entry[key] for key in PUBLIC_KEYS if key in entry}
            for code, entry in products.items()
        }
    }


def canonical_feature_code(pattern: str, code: str) -> str:
    """The code as the backend takes it: as given if ``pattern`` fits it, else upper-cased."""
    if re.fullmatch(pattern, code):
        return code
    return code.translate(ASCII_UPPER)


def checked_link_terms(path: Path, product: str, feature: str) -> str:
    """The feature code for an apply link of ``product``, as the apply page would take it.

    Raises BadRequest, naming the parameter, for a product the catalogue does not have or a
    feature code that does not fit the product's pattern.
    """
    products = public_catalogue(path)["products"]
    entry = products.get(product)
    if entry is None:
        offered = ", ".join(products)
        raise BadRequest(
            f"目录中没有产品 {product!r}；可用的产品：{offered}。",
            f"The catalogue has no product {product!r}; it has {offered}.",
            fields={"product": {"zh": "未知产品。", "en": "Unknown product."}},
        )
    code = canonical_feature_code(entry["feature_code_pattern"], feature)
    if not re.fullmatch(entry["feature_code_pattern"], code):
        hint = entry.get("feature_code_hint", "")
        raise BadRequest(
            f"特征码 {feature!r} 不符合产品 {product} 的格式，应类似 {hint}。",
            f"The feature code {feature!r} does not fit {product}'s feature codes; "
            f"they look like {hint}.",
            fields={"feature": {"zh": f"格式应类似 {hint}。", "en": f"Should look like {hint}."}},
        )
    return code
