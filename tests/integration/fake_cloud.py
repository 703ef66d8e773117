"""Resource plugins of our own boundary, in memory: the changes core tested without a cloud.

Each fake keeps what it made by ClientToken, as the cloud does, so a repeated create gets
the first resource; asynchronous ones stay Pending for ``pending_checks`` checks.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from backend.cloud.errors import CloudRefused, CloudRetryable
from backend.cloud.plugins.base import Param, Plugins, Progress, Started

NAME = Param(help="a name")


@dataclass
class Resource:
    """One made-up resource."""

    id: str
    type: str
    spec: dict[str, Any]
    inputs: dict[str, Any]
    checks_left: int
    deleted: bool = False


@dataclass
class FakeCloud:
    """What the fakes made, and what they are told to refuse."""

    pending_checks: int = 1
    refuse: dict[str, str] = field(default_factory=dict)  # type -> the cloud's error code
    lose_answer: set[str] = field(default_factory=set)  # types whose next create goes unanswered
    throttled_checks: int = 0  # checks answered Throttling before any is answered
    refuse_checks: dict[str, str] = field(default_factory=dict)  # type -> code of a bad state
    resources: dict[str, Resource] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    creates: int = 0
    deleted: list[str] = field(default_factory=list)
    meanwhile: list[Callable[[], None]] = field(default_factory=list)
    """What others do while a create or check waits for the cloud: each done once, at the next."""

    def existing(self) -> list[Resource]:
        """The resources not deleted."""
        return [r for r in self.resources.values() if not r.deleted]


class FakePlugin:
    """A plugin whose resources live in a FakeCloud."""

    def __init__(
        self, fake: FakeCloud, type_: str, parameters: dict[str, Param], asynchronous: bool = True
    ) -> None:
        self.fake, self.type, self.parameters = fake, type_, parameters
        self.asynchronous = asynchronous
        self.key = type_.split(".")[-1] + "_id"

    def start(self, cloud: Any, spec: Any, token: str, inputs: Any) -> Started:
        self._meanwhile()
        if self.type in self.fake.refuse:
            code = self.fake.refuse[self.type]
            raise CloudRefused("Create", code, f"the fake refuses {self.type}", "req-1", 400)
        if token not in self.fake.tokens:
            self.fake.creates += 1
            resource_id = f"{self.type.split('.')[-1]}-{len(self.fake.resources) + 1}"
            checks = self.fake.pending_checks if self.asynchronous else 0
            self.fake.resources[resource_id] = Resource(
                resource_id, self.type, dict(spec), dict(inputs), checks
            )
            self.fake.tokens[token] = resource_id
        resource_id = self.fake.tokens[token]
        if self.type in self.fake.lose_answer:
            self.fake.lose_answer.discard(self.type)
            raise CloudRetryable("Create", None, "no answer from the cloud: connection dropped")
        ready = not self.asynchronous
        return Started(resource_id, ready, self._results(resource_id) if ready else {})

    def check(self, cloud: Any, resource_id: str) -> Progress:
        self._meanwhile()
        resource = self.fake.resources[resource_id]
        if self.fake.throttled_checks > 0:
            self.fake.throttled_checks -= 1
            raise CloudRetryable("Describe", "Throttling.User", "Request was denied", "req-2", 400)
        if self.type in self.fake.refuse_checks:
            code = self.fake.refuse_checks[self.type]
            raise CloudRefused("Describe", code, f"the fake's {self.type} broke", "req-3", 400)
        if resource.checks_left > 0:
            resource.checks_left -= 1
            return Progress(False, "Pending")
        return Progress(True, "Available", self._results(resource_id))

    def delete(self, cloud: Any, resource_id: str) -> None:
        self.fake.resources[resource_id].deleted = True
        self.fake.deleted.append(resource_id)

    def _meanwhile(self) -> None:
        while self.fake.meanwhile:
            self.fake.meanwhile.pop(0)()

    def _results(self, resource_id: str) -> dict[str, Any]:
        resource = self.fake.resources[resource_id]
        extra = {"private_ip": "10.0.0.7"} if self.type == "ecs.instance" else {}
        return {self.key: resource_id, **resource.inputs, **extra}


def fake_plugins(fake: FakeCloud) -> Plugins:
    """The four network and instance types, and a RAM user, as fakes."""
    plugins = Plugins()
    plugins.register(
        FakePlugin(fake, "vpc", {"cidr_block": Param(default="10.0.0.0/16"), "name": NAME})
    )
    plugins.register(
        FakePlugin(
            fake,
            "vswitch",
            {"zone_id": Param(required=True), "cidr_block": Param(required=True), "name": NAME},
        )
    )
    plugins.register(FakePlugin(fake, "ecs.security_group", {"name": NAME}, asynchronous=False))
    plugins.register(
        FakePlugin(
            fake,
            "ecs.instance",
            {
                "image_id": Param(required=True, help="the image"),
                "instance_type": Param(required=True, help="the instance type"),
                "name": NAME,
                "system_disk_size": Param(kind="int", low=20, high=500, default=40),
            },
        )
    )
    plugins.register(
        FakePlugin(
            fake,
            "ram.user",
            {
                "user_name": Param(required=True, pattern=r"[A-Za-z0-9._-]{1,64}"),
                "policies": Param(kind="list", default=[]),
            },
            asynchronous=False,
        )
    )
    return plugins
