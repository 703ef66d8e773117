"""The resource plugins, through the official SDKs, against the cloud sandbox on loopback."""

import ipaddress
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from backend.cloud.clients import CloudClients
from backend.cloud.credentials import CloudCredentials
from backend.cloud.errors import CloudNotFound, CloudRefused, CloudRetryable
from backend.cloud.plugins import all_plugins
from backend.cloud.plugins.base import MonthlyCost, Plugin, Progress
from sandbox.cloud import CloudSandbox
from sandbox.cloud import price as prices
from tests.conftest import wait_for

AK, SECRET = "dingpass-test-ak", "dingpass-test-secret"
REGION, ZONE = "cn-hangzhou", "cn-hangzhou-h"
IMAGE, TYPE = "aliyun_3_x64_20G_alibase_20240819.vhd", "ecs.g7.large"
READY_AFTER = 0.3
"""Seconds the sandbox keeps a new VPC, vSwitch or instance short of ready."""

PLUGINS = all_plugins()
VPC, VSWITCH, GROUP, INSTANCE, USER = (
    PLUGINS.get(name)
    for name in ("vpc", "vswitch", "ecs.security_group", "ecs.instance", "ram.user")
)


@pytest.fixture
def sandbox() -> Iterator[CloudSandbox]:
    cloud = CloudSandbox({AK: SECRET}, ready_after=READY_AFTER).start()
    yield cloud
    cloud.stop()


@pytest.fixture
def cloud(sandbox) -> CloudClients:
    """The clients dingpass builds, pointed at the sandbox."""
    return CloudClients(REGION, sandbox.url, CloudCredentials(AK, SECRET))


def spec(plugin: Plugin, **given: Any) -> dict[str, Any]:
    """A spec as the changes core hands it over: the plugin's defaults, then ``given``."""
    defaults = {name: p.default for name, p in plugin.parameters.items() if p.default is not None}
    return {**defaults, **given}


def until_ready(plugin: Plugin, cloud: CloudClients, resource_id: str) -> Progress:
    """The first check that finds the resource ready (within a few seconds)."""
    checks: list[Progress] = []
    assert wait_for(lambda: checks.append(plugin.check(cloud, resource_id)) or checks[-1].ready)
    return checks[-1]


def made(plugin: Plugin, cloud: CloudClients, token: str, inputs=None, **given: Any) -> str:
    """The id of a resource started with ``token``, once it is ready."""
    started = plugin.start(cloud, spec(plugin, **given), token, inputs or {})
    if not started.ready:
        until_ready(plugin, cloud, started.resource_id)
    return started.resource_id


@pytest.fixture
def vpc_id(cloud) -> str:
    return made(VPC, cloud, "chg-1-vpc")


@pytest.fixture
def vswitch_id(cloud, vpc_id) -> str:
    return made(
        VSWITCH, cloud, "chg-1-vsw", {"vpc_id": vpc_id}, zone_id=ZONE, cidr_block="10.0.1.0/24"
    )


@pytest.fixture
def group_id(cloud, vpc_id) -> str:
    return made(GROUP, cloud, "chg-1-sg", {"vpc_id": vpc_id}, name="web")


@pytest.fixture
def network(vswitch_id, group_id) -> dict[str, str]:
    """An instance's inputs: a ready vSwitch and a security group of its VPC."""
    return {"vswitch_id": vswitch_id, "security_group_id": group_id}


def test_every_resource_type_is_registered():
    assert PLUGINS.types() == ["ecs.instance", "ecs.security_group", "ram.user", "vpc", "vswitch"]


def test_every_parameter_says_what_it_is():
    assert all(param.help for plugin in PLUGINS for param in plugin.parameters.values())


# -- vpc ---------------------------------------------------------------------------------


def test_a_vpc_is_pending_until_available_then_reports_itself(cloud):
    started = VPC.start(cloud, spec(VPC, name="dev"), "chg-1-vpc", {})
    assert not started.ready
    assert VPC.check(cloud, started.resource_id) == Progress(False, "Pending")
    progress = until_ready(VPC, cloud, started.resource_id)
    assert progress.results == {
        "vpc_id": started.resource_id,
        "cidr_block": "10.0.0.0/16",
        "status": "Available",
    }


