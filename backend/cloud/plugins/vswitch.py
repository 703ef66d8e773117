"""A vSwitch in a VPC: created asynchronously, ready when its status is Available."""

from collections.abc import Mapping
from typing import Any

from backend.cloud.clients import CloudClients
from backend.cloud.errors import translated
from backend.cloud.plugins.base import Param, Progress, Started
from backend.cloud.plugins.common import NAME, answer, cidr_pattern, deleting, describing, given

NOT_FOUND = frozenset({"InvalidVSwitchId.NotFound", "InvalidVswitchID.NotFound"})
"""The codes by which the VPC API says a vSwitch does not exist."""


class VSwitchPlugin:
    """A vSwitch (subnet) in one zone of a VPC, from an earlier step or given by id."""

    type = "vswitch"
    asynchronous = True
    parameters: Mapping[str, Param] = {
        "zone_id": Param(
            required=True,
            pattern=r"[a-z0-9-]+",
            help="the zone the vSwitch is in, e.g. cn-hangzhou-h; instances in it live there",
        ),
        "cidr_block": Param(
            required=True,
            pattern=cidr_pattern(16, 29),
            help="the vSwitch's IPv4 range, mask 16 to 29 bits, inside the VPC's range and "
            "overlapping no other vSwitch, e.g. 10.0.1.0/24",
        ),
        "name": Param(
            pattern=NAME, low=1, high=128, help="the vSwitch's name, 1-128 characters, not a URL"
        ),
    }

    def start(
        self, cloud: CloudClients, spec: Mapping[str, Any], token: str, inputs: Mapping[str, Any]
    ) -> Started:
        """CreateVSwitch, idempotent by the step's token."""
        from alibabacloud_vpc20160428 import models

        request = models.CreateVSwitchRequest(
            region_id=cloud.region,
            vpc_id=given("vpc_id", "CreateVSwitch", spec, inputs),
            zone_id=spec.get("zone_id"),
            cidr_block=spec.get("cidr_block"),
            v_switch_name=spec.get("name"),
            client_token=token,
        )
        with translated("CreateVSwitch"):
            created = answer(cloud.vpc().create_vswitch(request))
        return Started(created["VSwitchId"])

    def check(self, cloud: CloudClients, resource_id: str) -> Progress:
        """DescribeVSwitchAttributes: ready once Available."""
        from alibabacloud_vpc20160428 import models

        request = models.DescribeVSwitchAttributesRequest(
            region_id=cloud.region, v_switch_id=resource_id
        )
        with describing("DescribeVSwitchAttributes", NOT_FOUND):
            vswitch = answer(cloud.vpc().describe_vswitch_attributes(request))
        status = str(vswitch.get("Status"))
        if status != "Available":
            return Progress(False, status)
        results = {
            "vswitch_id": resource_id,
            "vpc_id": vswitch.get("VpcId"),
            "zone_id": vswitch.get("ZoneId"),
            "cidr_block": vswitch.get("CidrBlock"),
        }
        return Progress(True, status, results)

    def delete(self, cloud: CloudClients, resource_id: str) -> None:
        """DeleteVSwitch; a vSwitch that is gone already is fine."""
        from alibabacloud_vpc20160428 import models

        request = models.DeleteVSwitchRequest(region_id=cloud.region, v_switch_id=resource_id)
        with deleting("DeleteVSwitch", NOT_FOUND):
            cloud.vpc().delete_vswitch(request)
