"""An ECS instance in a vSwitch: created asynchronously, ready when Running."""

import json
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from backend.cloud.clients import CloudClients
from backend.cloud.errors import CloudRefused, CloudRetryable, translated
from backend.cloud.plugins.base import (
    HOURS_A_MONTH,
    MonthlyCost,
    Param,
    Progress,
    Results,
    Started,
)
from backend.cloud.plugins.common import ECS_NAME, answer, deleting, given, token_for

NOT_FOUND = frozenset({"InvalidInstanceId.NotFound"})
"""The code by which the ECS API says an instance does not exist."""

INTERNET_CHARGE_TYPE = "PayByTraffic"
"""How ``start``'s instances pay for their internet traffic: RunInstances' default, which
``start`` leaves in place. Traffic is billed by the GiB, so its bandwidth adds nothing to
the hourly price."""
CENT = Decimal("0.01")

DISK_CATEGORIES = (
    "cloud_essd",
    "cloud_auto",
    "cloud_essd_entry",
    "cloud_ssd",
    "cloud_efficiency",
    "cloud",
)


class EcsInstancePlugin:
    """One pay-as-you-go ECS instance; sign-in by key pair only, never a password."""

    type = "ecs.instance"
    asynchronous = True
    parameters: Mapping[str, Param] = {
        "image_id": Param(
            required=True,
            pattern=r"[A-Za-z0-9][A-Za-z0-9_.-]*",
            high=128,
            help="the image to boot, e.g. aliyun_3_x64_20G_alibase_20240528.vhd or m-xxxx",
        ),
        "instance_type": Param(
            required=True,
            pattern=r"ecs\.[a-z0-9-]+\.[a-z0-9-]+",
            help="the instance type, e.g. ecs.g7.large; it must be sold in the vSwitch's zone",
        ),
        "name": Param(
            pattern=ECS_NAME,
            low=2,
            high=128,
            help="the instance's name: 2-128 letters, digits, ':', '_', '.' or '-', "
            "starting with a letter",
        ),
        "system_disk_category": Param(
            default="cloud_essd", choices=DISK_CATEGORIES, help="the system disk's kind"
        ),
        "system_disk_size": Param(
            kind="int", default=40, low=20, high=500, help="the system disk's size in GiB, 20-500"
        ),
        "key_pair_name": Param(
            pattern=ECS_NAME,
            low=2,
            high=128,
            help="the SSH key pair (made beforehand in the region) to sign in with; "
            "dingpass never sets a password",
        ),
        "internet_max_bandwidth_out": Param(
            kind="int",
            default=0,
            low=0,
            high=100,
            help="outbound internet bandwidth in Mbit/s, 0-100; above 0 the instance gets a "
            "public IP address",
        ),
        "vswitch_id": Param(
            pattern=r"vsw-[A-Za-z0-9]+",
            help="the vSwitch to put it in, when that vSwitch exists already; "
            "one created by an earlier step of the change takes precedence",
        ),
        "security_group_id": Param(
            pattern=r"sg-[A-Za-z0-9]+",
            help="its security group, when that group exists already (in the vSwitch's VPC); "
            "one created by an earlier step of the change takes precedence",
        ),
    }

    def start(
        self, cloud: CloudClients, spec: Mapping[str, Any], token: str, inputs: Mapping[str, Any]
    ) -> Started:
        """RunInstances for one instance, idempotent by the step's token."""
        from alibabacloud_ecs20140526 import models

        request = models.RunInstancesRequest(
            region_id=cloud.region,
            amount=1,
            image_id=spec.get("image_id"),
            instance_type=spec.get("instance_type"),
            instance_name=spec.get("name"),
            v_switch_id=given("vswitch_id", "RunInstances", spec, inputs),
            security_group_id=given("security_group_id", "RunInstances", spec, inputs),
            key_pair_name=spec.get("key_pair_name"),
            internet_max_bandwidth_out=spec.get("internet_max_bandwidth_out"),
            system_disk=models.RunInstancesRequestSystemDisk(
                category=spec.get("system_disk_category"), size=spec.get("system_disk_size")
            ),
            client_token=token,
        )
        with translated("RunInstances"):
            created = answer(cloud.ecs().run_instances(request))
        return Started(created["InstanceIdSets"]["InstanceIdSet"][0])

    def check(self, cloud: CloudClients, resource_id: str) -> Progress:
        """DescribeInstances: ready once Running.

        An instance the answer leaves out raises CloudRetryable: the list is eventually
        consistent, so one just created may be missing for a moment; one that stays missing
        uses up the job's attempts and the step fails saying so.
        """
        from alibabacloud_ecs20140526 import models

        request = models.DescribeInstancesRequest(
            region_id=cloud.region, instance_ids=json.dumps([resource_id])
        )
        with translated("DescribeInstances"):
            listed = answer(cloud.ecs().describe_instances(request))
        found = [
            instance
            for instance in listed.get("Instances", {}).get("Instance", [])
            if instance.get("InstanceId") == resource_id
        ]
        if not found:
            raise CloudRetryable(
                "DescribeInstances",
                None,
                f"instance {resource_id} is not listed (one just created may not be yet)",
                listed.get("RequestId"),
            )
        status = str(found[0].get("Status"))
        if status != "Running":
            return Progress(False, status)
        return Progress(True, status, _results(found[0]))

    def monthly_cost(self, cloud: CloudClients, spec: Mapping[str, Any]) -> MonthlyCost | None:
        """DescribePrice for an hour of the instance ``start`` would make, times 730 hours.

        The hour is pay-as-you-go, in the client's region, with the spec's system disk and
        outbound bandwidth; internet traffic, billed by the GiB, is not in it. None for a
        spec without an instance type; a CloudError when the cloud gives no price.
        """
        if not spec.get("instance_type"):
            return None
        from alibabacloud_ecs20140526 import models

        request = models.DescribePriceRequest(
            region_id=cloud.region,
            resource_type="instance",
            instance_type=spec.get("instance_type"),
            price_unit="Hour",
            amount=1,
            internet_charge_type=INTERNET_CHARGE_TYPE,
            internet_max_bandwidth_out=spec.get("internet_max_bandwidth_out"),
            system_disk=models.DescribePriceRequestSystemDisk(
                category=spec.get("system_disk_category"), size=spec.get("system_disk_size")
            ),
        )
        with translated("DescribePrice"):
            priced = answer(cloud.ecs().describe_price(request))
        return _monthly(priced)

    def delete(self, cloud: CloudClients, resource_id: str) -> None:
        """DeleteInstances, forced (it is Running); an instance gone already is fine."""
        from alibabacloud_ecs20140526 import models

        request = models.DeleteInstancesRequest(
            region_id=cloud.region,
            instance_id=[resource_id],
            force=True,
            client_token=token_for("delete", resource_id),
        )
        with deleting("DeleteInstances", NOT_FOUND):
            cloud.ecs().delete_instances(request)