def test_a_vpc_started_again_with_its_token_is_the_same_vpc(cloud, sandbox):
    first = VPC.start(cloud, spec(VPC), "chg-1-vpc", {})
    again = VPC.start(cloud, spec(VPC), "chg-1-vpc", {})
    assert again.resource_id == first.resource_id
    assert sandbox.count("vpc") == 1


def test_a_deleted_vpc_is_gone_and_deleting_it_again_is_fine(cloud, sandbox, vpc_id):
    VPC.delete(cloud, vpc_id)
    VPC.delete(cloud, vpc_id)
    assert sandbox.count("vpc") == 0


def test_a_vpc_that_is_not_listed_is_asked_for_again(cloud, vpc_id):
    VPC.delete(cloud, vpc_id)
    with pytest.raises(CloudRetryable, match="InvalidVpcId.NotFound"):
        VPC.check(cloud, vpc_id)


# -- vswitch -----------------------------------------------------------------------------


def test_a_vswitch_is_made_in_the_vpc_of_an_earlier_step(cloud, vpc_id):
    started = VSWITCH.start(
        cloud,
        spec(VSWITCH, zone_id=ZONE, cidr_block="10.0.1.0/24"),
        "chg-1-vsw",
        {"vpc_id": vpc_id},
    )
    assert VSWITCH.check(cloud, started.resource_id).state == "Pending"
    assert until_ready(VSWITCH, cloud, started.resource_id).results == {
        "vswitch_id": started.resource_id,
        "vpc_id": vpc_id,
        "zone_id": ZONE,
        "cidr_block": "10.0.1.0/24",
    }


def test_a_vswitch_started_again_with_its_token_is_the_same(cloud, sandbox, vpc_id):
    given = spec(VSWITCH, zone_id=ZONE, cidr_block="10.0.1.0/24")
    first = VSWITCH.start(cloud, given, "chg-1-vsw", {"vpc_id": vpc_id})
    again = VSWITCH.start(cloud, given, "chg-1-vsw", {"vpc_id": vpc_id})
    assert again.resource_id == first.resource_id
    assert sandbox.count("vswitch") == 1


def test_a_vswitch_in_a_vpc_not_yet_available_is_tried_again(cloud):
    pending = VPC.start(cloud, spec(VPC), "chg-1-vpc", {}).resource_id
    given = spec(VSWITCH, zone_id=ZONE, cidr_block="10.0.1.0/24")
    with pytest.raises(CloudRetryable) as raised:
        VSWITCH.start(cloud, given, "chg-1-vsw", {"vpc_id": pending})
    assert raised.value.code == "IncorrectVpcStatus"


def test_a_vswitch_outside_its_vpcs_block_is_refused_in_the_clouds_words(cloud, vpc_id):
    given = spec(VSWITCH, zone_id=ZONE, cidr_block="192.168.1.0/24")
    with pytest.raises(CloudRefused) as raised:
        VSWITCH.start(cloud, given, "chg-1-vsw", {"vpc_id": vpc_id})
    assert str(raised.value).startswith(
        "CreateVSwitch refused: InvalidParameter: Specified CIDR block 192.168.1.0/24 is not "
        "valid in VPC 10.0.0.0/16. (request id "
    )


def test_a_vswitch_without_a_vpc_is_refused_before_any_call(cloud, sandbox):
    with pytest.raises(CloudRefused, match="vpc_id is needed"):
        VSWITCH.start(cloud, spec(VSWITCH, zone_id=ZONE, cidr_block="10.0.1.0/24"), "t", {})


def test_a_deleted_vswitch_is_gone_and_deleting_it_again_is_fine(cloud, sandbox, vswitch_id):
    VSWITCH.delete(cloud, vswitch_id)
    VSWITCH.delete(cloud, vswitch_id)
    assert sandbox.count("vswitch") == 0


# -- security group ----------------------------------------------------------------------


def test_a_security_group_is_ready_at_once(cloud, vpc_id):
    started = GROUP.start(cloud, spec(GROUP, name="web"), "chg-1-sg", {"vpc_id": vpc_id})
    assert started.ready
    assert started.results == {"security_group_id": started.resource_id, "vpc_id": vpc_id}


def test_a_security_group_started_again_with_its_token_is_the_same(cloud, sandbox, vpc_id):
    first = GROUP.start(cloud, spec(GROUP), "chg-1-sg", {"vpc_id": vpc_id})
    again = GROUP.start(cloud, spec(GROUP), "chg-1-sg", {"vpc_id": vpc_id})
    assert again.resource_id == first.resource_id
    assert sandbox.count("security_group") == 1


