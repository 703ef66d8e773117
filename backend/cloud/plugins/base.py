"""What a resource plugin is: its declared parameters, how it starts, checks and deletes one.

A plugin is one module per resource type (``vpc``, ``vswitch``, ``ecs.instance``, ...),
registered by name like job kinds are. The changes core validates a spec against the
plugin's parameters, plans steps, and runs each step's job through ``start`` and ``check``;
the plugin alone talks to the cloud.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from backend.cloud.clients import CloudClients

Results = dict[str, Any]
"""What a ready resource reports: its id, addresses, ... (JSON)."""


@dataclass(frozen=True)
class Param:
    """One declared parameter of a plugin: checked before any step is planned.

    ``kind`` is ``str``, ``int``, ``bool`` or ``list`` (of strings); ``pattern`` a regular
    expression a string must match in full; ``choices`` the values allowed; ``low``/``high``
    an int's range (a string's length range). ``help`` says what it is, in English, for the
    per-field messages and the OpenAPI description.
    """

    kind: str = "str"
    required: bool = False
    default: Any = None
    pattern: str | None = None
    choices: tuple[Any, ...] | None = None
    low: int | None = None
    high: int | None = None
    help: str = ""


@dataclass(frozen=True)
class Started:
    """A create call's answer: the resource's id, and whether it is ready already."""

    resource_id: str
    ready: bool = False
    results: Results = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """A readiness check's answer: ready (with results), or still on its way (``state``)."""

    ready: bool
    state: str
    results: Results = field(default_factory=dict)


HOURS_A_MONTH = 730
"""Hours a month is taken to have when an hourly price is stated a month (8,760 / 12)."""


@dataclass(frozen=True)
class MonthlyCost:
    """What a resource will cost a month, pay-as-you-go: shown to the change's approver."""

    amount: Decimal
    currency: str
    """ISO 4217, as the cloud names it: CNY on the China site, USD on the international one."""

    def text(self) -> str:
        """The cost as the approval form shows it: ``约 ¥398.52/月（按量付费，按 730 小时计）``."""
        basis = f"（按量付费，按 {HOURS_A_MONTH} 小时计）"
        if self.currency == "CNY":
            return f"约 ¥{self.amount:.2f}/月{basis}"
        return f"约 {self.amount:.2f} {self.currency}/月{basis}"


class Plugin(Protocol):
    """A resource type.

    ``start`` is called with the spec (validated and with defaults filled), the ClientToken
    of its step (the same on every re-run, so a repeated create returns the first resource),
    and ``inputs``: values taken from earlier steps' results (``vpc_id`` for a vSwitch).
    ``check`` and ``delete`` take the resource id ``start`` gave. Each raises a
    backend.cloud.errors error when the cloud refuses or fails.

    A plugin whose resource costs money MAY also define
    ``monthly_cost(self, cloud: CloudClients, spec: Mapping[str, Any]) -> MonthlyCost | None``:
    the resource's estimated monthly cost as the cloud prices it now, None when the spec
    does not say enough to price it, a backend.cloud.errors error when the cloud gives no
    price. It is not a member of this protocol (most resources are free): callers look it
    up with ``getattr(plugin, "monthly_cost", None)``.
    """

    type: str
    parameters: Mapping[str, Param]
    asynchronous: bool  # False: ``start`` returns a ready resource

    def start(
        self, cloud: CloudClients, spec: Mapping[str, Any], token: str, inputs: Mapping[str, Any]
    ) -> Started: ...

    def check(self, cloud: CloudClients, resource_id: str) -> Progress: ...

    def delete(self, cloud: CloudClients, resource_id: str) -> None: ...


class Plugins:
    """Plugins by resource type."""

    def __init__(self) -> None:
        self._plugins: dict[str, Plugin] = {}

    def register(self, plugin: Plugin) -> Plugin:
        """Add ``plugin``; ValueError if its type is taken."""
        if plugin.type in self._plugins:
            raise ValueError(f"two plugins for resource type {plugin.type!r}: rename one")
        self._plugins[plugin.type] = plugin
        return plugin

    def get(self, type_: str) -> Plugin | None:
        """The plugin of ``type_``, or None."""
        return self._plugins.get(type_)

    def types(self) -> list[str]:
        """Every registered type, sorted."""
        return sorted(self._plugins)

    def __iter__(self) -> Iterator[Plugin]:
        return iter(self._plugins.values())


PluginFactory = Callable[[], Plugin]
