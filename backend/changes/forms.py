"""Which changes wait for an approver, on which DingTalk form, and the forms employees fill.

Read once from a TOML file (CHANGE_FORMS_FILE, see change-forms.example.toml) when the
configuration is built; every mistake names the file, the table and the key.

- ``[[approvals]]``: change types asked for through the API that wait for an approval on a
  form of dingpass's own (its components filled from the change, as ``fields`` says);
- ``[[requests]]``: forms an enterprise made for its employees; an agreed instance of one
  becomes a change of ``type``, its spec taken from the components ``spec`` names (by label
  or by component id), with ``fixed`` values beside them.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.exceptions import ConfigError
from backend.toml_files import read_toml

SETTING = "CHANGE_FORMS_FILE"
SOURCES = ("change", "type", "region", "spec", "count", "cost", "requester")
"""What a component of the approval form may show."""
DEFAULT_FIELDS = (
    ("变更编号", "change"),
    ("变更类型", "type"),
    ("地域", "region"),
    ("规格", "spec"),
    ("数量", "count"),
    ("预估月费用", "cost"),
    ("申请人", "requester"),
)
"""The approval form's component labels and what each shows, unless ``fields`` says."""
APPROVAL_KEYS = {"process_code", "types", "fields"}
REQUEST_KEYS = {"process_code", "type", "spec", "fixed"}


@dataclass(frozen=True)
class ApprovalForm:
    """A form of dingpass's own on which changes of ``types`` (``*``: every type) wait."""

    process_code: str
    types: frozenset[str]
    fields: tuple[tuple[str, str], ...] = DEFAULT_FIELDS

    def covers(self, change_type: str) -> bool:
        """Whether a change of ``change_type`` waits on this form."""
        return "*" in self.types or change_type in self.types

    @property
    def change_label(self) -> str | None:
        """The component that carries the change's id: how an instance is recognised."""
        return next((label for label, source in self.fields if source == "change"), None)


@dataclass(frozen=True)
class RequestForm:
    """An employees' form whose agreed instances become changes of ``type``."""

    process_code: str
    type: str
    spec: tuple[tuple[str, str], ...]
    """(spec parameter, the component it is read from: its label or its id)."""
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def component_of(self, parameter: str) -> str | None:
        """The component a spec parameter is read from."""
        return next((source for name, source in self.spec if name == parameter), None)


@dataclass(frozen=True)
class ChangeForms:
    """Every approval form and request form of a deployment; none by default."""

    approvals: tuple[ApprovalForm, ...] = ()
    requests: tuple[RequestForm, ...] = ()

    def approval_for(self, change_type: str) -> ApprovalForm | None:
        """The form a change of ``change_type`` waits on; None: it runs at once."""
        return next((form for form in self.approvals if form.covers(change_type)), None)

    def approval_form(self, process_code: str | None) -> ApprovalForm | None:
        """The approval form with ``process_code``, if it is one of ours."""
        return next((f for f in self.approvals if f.process_code == process_code), None)

    def request_form(self, process_code: str | None) -> RequestForm | None:
        """The request form with ``process_code``, if it is one of ours."""
        return next((f for f in self.requests if f.process_code == process_code), None)

    def __str__(self) -> str:
        waiting = [
            f"{form.process_code} ({', '.join(sorted(form.types))})" for form in self.approvals
        ]
        asked = [f"{form.process_code} -> {form.type}" for form in self.requests]
        parts = [f"approvals on {'; '.join(waiting)}"] if waiting else []
        parts += [f"requests on {'; '.join(asked)}"] if asked else []
        return ", ".join(parts) or "none"

    @property
    def process_codes(self) -> frozenset[str]:
        """Every form whose instances concern changes."""
        codes = [form.process_code for form in self.approvals]
        return frozenset(codes + [form.process_code for form in self.requests])


def load_change_forms(path: Path) -> ChangeForms:
    """Read and check the change forms file."""
    data = read_toml(SETTING, path)
    unknown = sorted(set(data) - {"approvals", "requests"})
    if unknown:
        raise ConfigError(
            f"{SETTING}: {path}: unknown table {unknown[0]!r}; use [[approvals]] and [[requests]]"
        )
    forms = ChangeForms(
        tuple(_each(path, "approvals", data, _approval)),
        tuple(_each(path, "requests", data, _request)),
    )
    codes = [form.process_code for form in forms.approvals]
    codes += [form.process_code for form in forms.requests]
    twice = sorted({code for code in codes if codes.count(code) > 1})
    if twice:
        # Events are routed by form: one form in two roles would make an employee's request
        # of dingpass's own approvals, or the other way round.
        raise ConfigError(f"{SETTING}: {path}: process_code {twice[0]} is listed twice")
    return forms


def _each(path: Path, name: str, data: dict[str, Any], read: Any) -> list[Any]:
    tables = data.get(name, [])
    if not isinstance(tables, list):
        raise ConfigError(f"{SETTING}: {path}: {name} must be [[{name}]] tables")
    read_all = []
    for number, entry in enumerate(tables, 1):
        try:
            read_all.append(read(entry))
        except (KeyError, TypeError, ValueError) as err:
            message = err.args[0] if err.args else str(err)
            raise ConfigError(f"{SETTING}: {path}, [[{name}]] number {number}: {message}") from None
    return read_all


def _approval(entry: Any) -> ApprovalForm:
    _known(entry, APPROVAL_KEYS)
    types = entry.get("types")
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        raise ValueError('types: a list of change types, like ["ecs.instance"], or ["*"]')
    fields = _pairs(entry.get("fields", dict(DEFAULT_FIELDS)), "fields")
    wrong = [source for _, source in fields if source not in SOURCES]
    if wrong:
        raise ValueError(f"fields: {wrong[0]!r} is not one of {', '.join(SOURCES)}")
    if not any(source == "change" for _, source in fields):
        raise ValueError('fields: one component must show "change" (the change\'s id)')
    return ApprovalForm(_text(entry, "process_code"), frozenset(types), fields)


def _request(entry: Any) -> RequestForm:
    _known(entry, REQUEST_KEYS)
    spec = _pairs(entry.get("spec"), "spec")
    fixed = entry.get("fixed", {})
    if not isinstance(fixed, dict):
        raise TypeError("fixed: a table of spec parameter = value")
    both = sorted(set(fixed) & {name for name, _ in spec})
    if both:
        raise ValueError(f"{both[0]!r} is both read from the form and fixed")
    return RequestForm(_text(entry, "process_code"), _text(entry, "type"), spec, fixed)


def _known(entry: Any, keys: set[str]) -> None:
    if not isinstance(entry, dict):
        raise TypeError("must be a table")
    unknown = sorted(set(entry) - keys)
    if unknown:
        raise KeyError(f"unknown key {unknown[0]!r}; the keys are {', '.join(sorted(keys))}")


def _pairs(table: Any, name: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(table, dict) or not table:
        raise ValueError(f'{name}: a table of name = "value" lines')
    if not all(isinstance(value, str) and value for value in table.values()):
        raise ValueError(f"{name}: every value must be text")
    return tuple(table.items())


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{key}: required, as text")
    return value.strip()