def test_a_security_group_checked_again_reports_itself(cloud, vpc_id, group_id):
    progress = GROUP.check(cloud, group_id)
    assert progress.ready
    assert progress.results == {"security_group_id": group_id, "vpc_id": vpc_id}


def test_a_deleted_security_group_is_gone_and_deleting_it_again_is_fine(cloud, sandbox, group_id):
    GROUP.delete(cloud, group_id)
    GROUP.delete(cloud, group_id)
    assert sandbox.count("security_group") == 0


def test_a_security_group_still_in_use_is_deleted_later(cloud, network):
    """In a rollback the instance goes first, and may still be being released."""
    INSTANCE.start(cloud, spec(INSTANCE, image_id=IMAGE, instance_type=TYPE), "chg-1-i", network)
    with pytest.raises(CloudRetryable) as raised:
        GROUP.delete(cloud, network["security_group_id"])
    assert raised.value.code == "DependencyViolation"


# -- ecs instance ------------------------------------------------------------------------


def instance_spec(**given: Any) -> dict[str, Any]:
    return spec(INSTANCE, **{"image_id": IMAGE, "instance_type": TYPE, "name": "web-1", **given})


def test_an_instance_is_running_in_its_vswitch_with_a_private_address(cloud, network, vpc_id):
    started = INSTANCE.start(cloud, instance_spec(), "chg-1-i", network)
    assert INSTANCE.check(cloud, started.resource_id).state in ("Pending", "Starting")
    results = until_ready(INSTANCE, cloud, started.resource_id).results
    assert ipaddress.ip_address(results.pop("private_ip")) in ipaddress.ip_network("10.0.1.0/24")
    assert results == {
        "instance_id": started.resource_id,
        "vswitch_id": network["vswitch_id"],
        "vpc_id": vpc_id,
        "zone_id": ZONE,
        "status": "Running",
    }


def test_an_instance_with_internet_bandwidth_reports_its_public_address(cloud, network):
    started = INSTANCE.start(cloud, instance_spec(internet_max_bandwidth_out=5), "chg-1-i", network)
    results = until_ready(INSTANCE, cloud, started.resource_id).results
    assert ipaddress.ip_address(results["public_ip"]).is_global


def test_an_instance_started_again_with_its_token_is_the_same(cloud, sandbox, network):
    first = INSTANCE.start(cloud, instance_spec(), "chg-1-i", network)
    again = INSTANCE.start(cloud, instance_spec(), "chg-1-i", network)
    assert again.resource_id == first.resource_id
    assert sandbox.count("instance") == 1


def test_an_instance_takes_an_existing_network_from_its_parameters(cloud, network):
    started = INSTANCE.start(cloud, instance_spec(**network), "chg-1-i", {})
    assert (
        until_ready(INSTANCE, cloud, started.resource_id).results["vswitch_id"]
        == (network["vswitch_id"])
    )


def test_an_earlier_steps_network_wins_over_the_parameters(cloud, network):
    given = instance_spec(vswitch_id="vsw-elsewhere", security_group_id="sg-elsewhere")
    started = INSTANCE.start(cloud, given, "chg-1-i", network)
    assert (
        until_ready(INSTANCE, cloud, started.resource_id).results["vswitch_id"]
        == (network["vswitch_id"])
    )


def test_a_deleted_instance_is_gone_and_deleting_it_again_is_fine(cloud, sandbox, network):
    instance_id = made(INSTANCE, cloud, "chg-1-i", network, image_id=IMAGE, instance_type=TYPE)
    INSTANCE.delete(cloud, instance_id)
    INSTANCE.delete(cloud, instance_id)
    assert sandbox.count("instance") == 0


def test_an_instance_that_is_not_listed_is_asked_for_again(cloud, network):
    instance_id = made(INSTANCE, cloud, "chg-1-i", network, image_id=IMAGE, instance_type=TYPE)
    INSTANCE.delete(cloud, instance_id)
    with pytest.raises(CloudRetryable, match=f"instance {instance_id} is not listed"):
        INSTANCE.check(cloud, instance_id)


def test_an_instance_type_the_cloud_does_not_sell_is_refused(cloud, network):
    given = instance_spec(instance_type="ecs.nonesuch")
    with pytest.raises(CloudRefused) as raised:
        INSTANCE.start(cloud, given, "chg-1-i", network)
    assert raised.value.code == "InvalidInstanceType.ValueNotSupported"
    assert "'ecs.nonesuch' does not exist" in raised.value.message


