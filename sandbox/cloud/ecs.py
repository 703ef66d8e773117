"""ECS 2014-05-26: security groups and instances in the sandbox's vSwitches.

The sandbox is VPC-only: a security group needs a VpcId, an instance a VSwitchId, and the
two must share a VPC. Deleting a security group that instances still use answers
``403 DependencyViolation`` ("There is still instance(s) in the specified security group.").
"""

import fnmatch
import re
import secrets
from typing import Any

from sandbox.cloud.actions import ECS, Call, Registry
from sandbox.cloud.errors import ApiError, invalid, missing
from sandbox.cloud.state import Resource, allocate_ip, iso, release_ip, usable_addresses

actions = Registry(ECS)
INSTANCE_TYPE = re.compile(r"ecs\.([a-z0-9-]+)\.(small|medium|large|(\d*)xlarge)")
STATUSES = ("Pending", "Running", "Starting", "Stopping", "Stopped")
MOST_IDS, PAGE_SIZE, MOST_PER_PAGE = 100, 10, 100
DISK_CATEGORIES = (
    "cloud",
    "cloud_efficiency",
    "cloud_ssd",
    "cloud_essd",
    "cloud_auto",
    "cloud_essd_entry",
)
GROUP_NAME = re.compile(r"[A-Za-z\u4e00-\u9fff][\w.:\-\u4e00-\u9fff]{1,127}")


def _group_not_found(status: int = 404) -> ApiError:
    return ApiError(
        status, "InvalidSecurityGroupId.NotFound", "The specified security group does not exist."
    )


def _instance_not_found() -> ApiError:
    return ApiError(404, "InvalidInstanceId.NotFound", "The specified InstanceId does not exist.")


@actions.action("CreateSecurityGroup", client_token=True)
def create_security_group(call: Call) -> dict[str, Any]:
    region = call.region() or ""
    vpc_id = call.params.required("VpcId")  # no classic network in the sandbox
    vpc = call.state.get("vpc", vpc_id, region)
    if vpc is None:
        raise ApiError(404, "InvalidVpcId.NotFound", "The specified VPC does not exist.")
    name = call.params.get("SecurityGroupName") or ""
    if name and (not GROUP_NAME.fullmatch(name) or name.startswith(("http://", "https://"))):
        raise ApiError(
            400,
            "InvalidSecurityGroupName.Malformed",
            "SecurityGroupName must be 2 to 128 characters, starting with a letter.",
        )
    kind = call.params.get("SecurityGroupType") or "normal"
    if kind not in ("normal", "enterprise"):
        raise invalid("SecurityGroupType", kind, "It must be normal or enterprise.")
    group = call.state.create(
        "security_group",
        name,
        region,
        parent=vpc.id,
        vpc_id=vpc.id,
        description=call.params.get("Description") or "",
        attrs={"type": kind},
    )
    return {"SecurityGroupId": group.id}


@actions.action("DescribeSecurityGroupAttribute")
def describe_security_group_attribute(call: Call) -> dict[str, Any]:
    region = call.region() or ""
    group = call.state.get("security_group", call.params.required("SecurityGroupId"), region)
    if group is None:
        raise _group_not_found()
    return {
        "SecurityGroupId": group.id,
        "SecurityGroupName": group.name,
        "VpcId": group.vpc_id,
        "RegionId": region,
        "Description": group.description,
        "InnerAccessPolicy": "Accept",
        "Permissions": {"Permission": []},
    }


@actions.action("DeleteSecurityGroup")
def delete_security_group(call: Call) -> dict[str, Any]:
    region = call.region()
    group = call.state.get("security_group", call.params.required("SecurityGroupId"), region)
    if group is None:
        raise _group_not_found()
    if any(group.id in i.attrs["security_groups"] for i in call.state.all("instance")):
        raise ApiError(
            403,
            "DependencyViolation",
            "There is still instance(s) in the specified security group.",
        )
    call.state.remove(group)
    return {}


def _instance_type(call: Call) -> str:
    value = call.params.required("InstanceType")
    if not INSTANCE_TYPE.fullmatch(value):
        raise ApiError(
            400,
            "InvalidInstanceType.ValueNotSupported",
            f"The specified InstanceType {value!r} does not exist or beyond the permitted range.",
        )
    return value


def _vswitch(call: Call, region: str) -> Resource:
    vswitch = call.state.get("vswitch", call.params.required("VSwitchId"), region)
    if vswitch is None:
        raise ApiError(404, "InvalidVSwitchId.NotFound", "Specified virtual switch does not exist.")
    if call.state.status(vswitch) != "Available":
        raise ApiError(
            400,
            "IncorrectVSwitchStatus",
            "The current status of virtual switch does not support this operation.",
        )
    zone = call.params.get("ZoneId")
    if zone is not None and zone != vswitch.zone:
        raise ApiError(
            400,
            "InvalidParameter.Mismatch",
            "Specified virtual switch is not in the specified zone.",
        )
    return vswitch


