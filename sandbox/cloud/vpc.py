"""VPC 2016-04-28: VPCs and vSwitches, Pending until ready, with their documented refusals.

Deleting a VPC that still has vSwitches answers ``400 DependencyViolation.VSwitch``, one that
still has security groups ``400 DependencyViolation.SecurityGroup``; a vSwitch that still
has instances, ``400 DependencyViolation`` (the DeleteVpc / DeleteVSwitch error tables).
"""

import ipaddress
import re
from typing import Any

from sandbox.cloud import network
from sandbox.cloud.actions import VPC, Call, Registry
from sandbox.cloud.errors import ApiError, invalid, missing
from sandbox.cloud.state import Resource, iso, new_id, usable_addresses

actions = Registry(VPC)
DEFAULT_CIDR = "172.16.0.0/12"
"""What CreateVpc uses when no CidrBlock is given."""
PAGE_SIZE, MOST_PER_PAGE, MOST_VPC_IDS = 10, 50, 20


def _vpc_not_found() -> ApiError:
    return ApiError(404, "InvalidVpcId.NotFound", "Specified VPC does not exist.")


def _vswitch_not_found() -> ApiError:
    return ApiError(404, "InvalidVSwitchId.NotFound", "Specified virtual switch does not exist.")


def _text(call: Call, name: str, most: int, code: str) -> str:
    """An optional name or description: 1 to ``most`` characters, not a link."""
    value = call.params.get(name) or ""
    if len(value) > most or value.startswith(("http://", "https://")):
        raise ApiError(
            400, code, f"{name} must be 1 to {most} characters and not start with http(s)://."
        )
    return value


def _vpc(call: Call, region: str | None) -> Resource:
    found = call.state.get("vpc", call.params.required("VpcId"), region)
    if found is None:
        raise _vpc_not_found()
    return found


def _vswitch(call: Call) -> Resource:
    found = call.state.get("vswitch", call.params.required("VSwitchId"), call.region(False))
    if found is None:
        raise _vswitch_not_found()
    return found


@actions.action("CreateVpc", client_token=True)
def create_vpc(call: Call) -> dict[str, Any]:
    region = call.region()
    block = network.vpc_block(call.params.get("CidrBlock") or DEFAULT_CIDR)
    name = _text(call, "VpcName", 128, "InvalidVpcName.Malformed")
    description = _text(call, "Description", 256, "InvalidVpcDiscription.Malformed")  # sic
    call.stop_if_dry_run()
    attrs = {
        "vrouter_id": new_id("vrt"),
        "route_table_id": new_id("vtb"),
        "resource_group_id": call.params.get("ResourceGroupId") or "rg-acfmsandbox0000",
    }
    vpc = call.state.create(
        "vpc",
        name,
        region or "",
        call.stuck(),
        cidr=str(block),
        description=description,
        attrs=attrs,
    )
    return {
        "VpcId": vpc.id,
        "VRouterId": attrs["vrouter_id"],
        "RouteTableId": attrs["route_table_id"],
        "ResourceGroupId": attrs["resource_group_id"],
    }


def _vpc_fields(call: Call, vpc: Resource) -> dict[str, Any]:
    """The fields DescribeVpcAttribute and DescribeVpcs share."""
    vswitches = [v.id for v in call.state.children("vswitch", vpc.id)]
    return {
        "VpcId": vpc.id,
        "VpcName": vpc.name,
        "Status": call.state.status(vpc),
        "CidrBlock": vpc.cidr,
        "RegionId": vpc.region,
        "VRouterId": vpc.attrs["vrouter_id"],
        "CreationTime": iso(vpc.created),
        "Description": vpc.description,
        "IsDefault": False,
        "ResourceGroupId": vpc.attrs["resource_group_id"],
        "VSwitchIds": {"VSwitchId": vswitches},
        "UserCidrs": {"UserCidr": []},
        "Tags": {"Tag": []},
    }


@actions.action("DescribeVpcAttribute")
def describe_vpc_attribute(call: Call) -> dict[str, Any]:
    vpc = _vpc(call, call.region())
    return {
        **_vpc_fields(call, vpc),
        "SecondaryCidrBlocks": {"SecondaryCidrBlock": []},
        "CloudResources": {"CloudResourceSetType": []},
        "EnabledIpv6": False,
        "ClassicLinkEnabled": False,
    }