def _monthly(priced: Mapping[str, Any]) -> MonthlyCost:
    """A month of the hourly trade price (after discounts) in a DescribePrice answer."""
    price = (priced.get("PriceInfo") or {}).get("Price") or {}
    hourly, currency = price.get("TradePrice"), price.get("Currency")
    if not isinstance(hourly, (int, float)) or isinstance(hourly, bool) or not currency:
        raise CloudRefused(
            "DescribePrice",
            None,
            f"the answer holds no PriceInfo.Price.TradePrice and Currency (got {price!r})"[:300],
            priced.get("RequestId"),
        )
    # str() first: the JSON number as written (0.708), not the float's binary expansion.
    monthly = Decimal(str(hourly)) * HOURS_A_MONTH
    return MonthlyCost(monthly.quantize(CENT, rounding=ROUND_HALF_UP), str(currency))


def _results(instance: Mapping[str, Any]) -> Results:
    """What a Running instance reports, from its DescribeInstances entry."""
    network = instance.get("VpcAttributes") or {}
    private = (network.get("PrivateIpAddress") or {}).get("IpAddress") or []
    public = (instance.get("PublicIpAddress") or {}).get("IpAddress") or []
    elastic = (instance.get("EipAddress") or {}).get("IpAddress")
    results: Results = {
        "instance_id": instance.get("InstanceId"),
        "private_ip": private[0] if private else None,
        "vswitch_id": network.get("VSwitchId"),
        "vpc_id": network.get("VpcId"),
        "zone_id": instance.get("ZoneId"),
        "status": instance.get("Status"),
    }
    if public or elastic:
        results["public_ip"] = public[0] if public else elastic
    return results
