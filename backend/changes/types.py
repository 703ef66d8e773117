"""Change types: what a caller may ask for, its parameters, and the steps it is planned into.

Each plugin's resource type is a change type of one step; ``ecs.instance`` with
``"vpc": "new"`` is planned into a VPC, a vSwitch and a security group in it, then the
instance. A step takes what it needs from earlier steps' results through its ``inputs``.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from backend.changes.validation import message, validate
from backend.cloud.plugins.base import Param, Plugins
from backend.exceptions import Message, ValidationError

RESOURCE_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
STEP_NAMES = {
    "vpc": "vpc",
    "vswitch": "vswitch",
    "ecs.security_group": "security_group",
    "ecs.instance": "instance",
    "ram.user": "user",
}
INPUTS: dict[str, dict[str, Param]] = {
    # What a one-step change names itself that a planned step gets from an earlier one.
    "vswitch": {"vpc_id": Param(required=True, pattern=RESOURCE_ID, help="the VPC's id")},
    "ecs.security_group": {
        "vpc_id": Param(required=True, pattern=RESOURCE_ID, help="the VPC's id")
    },
    "ecs.instance": {
        "vswitch_id": Param(pattern=RESOURCE_ID, help="the vSwitch's id (unless vpc is new)"),
        "security_group_id": Param(
            pattern=RESOURCE_ID, help="the security group's id (unless vpc is new)"
        ),
    },
}
NEW_NETWORK = {
    "vpc": Param(choices=("new",), help='"new": create a VPC, vSwitch and security group for it'),
    "zone_id": Param(pattern=r"[a-z0-9-]{1,64}", help="the zone of the new vSwitch"),
    "vpc_cidr_block": Param(default="10.0.0.0/16", help="the new VPC's CIDR block"),
    "vswitch_cidr_block": Param(default="10.0.0.0/24", help="the new vSwitch's CIDR block"),
}
NAME_LENGTH = 128
"""The longest name a VPC, vSwitch or security group takes: derived names are cut to fit."""


@dataclass(frozen=True)
class PlannedStep:
    """A step as planned, before it is recorded."""

    name: str
    type: str
    spec: dict[str, Any]
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    origin: Mapping[str, str] = field(default_factory=dict)
    """The spec field each of this step's parameters came from, to name it in an error."""


@dataclass(frozen=True)
class Plan:
    """A valid request's spec, as checked (defaults filled in), and its steps."""

    spec: dict[str, Any]
    steps: list[PlannedStep]


Check = Callable[[dict[str, Any], Mapping[str, Any]], dict[str, Message]]


@dataclass(frozen=True)
class ChangeType:
    """A kind of change: its parameters and how a valid spec becomes steps."""

    name: str
    parameters: Mapping[str, Param]
    plan: Callable[[dict[str, Any]], list[PlannedStep]]
    check: "Check" = lambda spec, given: {}
    """More errors of a checked ``spec``, with the caller's own ``given`` spec beside it."""


def change_types(plugins: Plugins) -> dict[str, ChangeType]:
    """Every change type the plugins make possible."""
    types = {plugin.type: _single(plugin.type, plugin.parameters) for plugin in plugins}
    instance = plugins.get("ecs.instance")
    if instance is not None and {"vpc", "vswitch", "ecs.security_group"} <= set(types):
        types["ecs.instance"] = _instance(instance.parameters)
    return types


def plan(types: Mapping[str, ChangeType], body: Mapping[str, Any]) -> Plan:
    """The steps of the change ``body`` asks for; ValidationError with a message per field."""
    name = body.get("type")
    if not isinstance(name, str) or name not in types:
        known = ", ".join(sorted(types))
        raise ValidationError(
            {
                "type": message(
                    f"未知的变更类型；可用类型：{known}。", f"Unknown type; known: {known}."
                )
            }
        )
    kind = types[name]
    spec, errors = validate(body.get("spec", {}), kind.parameters)
    if not errors:
        errors = kind.check(spec, body.get("spec") or {})
    if errors:
        raise ValidationError(errors)
    return Plan(spec, kind.plan(spec))


