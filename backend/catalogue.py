"""The product catalogue: a TOML file the vendor edits, read once at start-up."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from backend.exceptions import ConfigError
from backend.toml_files import read_toml

VALIDITIES: dict[str, timedelta | None] = {
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "180d": timedelta(days=180),
    "1y": timedelta(days=365),
    "2y": timedelta(days=730),
    "3y": timedelta(days=1095),
    "perpetual": None,
}
"""The validities a customer may choose from (the catalogue lists a product's)."""
MAX_DAYS = 3650
"""The longest validity given in days ("3650d"), as a code batch may carry it."""
_DAYS = re.compile(r"[1-9][0-9]{0,3}d")


def validity_length(validity: str) -> timedelta | None:
    """How long a license of ``validity`` runs (None: for ever).

    ``validity`` is a key of VALIDITIES or "<N>d" for N from 1 to MAX_DAYS days (code
    batches may carry any such); ValueError for anything else.
    """
    if validity in VALIDITIES:
        return VALIDITIES[validity]
    if _DAYS.fullmatch(validity) and int(validity[:-1]) <= MAX_DAYS:
        return timedelta(days=int(validity[:-1]))
    raise ValueError(
        f"validity {validity!r} is neither one of {', '.join(VALIDITIES)} "
        f"nor a number of days from 1d to {MAX_DAYS}d"
    )


@dataclass(frozen=True)
class Product:
    """One product customers may apply for, and the terms they may choose."""

    code: str
    names: Mapping[str, str]
    edition: str
    quantities: tuple[int, ...]  # empty: any from 1 to max_quantity
    max_quantity: int
    validities: tuple[str, ...]
    feature_code_pattern: re.Pattern[str]
    feature_code_hint: str
    entitlements: tuple[str, ...]

    def allows_quantity(self, quantity: int) -> bool:
        """Whether a customer may ask for this many."""
        if self.quantities:
            return quantity in self.quantities
        return 1 <= quantity <= self.max_quantity

    def public(self) -> dict[str, Any]:
        """What the apply page needs to know, and nothing it should not."""
        return {
            "code": self.code,
            "names": dict(self.names),
            "quantities": list(self.quantities),
            "max_quantity": self.max_quantity,
            "validities": list(self.validities),
            "feature_code_pattern": self.feature_code_pattern.pattern,
            "feature_code_hint": self.feature_code_hint,
        }


Catalogue = Mapping[str, Product]


def load_catalogue(path: Path) -> dict[str, Product]:
    """Read and check the catalogue; every mistake names the file, product and key."""
    data = read_toml("CATALOGUE_FILE", path)
    products = data.get("products")
    if not isinstance(products, dict) or not products:
        raise ConfigError(f"CATALOGUE_FILE: {path} has no [products.<code>] tables")
    return {code: _product(path, code, entry) for code, entry in products.items()}


def _product(path: Path, code: str, entry: dict[str, Any]) -> Product:
    where = f"CATALOGUE_FILE: {path}, product {code!r}"
    try:
        return _read_product(code, entry)
    except (KeyError, TypeError, ValueError, re.error) as err:
        raise ConfigError(f"{where}: {err}") from None


def _read_product(code: str, entry: dict[str, Any]) -> Product:
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", code):
        raise ValueError("product codes are lower-case letters, digits and dashes")
    quantities = tuple(entry.get("quantities", ()))
    if not quantities and "max_quantity" not in entry:
        raise KeyError("give quantities = [...] or max_quantity = N")
    if any(type(q) is not int or q < 1 for q in quantities):
        raise ValueError("quantities must be whole numbers of 1 or more")
    validities = tuple(entry["validities"])
    unknown = [v for v in validities if v not in VALIDITIES]
    if unknown or not validities:
        raise ValueError(f"validities must be among {', '.join(VALIDITIES)}, got {unknown}")
    names = entry["name"]
    if not (isinstance(names, dict) and {"zh", "en"} <= names.keys()):
        raise ValueError('name must be {zh = "...", en = "..."}')
    return Product(
        code=code,
        names=names,
        edition=str(entry["edition"]),
        quantities=quantities,
        max_quantity=int(entry.get("max_quantity", max(quantities, default=1))),
        validities=validities,
        feature_code_pattern=re.compile(entry["feature_code_pattern"]),
        feature_code_hint=str(entry.get("feature_code_hint", "")),
        entitlements=tuple(map(str, entry.get("entitlements", ()))),
    )