# -- what an instance costs --------------------------------------------------------------


def month_of(*hourly: Decimal) -> MonthlyCost:
    """What hourly sandbox prices come to in a month: their sum for 730 hours, to the cent."""
    month = sum(hourly, Decimal(0)) * 730
    return MonthlyCost(month.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP), "CNY")


@pytest.mark.parametrize(
    ("instance_type", "disk", "size"),
    [(TYPE, "cloud_essd", 40), ("ecs.c7.large", "cloud_efficiency", 100)],
)
def test_an_instance_costs_a_month_of_its_types_and_its_disks_hours(
    cloud, instance_type, disk, size
):
    given = instance_spec(instance_type=instance_type, system_disk_category=disk)
    cost = INSTANCE.monthly_cost(cloud, {**given, "system_disk_size": size})
    assert cost == month_of(prices.HOURLY[instance_type], prices.DISK_GIB_HOURLY[disk] * size)


def test_a_month_is_rounded_to_the_cent(cloud):
    """(0.544 + 41 × 0.0014) × 730 = 439.022."""
    cost = INSTANCE.monthly_cost(cloud, instance_spec(system_disk_size=41))
    assert cost == MonthlyCost(Decimal("439.02"), "CNY")


def test_public_bandwidth_paid_by_traffic_adds_nothing_to_the_month(cloud):
    """start's instances pay for traffic by the GiB (RunInstances' default): no hourly price."""
    public = INSTANCE.monthly_cost(cloud, instance_spec(internet_max_bandwidth_out=5))
    assert public == INSTANCE.monthly_cost(cloud, instance_spec())


def test_an_instance_type_the_cloud_does_not_sell_has_no_price(cloud):
    with pytest.raises(CloudRefused) as raised:
        INSTANCE.monthly_cost(cloud, instance_spec(instance_type="ecs.nonesuch.large"))
    assert (raised.value.action, raised.value.code) == (
        "DescribePrice",
        "InvalidInstanceType.ValueNotSupported",
    )


def test_a_throttled_price_is_asked_for_again(cloud, sandbox):
    sandbox.faults.set("throttling", action="DescribePrice", times=1)
    with pytest.raises(CloudRetryable) as raised:
        INSTANCE.monthly_cost(cloud, instance_spec())
    assert raised.value.code == "Throttling.User"
    assert INSTANCE.monthly_cost(cloud, instance_spec()) == month_of(
        prices.HOURLY[TYPE], prices.DISK_GIB_HOURLY["cloud_essd"] * 40
    )


def test_a_spec_without_an_instance_type_has_no_price_and_asks_nothing(cloud, sandbox):
    sandbox.faults.set("unavailable", action="DescribePrice")
    given = {k: v for k, v in instance_spec().items() if k != "instance_type"}
    assert INSTANCE.monthly_cost(cloud, given) is None


@pytest.mark.parametrize(
    ("cost", "text"),
    [
        (MonthlyCost(Decimal("398.52"), "CNY"), "约 ¥398.52/月（按量付费，按 730 小时计）"),
        (MonthlyCost(Decimal("438"), "CNY"), "约 ¥438.00/月（按量付费，按 730 小时计）"),
        (MonthlyCost(Decimal("398.52"), "USD"), "约 398.52 USD/月（按量付费，按 730 小时计）"),
    ],
)
def test_a_monthly_cost_reads_as_the_approval_form_shows_it(cost, text):
    assert cost.text() == text


# -- ram user ----------------------------------------------------------------------------


def user_spec(**given: Any) -> dict[str, Any]:
    return spec(USER, user_name="ci-bot", display_name="CI bot", **given)


def test_a_ram_user_is_made_with_its_policies(cloud):
    started = USER.start(cloud, user_spec(policies=["AliyunOSSReadOnlyAccess"]), "chg-1-u", {})
    assert started.ready
    assert started.results["user_name"] == started.resource_id == "ci-bot"
    assert started.results["policies"] == ["AliyunOSSReadOnlyAccess"]
    assert USER.check(cloud, "ci-bot").results == started.results


def test_a_ram_user_started_again_with_its_token_is_adopted(cloud, sandbox):
    given = user_spec(policies=["AliyunOSSReadOnlyAccess", "AliyunECSReadOnlyAccess"])
    first = USER.start(cloud, given, "chg-1-u", {})
    again = USER.start(cloud, given, "chg-1-u", {})
    assert again.results == first.results
    assert sandbox.count("user") == 1