def _security_groups(call: Call, region: str, vswitch: Resource) -> list[str]:
    ids = call.params.listing("SecurityGroupIds") or [call.params.required("SecurityGroupId")]
    for group_id in ids:
        group = call.state.get("security_group", group_id, region)
        if group is None:
            raise _group_not_found(400)
        if group.vpc_id != vswitch.vpc_id:
            raise ApiError(
                400,
                "InvalidParameter.Mismatch",
                "Specified security group and virtual switch are not in the same VPC.",
            )
    return ids


def _names(call: Call, amount: int) -> list[str]:
    name = call.params.get("InstanceName") or ""
    if call.params.boolean("UniqueSuffix") and amount > 1:
        return [f"{name}{n:03d}" for n in range(1, amount + 1)]
    return [name] * amount


@actions.action("RunInstances", client_token=True)
def run_instances(call: Call) -> dict[str, Any]:
    region = call.region() or ""
    image = call.params.required("ImageId")
    instance_type = _instance_type(call)
    if call.params.get("VSwitchId") is None:
        raise missing("VSwitchId")
    amount = call.params.integer("Amount", 1, 1, 100)
    vswitch = _vswitch(call, region)
    groups = _security_groups(call, region, vswitch)
    bandwidth = call.params.integer("InternetMaxBandwidthOut", 0, 0, 100)
    disk = call.params.get("SystemDisk.Category")
    if disk is not None and disk not in DISK_CATEGORIES:
        raise ApiError(
            400,
            "InvalidSystemDiskCategory.ValueNotSupported",
            f"The specified SystemDisk.Category {disk!r} is not valid.",
        )
    free = usable_addresses(vswitch.cidr or "") - len(vswitch.attrs.get("used", ()))
    if free < amount:
        raise ApiError(
            400,
            "QuotaExceeded.PrivateIpAddress",
            f"Don't have enough private IPs in this switch ({free} left, {amount} asked).",
        )
    call.stop_if_dry_run()
    stuck = call.stuck()
    attrs = {
        "image_id": image,
        "instance_type": instance_type,
        "security_groups": groups,
        "host_name": call.params.get("HostName") or "",
        "bandwidth": bandwidth,
        "tags": [(t.get("Key", ""), t.get("Value", "")) for t in call.params.structs("Tag")],
    }
    public = bandwidth > 0  # an outbound bandwidth above 0 gives each instance a public IP
    created = [
        call.state.create(
            "instance",
            name,
            region,
            stuck,
            parent=vswitch.id,
            vpc_id=vswitch.vpc_id,
            zone=vswitch.zone,
            ip=allocate_ip(vswitch),
            cidr=None,
            description=call.params.get("Description") or "",
            attrs={**attrs, "public_ip": _public_ip() if public else None},
        )
        for name in _names(call, amount)
    ]
    return {"InstanceIdSets": {"InstanceIdSet": [i.id for i in created]}}


def _public_ip() -> str:
    return f"47.96.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"


def _size(instance_type: str) -> tuple[int, int]:
    """vCPUs and memory in MiB an instance type implies (``ecs.g7.large``: 2 and 8192)."""
    match = INSTANCE_TYPE.fullmatch(instance_type)
    if match is None:
        return 1, 1024
    size, times = match.group(2), match.group(3)
    cpu = {"small": 1, "medium": 1, "large": 2}.get(size) or 4 * int(times or 1)
    per_cpu = {"c": 2, "r": 8}.get(match.group(1)[:1], 4)
    return cpu, cpu * per_cpu * 1024


def _instance_fields(call: Call, instance: Resource) -> dict[str, Any]:
    status = call.state.status(instance)
    cpu, memory = _size(instance.attrs["instance_type"])
    return {
        "InstanceId": instance.id,
        "InstanceName": instance.name,
        "Description": instance.description,
        "Status": status,
        "RegionId": instance.region,
        "ZoneId": instance.zone,
        "InstanceType": instance.attrs["instance_type"],
        "ImageId": instance.attrs["image_id"],
        "HostName": instance.attrs["host_name"] or instance.id,
        "CreationTime": iso(instance.created, minutes=True),
        "StartTime": iso(instance.ready_at, minutes=True)
        if status == "Running" and instance.ready_at
        else "",
        "Cpu": cpu,
        "Memory": memory,
        "OSType": "linux",
        "InstanceChargeType": "PostPaid",
        "InstanceNetworkType": "vpc",
        "InternetMaxBandwidthOut": instance.attrs["bandwidth"],
        "PublicIpAddress": {"IpAddress": [p] if (p := instance.attrs["public_ip"]) else []},
        "EipAddress": {"IpAddress": "", "AllocationId": ""},
        "InnerIpAddress": {"IpAddress": []},
        "VpcAttributes": {
            "VpcId": instance.vpc_id,
            "VSwitchId": instance.parent,
            "PrivateIpAddress": {"IpAddress": [instance.ip]},
            "NatIpAddress": "",
        },
        "SecurityGroupIds": {"SecurityGroupId": list(instance.attrs["security_groups"])},
        "Tags": {"Tag": [{"TagKey": k, "TagValue": v} for k, v in instance.attrs["tags"]]},
        "OperationLocks": {"LockReason": []},
        "DeletionProtection": False,
        "ExpiredTime": "2099-12-31T15:59Z",
    }


