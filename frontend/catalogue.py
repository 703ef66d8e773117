"""The catalogue's public part, for the apply page: names and the choices it may offer.

The backend reads the same file strictly (and `dingpass config check` reports its
mistakes); here only the keys the page needs are passed on.
"""

import sys
from pathlib import Path
from typing import Any

# As backend.compat does, which the frontend does not import (it imports nothing of the backend).
if sys.version_info >= (3, 11):
    import tomllib
else:  # Function Compute's Python 3.10
    import tomli as tomllib

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