def test_a_ram_user_name_taken_by_another_step_is_refused(cloud):
    USER.start(cloud, user_spec(), "chg-1-u", {})
    with pytest.raises(CloudRefused) as raised:
        USER.start(cloud, user_spec(), "chg-2-u", {})
    assert raised.value.code == "EntityAlreadyExists.User"
    assert "'ci-bot' is taken by a user this step did not create" in str(raised.value)


def test_a_ram_user_made_outside_dingpass_is_never_adopted(cloud):
    from alibabacloud_ram20150501 import models

    cloud.ram().create_user(models.CreateUserRequest(user_name="ci-bot"))
    with pytest.raises(CloudRefused, match="choose another user_name"):
        USER.start(cloud, user_spec(), "chg-1-u", {})


def test_an_unknown_policy_is_refused_naming_the_user_made_before(cloud, sandbox):
    with pytest.raises(CloudNotFound) as raised:
        USER.start(cloud, user_spec(policies=["NoSuchPolicy"]), "chg-1-u", {})
    assert raised.value.code == "EntityNotExist.Policy"
    assert sandbox.count("user") == 1 and raised.value.resource_id == user_spec()["user_name"]


def test_a_deleted_ram_user_loses_its_policies_and_is_gone(cloud, sandbox):
    USER.start(cloud, user_spec(policies=["AliyunOSSReadOnlyAccess"]), "chg-1-u", {})
    USER.delete(cloud, "ci-bot")
    USER.delete(cloud, "ci-bot")
    assert sandbox.count("user") == 0


def test_a_ram_user_dingpass_did_not_make_is_never_deleted(cloud, sandbox):
    from alibabacloud_ram20150501 import models

    cloud.ram().create_user(models.CreateUserRequest(user_name="ci-bot", comments="ops"))
    with pytest.raises(CloudRefused, match="did not create"):
        USER.delete(cloud, "ci-bot")
    assert sandbox.count("user") == 1


# -- what goes wrong on the way ----------------------------------------------------------


def test_a_throttled_create_is_tried_again(cloud, sandbox):
    sandbox.faults.set("throttling", action="CreateVpc", times=1)
    with pytest.raises(CloudRetryable) as raised:
        VPC.start(cloud, spec(VPC), "chg-1-vpc", {})
    assert raised.value.code == "Throttling.User"
    assert VPC.start(cloud, spec(VPC), "chg-1-vpc", {}).resource_id


def test_a_cloud_outage_is_tried_again(cloud, sandbox):
    sandbox.faults.set("unavailable", action="RunInstances")
    with pytest.raises(CloudRetryable, match="ServiceUnavailable"):
        INSTANCE.start(
            cloud, instance_spec(), "chg-1-i", {"vswitch_id": "v", "security_group_id": "s"}
        )


def test_a_lost_answer_is_tried_again_and_finds_the_vpc_it_made(cloud, sandbox):
    sandbox.faults.set("lose_answer", action="CreateVpc", times=1)
    with pytest.raises(CloudRetryable, match="connection dropped before an answer"):
        VPC.start(cloud, spec(VPC), "chg-1-vpc", {})
    assert VPC.start(cloud, spec(VPC), "chg-1-vpc", {}).resource_id
    assert sandbox.count("vpc") == 1


def test_a_wrong_secret_is_refused(sandbox):
    wrong = CloudClients(REGION, sandbox.url, CloudCredentials(AK, "not-the-secret"))
    with pytest.raises(CloudRefused) as raised:
        VPC.start(wrong, spec(VPC), "chg-1-vpc", {})
    assert raised.value.code == "SignatureDoesNotMatch"
    assert "not-the-secret" not in str(raised.value)


def test_function_computes_temporary_credentials_sign_the_calls(cloud, sandbox):
    sandbox.add_key("STS.fc-role", "fc-secret", "fc-token")
    headers = {
        "x-fc-access-key-id": "STS.fc-role",
        "x-fc-access-key-secret": "fc-secret",
        "x-fc-security-token": "fc-token",
    }
    signed = cloud.with_credentials(CloudCredentials.from_fc_headers(headers))
    assert VPC.start(signed, spec(VPC), "chg-1-vpc", {}).resource_id