def _candidates(call: Call, ids: list[str] | None) -> list[Resource]:
    """The instances a DescribeInstances may list, oldest first: by id when ids are given."""
    if ids is None:
        return call.state.all("instance")
    found = {n: i for n in ids if (i := call.state.get("instance", n)) is not None}
    return sorted(found.values(), key=lambda i: i.created)


def _matches(call: Call, instance: Resource, status: str | None) -> bool:
    params = call.params
    name = params.get("InstanceName")
    return (
        (params.get("VpcId") in (None, instance.vpc_id))
        and (params.get("VSwitchId") in (None, instance.parent))
        and (params.get("ZoneId") in (None, instance.zone))
        and (params.get("SecurityGroupId") in (None, *instance.attrs["security_groups"]))
        and (status is None or call.state.status(instance) == status)
        and (name is None or fnmatch.fnmatchcase(instance.name, name))
    )


def _page(call: Call, total: int) -> tuple[int, int, dict[str, Any]]:
    """Where the page starts, its size, and the paging fields of the answer."""
    params = call.params
    if params.get("NextToken") is not None or params.get("MaxResults") is not None:
        size = params.integer("MaxResults", PAGE_SIZE, 1, MOST_PER_PAGE)
        token = params.get("NextToken") or "0"
        if not token.isdigit():
            raise invalid("NextToken", token, "Use the NextToken of the previous answer.")
        start = int(token)
        following = str(start + size) if start + size < total else ""
        return start, size, {"NextToken": following}
    page = params.integer("PageNumber", 1, 1, 1_000_000)
    size = params.integer("PageSize", PAGE_SIZE, 1, MOST_PER_PAGE)
    return (page - 1) * size, size, {"PageNumber": page, "PageSize": size, "NextToken": ""}


@actions.action("DescribeInstances")
def describe_instances(call: Call) -> dict[str, Any]:
    region = call.region()
    ids = call.params.json_list("InstanceIds", MOST_IDS)
    status = call.params.get("Status")
    if status is not None and status not in STATUSES:
        raise ApiError(
            404, "InvalidStatus.NotFound", f"The specified Status {status!r} is not valid."
        )
    found = [i for i in _candidates(call, ids) if i.region == region and _matches(call, i, status)]
    start, size, paging = _page(call, len(found))
    shown = found[start : start + size]
    return {
        "TotalCount": len(found),
        **paging,
        "Instances": {"Instance": [_instance_fields(call, i) for i in shown]},
    }


def _check_deletable(call: Call, instance: Resource, force: bool) -> None:
    status = call.state.status(instance)
    if force or status == "Stopped":
        return
    if status in ("Pending", "Starting"):
        raise ApiError(
            403,
            "IncorrectInstanceStatus.Initializing",
            "The specified instance is in initializing state.",
        )
    raise ApiError(
        403,
        "IncorrectInstanceStatus",
        "The current status of the resource does not support this operation.",
    )


def _delete(call: Call, instance: Resource) -> None:
    vswitch = call.state.get("vswitch", instance.parent or "")
    if vswitch is not None and instance.ip:
        release_ip(vswitch, instance.ip)
    call.state.remove(instance)


@actions.action("DeleteInstance")
def delete_instance(call: Call) -> dict[str, Any]:
    instance = call.state.get("instance", call.params.required("InstanceId"))
    if instance is None:
        raise _instance_not_found()
    _check_deletable(call, instance, call.params.boolean("Force"))
    call.stop_if_dry_run()
    _delete(call, instance)
    return {}


@actions.action("DeleteInstances", client_token=True)
def delete_instances(call: Call) -> dict[str, Any]:
    region = call.region()
    ids = call.params.listing("InstanceId")
    if not ids:
        raise missing("InstanceId.1")
    if len(ids) > MOST_IDS:
        raise invalid("InstanceId", len(ids), f"At most {MOST_IDS} instances per call.")
    force = call.params.boolean("Force")
    found = []
    for instance_id in ids:  # all or none: every one is checked before any is deleted
        instance = call.state.get("instance", instance_id, region)
        if instance is None:
            raise _instance_not_found()
        _check_deletable(call, instance, force)
        found.append(instance)
    call.stop_if_dry_run("DRYRUN.SUCCESS")
    for instance in found:
        _delete(call, instance)
    return {}