def _single(type_: str, parameters: Mapping[str, Param]) -> ChangeType:
    inputs = INPUTS.get(type_, {})

    def one_step(spec: dict[str, Any]) -> list[PlannedStep]:
        own = {k: v for k, v in spec.items() if k not in inputs}
        given = {k: {"value": spec[k]} for k in inputs if k in spec}
        name = STEP_NAMES.get(type_, type_.replace(".", "_"))
        return [PlannedStep(name, type_, own, given, origin={k: k for k in own})]

    return ChangeType(type_, {**parameters, **inputs}, one_step)


def _instance(parameters: Mapping[str, Param]) -> ChangeType:
    """``ecs.instance`` in an existing vSwitch, or with ``"vpc": "new"`` in a network of its own."""
    inputs = INPUTS["ecs.instance"]
    existing = _single("ecs.instance", parameters).plan

    def steps(spec: dict[str, Any]) -> list[PlannedStep]:
        if spec.get("vpc") != "new":
            return existing({k: v for k, v in spec.items() if k not in NEW_NETWORK})
        return _new_network(spec, {k: v for k, v in spec.items() if k in parameters})

    def check(spec: dict[str, Any], given: Mapping[str, Any]) -> dict[str, Message]:
        if spec.get("vpc") == "new":
            errors: dict[str, Message] = {
                f"spec.{k}": message('与 "vpc": "new" 不能同时给出。', 'Not with "vpc": "new".')
                for k in inputs
                if k in spec
            }
            if "zone_id" not in spec:
                errors["spec.zone_id"] = message(
                    "新建 VPC 时必填。", 'Required with "vpc": "new": the zone of the vSwitch.'
                )
            return errors
        missing = {
            f"spec.{k}": message(
                '必填（或给出 "vpc": "new"）。', f'Required, unless "vpc" is "new": {p.help}.'
            )
            for k, p in inputs.items()
            if k not in spec
        }
        return missing | {
            f"spec.{k}": message('仅与 "vpc": "new" 一起使用。', 'Only with "vpc": "new".')
            for k in NEW_NETWORK
            if k in given and k != "vpc"
        }

    return ChangeType("ecs.instance", {**parameters, **inputs, **NEW_NETWORK}, steps, check)


def _new_network(spec: dict[str, Any], instance: dict[str, Any]) -> list[PlannedStep]:
    name = spec.get("name") or "dingpass"
    vpc_id = {"vpc_id": {"step": "vpc", "key": "vpc_id"}}
    own = {k: v for k, v in instance.items() if k not in INPUTS["ecs.instance"]}
    named = {"name": "name"}
    return [
        PlannedStep(
            "vpc",
            "vpc",
            {"cidr_block": spec["vpc_cidr_block"], "name": _derived(name, "-vpc")},
            origin={"cidr_block": "vpc_cidr_block", **named},
        ),
        PlannedStep(
            "vswitch",
            "vswitch",
            {
                "zone_id": spec["zone_id"],
                "cidr_block": spec["vswitch_cidr_block"],
                "name": _derived(name, "-vsw"),
            },
            vpc_id,
            ("vpc",),
            {"cidr_block": "vswitch_cidr_block", "zone_id": "zone_id", **named},
        ),
        PlannedStep(
            "security_group",
            "ecs.security_group",
            {"name": _derived(name, "-sg")},
            vpc_id,
            ("vpc",),
            named,
        ),
        PlannedStep(
            "instance",
            "ecs.instance",
            own,
            {
                "vswitch_id": {"step": "vswitch", "key": "vswitch_id"},
                "security_group_id": {"step": "security_group", "key": "security_group_id"},
            },
            ("vswitch", "security_group"),
            {k: k for k in own},
        ),
    ]


def _derived(name: str, suffix: str) -> str:
    """The name of a resource made for instance ``name``: ``web-1-vpc``, cut to fit."""
    return name[: NAME_LENGTH - len(suffix)] + suffix
