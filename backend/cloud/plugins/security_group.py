"""A security group in a VPC: created at once (synchronously)."""

from collections.abc import Mapping
from typing import Any

from backend.cloud.clients import CloudClients
from backend.cloud.errors import translated
from backend.cloud.plugins.base import Param, Progress, Started
from backend.cloud.plugins.common import ECS_NAME, answer, deleting, describing, given

NOT_FOUND = frozenset({"InvalidSecurityGroupId.NotFound"})
"""The code by which the ECS API says a security group does not exist."""


class SecurityGroupPlugin:
    """An ECS security group (no rules: instances in it reach each other, nothing reaches in)."""

    type = "ecs.security_group"
    asynchronous = False
    parameters: Mapping[str, Param] = {
        "name": Param(
            pattern=ECS_NAME,
            low=2,
            high=128,
            help="the group's name: 2-128 letters, digits, ':', '_', '.' or '-', "
            "starting with a letter",
        ),
    }

    def start(
        self, cloud: CloudClients, spec: Mapping[str, Any], token: str, inputs: Mapping[str, Any]
    ) -> Started:
        """CreateSecurityGroup, idempotent by the step's token."""
        from alibabacloud_ecs20140526 import models

        vpc_id = given("vpc_id", "CreateSecurityGroup", spec, inputs)
        request = models.CreateSecurityGroupRequest(
            region_id=cloud.region,
            vpc_id=vpc_id,
            security_group_name=spec.get("name"),
            client_token=token,
        )
        with translated("CreateSecurityGroup"):
            created = answer(cloud.ecs().create_security_group(request))
        group_id = created["SecurityGroupId"]
        results = {"security_group_id": group_id, "vpc_id": vpc_id}
        return Started(group_id, ready=True, results=results)

    def check(self, cloud: CloudClients, resource_id: str) -> Progress:
        """DescribeSecurityGroupAttribute: a group that exists is ready."""
        from alibabacloud_ecs20140526 import models

        request = models.DescribeSecurityGroupAttributeRequest(
            region_id=cloud.region, security_group_id=resource_id
        )
        with describing("DescribeSecurityGroupAttribute", NOT_FOUND):
            group = answer(cloud.ecs().describe_security_group_attribute(request))
        results = {"security_group_id": resource_id, "vpc_id": group.get("VpcId")}
        return Progress(True, "Available", results)

    def delete(self, cloud: CloudClients, resource_id: str) -> None:
        """DeleteSecurityGroup; a group that is gone already is fine."""
        from alibabacloud_ecs20140526 import models

        request = models.DeleteSecurityGroupRequest(
            region_id=cloud.region, security_group_id=resource_id
        )
        with deleting("DeleteSecurityGroup", NOT_FOUND):
            cloud.ecs().delete_security_group(request)
