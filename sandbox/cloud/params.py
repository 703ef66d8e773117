"""An API call's parameters as they arrive: flat strings from the query and a form body.

The SDK flattens lists to ``Name.1``, ``Name.2``, structures to ``Name.N.Sub``, writes
booleans with ``str()`` (``True``) and sends ECS's ``InstanceIds`` as a JSON array in a
string; this turns them back, refusing what the service refuses.
"""

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl

from sandbox.cloud.errors import ApiError, invalid, missing

FORM = "application/x-www-form-urlencoded"


def parse_pairs(text: str) -> list[tuple[str, str]]:
    """``key=value`` pairs of a query string or form body, ``+`` and ``%XX`` decoded."""
    return parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")


class Params:
    """The parameters of one call, looked up by their wire names."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.values: dict[str, str] = dict(pairs)

    def get(self, name: str) -> str | None:
        """The value, or None when absent or empty (the service treats both alike)."""
        value = self.values.get(name)
        return value if value else None

    def required(self, name: str) -> str:
        """The value, or ``MissingParameter``."""
        value = self.get(name)
        if value is None:
            raise missing(name)
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        """``true``/``false`` in any case (the SDK sends Python's ``True``)."""
        value = self.get(name)
        if value is None:
            return default
        if value.lower() not in ("true", "false"):
            raise invalid(name, value, "It must be true or false.")
        return value.lower() == "true"

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        """A whole number within ``low``..``high``."""
        value = self.get(name)
        if value is None:
            return default
        if not re.fullmatch(r"-?\d{1,9}", value) or not low <= int(value) <= high:
            raise invalid(name, value, f"It must be a whole number from {low} to {high}.")
        return int(value)

    def listing(self, name: str) -> list[str]:
        """The values of ``Name.1``, ``Name.2``... in order of N."""
        pattern = re.compile(rf"{re.escape(name)}\.(\d+)")
        found = [
            (int(m.group(1)), v) for k, v in self.values.items() if (m := pattern.fullmatch(k))
        ]
        return [value for _, value in sorted(found) if value]

    def structs(self, name: str) -> list[dict[str, str]]:
        """The structures ``Name.N.Sub`` as one dict of Sub -> value per N, in order of N."""
        pattern = re.compile(rf"{re.escape(name)}\.(\d+)\.(\w+)")
        found: dict[int, dict[str, str]] = {}
        for key, value in self.values.items():
            if match := pattern.fullmatch(key):
                found.setdefault(int(match.group(1)), {})[match.group(2)] = value
        return [found[n] for n in sorted(found)]

    def json_list(self, name: str, most: int) -> list[str] | None:
        """A JSON array of strings sent as one parameter, or None when absent."""
        value = self.get(name)
        if value is None:
            return None
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ApiError(
                400, f"Invalid{name}.Malformed", f'The specified parameter "{name}" is not valid.'
            )
        if len(items) > most:
            raise ApiError(
                400, f"Invalid{name}.Malformed", f'"{name}" holds more than {most} items.'
            )
        return items

    def fingerprint(self, ignore: Iterable[str] = ()) -> str:
        """A digest of every parameter but ``ignore``: equal for a ClientToken's true retry."""
        skip = set(ignore)
        kept = sorted((k, v) for k, v in self.values.items() if k not in skip)
        return hashlib.sha256(json.dumps(kept).encode("utf-8")).hexdigest()


def merged(query: Iterable[tuple[str, str]], form: Mapping[str, str] | None = None) -> Params:
    """The query's parameters with a form body's on top."""
    return Params([*query, *(form or {}).items()])