@actions.action("DescribeVpcs")
def describe_vpcs(call: Call) -> dict[str, Any]:
    region = call.region()
    ids = [i.strip() for i in (call.params.get("VpcId") or "").split(",") if i.strip()]
    if len(ids) > MOST_VPC_IDS:
        raise invalid("VpcId", call.params.get("VpcId"), f"At most {MOST_VPC_IDS} ids.")
    page = call.params.integer("PageNumber", 1, 1, 1_000_000)
    size = call.params.integer("PageSize", PAGE_SIZE, 1, MOST_PER_PAGE)
    name = call.params.get("VpcName")
    default_only = call.params.boolean("IsDefault")  # the sandbox has no default VPC
    found = [
        vpc
        for vpc in call.state.all("vpc")
        if vpc.region == region
        and (not ids or vpc.id in ids)
        and (name is None or vpc.name == name)
        and not default_only
    ]
    shown = found[(page - 1) * size : page * size]
    return {
        "TotalCount": len(found),
        "PageNumber": page,
        "PageSize": size,
        "Vpcs": {"Vpc": [_vpc_fields(call, vpc) for vpc in shown]},
    }


@actions.action("DeleteVpc", client_token=True)
def delete_vpc(call: Call) -> dict[str, Any]:
    vpc = _vpc(call, call.region(False))
    if call.state.status(vpc) != "Available":
        raise ApiError(
            400, "IncorrectVpcStatus", "Current VPC status does not support this operation."
        )
    if call.state.children("vswitch", vpc.id):
        raise ApiError(
            400, "DependencyViolation.VSwitch", "Specified object has dependent resources."
        )
    if call.state.children("security_group", vpc.id):
        raise ApiError(
            400,
            "DependencyViolation.SecurityGroup",
            "Specified object has dependent resources SecurityGroup.",
        )
    call.stop_if_dry_run()
    call.state.remove(vpc)
    return {}


def _zone(call: Call, vpc: Resource) -> str:
    zone = call.params.required("ZoneId")
    if not re.fullmatch(rf"{re.escape(vpc.region)}-?[a-z]", zone):
        raise ApiError(
            404, "InvalidZoneId.NotFound", f"The specified zone {zone!r} does not exist."
        )
    return zone


def _block(call: Call, vpc: Resource) -> ipaddress.IPv4Network:
    vpc_block = ipaddress.IPv4Network(vpc.cidr or "")
    siblings = [ipaddress.IPv4Network(v.cidr or "") for v in call.state.children("vswitch", vpc.id)]
    text = call.params.get("CidrBlock")
    if text is not None:
        return network.vswitch_block(text, vpc_block, siblings)
    if call.params.get("CidrMask") is None:
        raise missing("CidrBlock")
    return network.free_block(vpc_block, call.params.integer("CidrMask", 0, 0, 32), siblings)


@actions.action("CreateVSwitch", client_token=True)
def create_vswitch(call: Call) -> dict[str, Any]:
    call.params.required("ZoneId")
    vpc = _vpc(call, call.region(False))
    if call.state.status(vpc) != "Available":
        raise ApiError(
            400, "IncorrectVpcStatus", "Current VPC status does not support this operation."
        )
    zone = _zone(call, vpc)
    block = _block(call, vpc)
    name = _text(call, "VSwitchName", 128, "InvalidVSwitchName.Malformed")
    description = _text(call, "Description", 256, "InvalidDescription.Malformed")
    call.stop_if_dry_run()
    vswitch = call.state.create(
        "vswitch",
        name,
        vpc.region,
        call.stuck(),
        parent=vpc.id,
        vpc_id=vpc.id,
        zone=zone,
        cidr=str(block),
        description=description,
    )
    return {"VSwitchId": vswitch.id}


@actions.action("DescribeVSwitchAttributes")
def describe_vswitch_attributes(call: Call) -> dict[str, Any]:
    vswitch = _vswitch(call)
    vpc = call.state.get("vpc", vswitch.vpc_id or "")
    used = len(vswitch.attrs.get("used", ()))
    return {
        "VSwitchId": vswitch.id,
        "VpcId": vswitch.vpc_id,
        "Status": call.state.status(vswitch),
        "CidrBlock": vswitch.cidr,
        "ZoneId": vswitch.zone,
        "AvailableIpAddressCount": usable_addresses(vswitch.cidr or "") - used,
        "VSwitchName": vswitch.name,
        "Description": vswitch.description,
        "CreationTime": iso(vswitch.created),
        "IsDefault": False,
        "ResourceGroupId": vpc.attrs["resource_group_id"] if vpc else "",
        "NetworkAclId": "",
        "RouteTable": {
            "RouteTableId": vpc.attrs["route_table_id"] if vpc else "",
            "RouteTableType": "System",
        },
        "ShareType": "",
        "EnabledIpv6": False,
        "Tags": {"Tag": []},
    }


@actions.action("DeleteVSwitch")
def delete_vswitch(call: Call) -> dict[str, Any]:
    vswitch = _vswitch(call)
    if call.state.status(vswitch) != "Available":
        raise ApiError(
            400,
            "IncorrectVSwitchStatus",
            "The current virtual switch status does not support this operation.",
        )
    if call.state.children("instance", vswitch.id):
        raise ApiError(400, "DependencyViolation", "Specified object has dependent resources.")
    call.stop_if_dry_run()
    call.state.remove(vswitch)
    return {}
