"""A VPC: created asynchronously, ready when its status is Available."""

from collections.abc import Mapping
from typing import Any

from backend.cloud.clients import CloudClients
from backend.cloud.errors import translated
from backend.cloud.plugins.base import Param, Progress, Started
from backend.cloud.plugins.common import NAME, answer, cidr_pattern, deleting, describing

NOT_FOUND = frozenset({"InvalidVpcId.NotFound", "InvalidVpcID.NotFound", "Forbidden.VpcNotFound"})
"""The codes by which the VPC API says a VPC does not exist (it has used all three)."""


class VpcPlugin:
    """A virtual private cloud in the configured region."""

    type = "vpc"
    asynchronous = True
    parameters: Mapping[str, Param] = {
        "cidr_block": Param(
            default="10.0.0.0/16",
            pattern=cidr_pattern(16, 28),
            help="the VPC's private IPv4 range, mask 16 to 28 bits, "
            "e.g. 10.0.0.0/16, 172.16.0.0/16 or 192.168.0.0/16",
        ),
        "name": Param(
            pattern=NAME, low=1, high=128, help="the VPC's name, 1-128 characters, not a URL"
        ),
        "description": Param(
            pattern=NAME, low=1, high=256, help="what the VPC is for, 1-256 characters"
        ),
    }

    def start(
        self, cloud: CloudClients, spec: Mapping[str, Any], token: str, inputs: Mapping[str, Any]
    ) -> Started:
        """CreateVpc, idempotent by the step's token."""
        from alibabacloud_vpc20160428 import models

        request = models.CreateVpcRequest(
            region_id=cloud.region,
            cidr_block=spec.get("cidr_block"),
            vpc_name=spec.get("name"),
            description=spec.get("description"),
            client_token=token,
        )
        with translated("CreateVpc"):
            created = answer(cloud.vpc().create_vpc(request))
        return Started(created["VpcId"])

    def check(self, cloud: CloudClients, resource_id: str) -> Progress:
        """DescribeVpcAttribute: ready once Available."""
        from alibabacloud_vpc20160428 import models

        request = models.DescribeVpcAttributeRequest(region_id=cloud.region, vpc_id=resource_id)
        with describing("DescribeVpcAttribute", NOT_FOUND):
            vpc = answer(cloud.vpc().describe_vpc_attribute(request))
        status = str(vpc.get("Status"))
        if status != "Available":
            return Progress(False, status)
        results = {"vpc_id": resource_id, "cidr_block": vpc.get("CidrBlock"), "status": status}
        return Progress(True, status, results)

    def delete(self, cloud: CloudClients, resource_id: str) -> None:
        """DeleteVpc; a VPC that is gone already is fine."""
        from alibabacloud_vpc20160428 import models

        request = models.DeleteVpcRequest(region_id=cloud.region, vpc_id=resource_id)
        with deleting("DeleteVpc", NOT_FOUND):
            cloud.vpc().delete_vpc(request)
