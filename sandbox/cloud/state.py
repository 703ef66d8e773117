"""What the sandbox's cloud holds: resources with their states, private IPs and ClientTokens.

A resource's status follows from the wall clock: ``Pending`` until ``ready_after`` seconds
after its creation, then ``Available`` (instances: ``Pending`` for the first half,
``Starting`` for the second, then ``Running``). A resource created while the ``stuck``
fault was on never leaves ``Pending``. Every change is made under ``lock``; the API's
handlers hold it for the whole call, so a call sees and leaves one consistent cloud.
"""

import ipaddress
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

KINDS = ("vpc", "vswitch", "security_group", "instance", "user")
PRODUCT = {
    "vpc": "VPC",
    "vswitch": "VPC",
    "security_group": "ECS",
    "instance": "ECS",
    "user": "RAM",
}
ID_PREFIX = {"vpc": "vpc", "vswitch": "vsw", "security_group": "sg", "instance": "i"}
ALPHABET = string.ascii_lowercase + string.digits
RESERVED_AT_END = 3
"""Alibaba reserves a vSwitch's first address and its last three."""


def new_id(prefix: str) -> str:
    """An id of Alibaba's shape: ``vpc-bp1`` and 20 lower-case letters and digits."""
    return f"{prefix}-bp1{''.join(secrets.choice(ALPHABET) for _ in range(20))}"


def iso(seconds: float, minutes: bool = False) -> str:
    """UTC time as the APIs write it (ECS's instance times stop at the minute)."""
    return time.strftime(
        "%Y-%m-%dT%H:%MZ" if minutes else "%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds)
    )


@dataclass
class Resource:
    """One resource of any product; ``attrs`` holds what only its kind has."""

    kind: str
    id: str
    name: str
    region: str
    created: float
    ready_at: float | None
    """When it leaves Pending for good; None: never (created under the ``stuck`` fault)."""
    parent: str | None = None
    """The VPC of a vSwitch or security group, the vSwitch of an instance."""
    vpc_id: str | None = None
    zone: str | None = None
    cidr: str | None = None
    ip: str | None = None
    description: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)

    def status(self, now: float) -> str:
        """The status the Describe calls report at ``now``."""
        if self.kind == "user":
            return ""
        if self.kind == "security_group":
            return "Available"
        ready = self.ready_at is not None and now >= self.ready_at
        if self.kind != "instance":
            return "Available" if ready else "Pending"
        if ready:
            return "Running"
        halfway = self.created + (self.ready_at - self.created) / 2 if self.ready_at else None
        return "Starting" if halfway is not None and now >= halfway else "Pending"

    def summary(self, now: float) -> dict[str, Any]:
        """The resource as the page and ``GET /_sandbox/resources`` show it."""
        return {
            "product": PRODUCT[self.kind],
            "type": self.kind,
            "id": self.attrs.get("user_id", self.id),  # a user is keyed by name
            "name": self.name,
            "status": self.status(now),
            "region": self.region,
            "zone": self.zone,
            "parent": self.parent,
            "vpc_id": self.vpc_id,
            "cidr": self.cidr,
            "ip": self.ip,
            "created": iso(self.created),
            "stuck": self.ready_at is None and self.kind in ("vpc", "vswitch", "instance"),
        }


@dataclass(frozen=True)
class Remembered:
    """A ClientToken's first successful call: a digest of its parameters, and its answer."""

    fingerprint: str
    answer: dict[str, Any]


class CloudState:
    """Every resource by kind and id, the ClientTokens seen, and the readiness delay."""

    def __init__(self, ready_after: float = 2.0, clock: Callable[[], float] = time.time) -> None:
        self.lock = threading.RLock()
        self.ready_after = ready_after
        """Seconds from creation to Available/Running, for resources created from now on."""
        self.clock = clock
        self._kinds: dict[str, dict[str, Resource]] = {kind: {} for kind in KINDS}
        self._tokens: dict[tuple[str, ...], Remembered] = {}
        self.custom_policies: set[str] = set()
        """Names of the account's custom RAM policies (system ones are known by name)."""

    def create(
        self, kind: str, name: str, region: str, stuck: bool = False, **fields: Any
    ) -> Resource:
        """A new resource of ``kind``, Pending from now for ``ready_after`` seconds."""
        now = self.clock()
        ready_at = None if stuck else now + self.ready_after
        key_id = fields.pop("id", None) or new_id(ID_PREFIX[kind])
        resource = Resource(kind, key_id, name, region, now, ready_at, **fields)
        with self.lock:
            self._kinds[kind][resource.id] = resource
        return resource

    def get(self, kind: str, resource_id: str, region: str | None = None) -> Resource | None:
        """The resource, if it exists (in ``region``, when one is given)."""
        found = self._kinds[kind].get(resource_id)
        if found is None or (region is not None and found.region != region):
            return None
        return found

    def remove(self, resource: Resource) -> None:
        """Delete a resource at once."""
        with self.lock:
            self._kinds[resource.kind].pop(resource.id, None)

    def all(self, kind: str) -> list[Resource]:
        """Every resource of ``kind``, oldest first."""
        with self.lock:
            return list(self._kinds[kind].values())

    def children(self, kind: str, parent: str) -> list[Resource]:
        """The resources of ``kind`` whose parent is ``parent``."""
        return [r for r in self.all(kind) if r.parent == parent]

    def status(self, resource: Resource) -> str:
        """The resource's status now."""
        return resource.status(self.clock())

    def count(self, kind: str, status: str | None = None) -> int:
        """How many resources of ``kind`` exist (with ``status``, when one is given)."""
        now = self.clock()
        return sum(1 for r in self.all(kind) if status is None or r.status(now) == status)

    def summaries(self) -> list[dict[str, Any]]:
        """Every resource, as the page and the JSON listing show it."""
        now = self.clock()
        return [r.summary(now) for kind in KINDS for r in self.all(kind)]

    def recall(self, key: tuple[str, ...]) -> Remembered | None:
        """What a ClientToken's first successful call answered."""
        return self._tokens.get(key)

    def remember(self, key: tuple[str, ...], fingerprint: str, answer: dict[str, Any]) -> None:
        """Keep a ClientToken's successful answer, for its retries."""
        with self.lock:
            self._tokens[key] = Remembered(fingerprint, answer)

    def reset(self) -> None:
        """Forget every resource and ClientToken."""
        with self.lock:
            for resources in self._kinds.values():
                resources.clear()
            self._tokens.clear()


def usable_addresses(cidr: str) -> int:
    """How many addresses of a vSwitch's block instances can have."""
    return int(ipaddress.ip_network(cidr).num_addresses) - 1 - RESERVED_AT_END


def allocate_ip(vswitch: Resource) -> str | None:
    """The lowest free private address of the vSwitch, now taken; None when it is full."""
    network = ipaddress.ip_network(vswitch.cidr or "")
    used: set[int] = vswitch.attrs.setdefault("used", set())
    for offset in range(vswitch.attrs.get("next", 1), usable_addresses(str(network)) + 1):
        if offset not in used:
            used.add(offset)
            vswitch.attrs["next"] = offset + 1
            return str(network.network_address + offset)
    return None


def release_ip(vswitch: Resource, address: str) -> None:
    """Give an instance's address back to its vSwitch."""
    network = ipaddress.ip_network(vswitch.cidr or "")
    offset = int(ipaddress.ip_address(address)) - int(network.network_address)
    vswitch.attrs.setdefault("used", set()).discard(offset)
    vswitch.attrs["next"] = min(vswitch.attrs.get("next", 1), offset)
