"""The cloud sandbox, driven by the official VPC, ECS and RAM SDK clients, as dingpass does."""

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from alibabacloud_ecs20140526 import models as ecs_models
from alibabacloud_ecs20140526.client import Client as EcsClient
from alibabacloud_ram20150501 import models as ram_models
from alibabacloud_ram20150501.client import Client as RamClient
from alibabacloud_tea_openapi import utils_models
from alibabacloud_tea_openapi.exceptions import (
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_vpc20160428 import models as vpc_models
from alibabacloud_vpc20160428.client import Client as VpcClient
from darabonba.runtime import ExtendsParameters, RuntimeOptions
from Tea.exceptions import TeaException, UnretryableException

import sandbox.cloud as cloud_package
from sandbox.cloud import CloudSandbox, signature
from sandbox.cloud import price as price_table
from sandbox.cloud.auth import Authenticator, Incoming, Key
from tests.conftest import free_port, wait_for

DINGPASS = str(Path(sys.executable).with_name("dingpass"))

AK, SECRET = "sandbox-ak", "sandbox-secret"
STS_AK, STS_SECRET, STS_TOKEN = "STS.sandbox", "sts-secret", "sts-token-123"
REGION, ZONE = "cn-hangzhou", "cn-hangzhou-h"
IMAGE, TYPE = "aliyun_3_x64_20G_alibase_20240819.vhd", "ecs.g7.large"


@pytest.fixture
def cloud() -> Iterator[CloudSandbox]:
    """The sandbox with one permanent and one STS key; resources ready at once."""
    sandbox = CloudSandbox({AK: SECRET, STS_AK: (STS_SECRET, STS_TOKEN)}, ready_after=0).start()
    yield sandbox
    sandbox.stop()


def config(cloud: CloudSandbox | str, **changes: object) -> utils_models.Config:
    """The SDK Config dingpass builds, pointed at the sandbox (or at ``host:port``)."""
    settings = {
        "access_key_id": AK,
        "access_key_secret": SECRET,
        "endpoint": cloud if isinstance(cloud, str) else cloud.endpoint,
        "protocol": "http",
        "region_id": REGION,
        **changes,
    }
    return utils_models.Config(**settings)


@pytest.fixture
def vpc(cloud) -> VpcClient:
    return VpcClient(config(cloud))


@pytest.fixture
def ecs(cloud) -> EcsClient:
    return EcsClient(config(cloud))


@pytest.fixture
def ram(cloud) -> RamClient:
    return RamClient(config(cloud))


def refusal(call, *args, **kwargs) -> TeaException:
    """The exception the SDK raises for a refused call."""
    with pytest.raises(TeaException) as raised:
        call(*args, **kwargs)
    return raised.value


def new_vpc(vpc: VpcClient, cidr: str = "10.0.0.0/16", **more: object) -> str:
    request = vpc_models.CreateVpcRequest(region_id=REGION, cidr_block=cidr, **more)
    return vpc.create_vpc(request).body.vpc_id


def new_vswitch(vpc: VpcClient, vpc_id: str, cidr: str = "10.0.1.0/24") -> str:
    request = vpc_models.CreateVSwitchRequest(vpc_id=vpc_id, zone_id=ZONE, cidr_block=cidr)
    return vpc.create_vswitch(request).body.v_switch_id


def new_group(ecs: EcsClient, vpc_id: str) -> str:
    request = ecs_models.CreateSecurityGroupRequest(
        region_id=REGION, vpc_id=vpc_id, security_group_name="workers"
    )
    return ecs.create_security_group(request).body.security_group_id


def run_request(vswitch: str, group: str, **more: object) -> ecs_models.RunInstancesRequest:
    return ecs_models.RunInstancesRequest(
        region_id=REGION,
        image_id=IMAGE,
        instance_type=TYPE,
        v_switch_id=vswitch,
        security_group_id=group,
        **more,
    )


@pytest.fixture
def network(vpc, ecs) -> tuple[str, str, str]:
    """A VPC with a vSwitch (10.0.1.0/24) and a security group: (vpc, vswitch, group)."""
    vpc_id = new_vpc(vpc)
    return vpc_id, new_vswitch(vpc, vpc_id), new_group(ecs, vpc_id)


def vpc_status(vpc: VpcClient, vpc_id: str) -> str:
    request = vpc_models.DescribeVpcAttributeRequest(region_id=REGION, vpc_id=vpc_id)
    return vpc.describe_vpc_attribute(request).body.status


def instances(ecs: EcsClient, *ids: str, **more: object) -> list:
    request = ecs_models.DescribeInstancesRequest(
        region_id=REGION, instance_ids=json.dumps(ids), **more
    )
    return ecs.describe_instances(request).body.instances.instance


def fixed(headers: dict[str, str] | None = None, queries: dict[str, str] | None = None):
    """Runtime options that pin signed headers or v1 parameters (the SDK's public hook)."""
    return RuntimeOptions(extends_parameters=ExtendsParameters(headers=headers, queries=queries))


def test_the_package_exports_exactly_these_names():
    assert sorted(cloud_package.__all__) == [
        "CloudSandbox",
        "CloudState",
        "FAULT_KINDS",
        "Fault",
        "Faults",
        "Resource",
    ]


# --- one valid call per product -------------------------------------------------------------


def test_creates_a_vpc_and_describes_it(vpc):
    vpc_id = new_vpc(vpc, vpc_name="test vpc")
    request = vpc_models.DescribeVpcAttributeRequest(region_id=REGION, vpc_id=vpc_id)
    described = vpc.describe_vpc_attribute(request).body
    assert (described.vpc_name, described.cidr_block, described.status) == (
        "test vpc",
        "10.0.0.0/16",
        "Available",
    )
    assert vpc_id.startswith("vpc-") and described.vrouter_id.startswith("vrt-")


def test_runs_instances_with_private_ips_from_their_vswitch(ecs, network):
    _, vswitch, group = network
    created = ecs.run_instances(run_request(vswitch, group, amount=2)).body
    ids = created.instance_id_sets.instance_id_set
    found = instances(ecs, *ids)
    addresses = sorted(i.vpc_attributes.private_ip_address.ip_address[0] for i in found)
    assert addresses == ["10.0.1.1", "10.0.1.2"]
    assert {i.vpc_attributes.v_switch_id for i in found} == {vswitch}


def test_creates_a_ram_user_and_attaches_a_policy(ram):
    ram.create_user(ram_models.CreateUserRequest(user_name="worker-1", display_name="Worker 1"))
    ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            policy_type="System", policy_name="AliyunECSReadOnlyAccess", user_name="worker-1"
        )
    )
    user = ram.get_user(ram_models.GetUserRequest(user_name="worker-1")).body.user
    listed = ram.list_policies_for_user(ram_models.ListPoliciesForUserRequest(user_name="worker-1"))
    assert user.display_name == "Worker 1"
    assert [p.policy_name for p in listed.body.policies.policy] == ["AliyunECSReadOnlyAccess"]


def test_v1_signatures_are_accepted(cloud):
    v1 = VpcClient(config(cloud, signature_algorithm="v2"))
    vpc_id = new_vpc(v1, vpc_name="signed the old way")
    assert vpc_status(v1, vpc_id) == "Available"


# --- signatures, keys, clock and replays ---------------------------------------------------


@pytest.mark.parametrize("algorithm", [None, "v2"])
def test_refuses_a_wrong_secret(cloud, algorithm):
    client = VpcClient(
        config(cloud, access_key_secret="not-the-secret", signature_algorithm=algorithm)
    )
    error = refusal(client.describe_vpcs, vpc_models.DescribeVpcsRequest(region_id=REGION))
    assert (error.status_code, error.code) == (400, "SignatureDoesNotMatch")


def test_refuses_an_unknown_access_key(cloud):
    client = VpcClient(config(cloud, access_key_id="nobody"))
    error = refusal(client.describe_vpcs, vpc_models.DescribeVpcsRequest(region_id=REGION))
    assert (error.status_code, error.code) == (400, "InvalidAccessKeyId.NotFound")


@pytest.mark.parametrize("algorithm", [None, "v2"])
def test_accepts_an_sts_key_with_its_token(cloud, algorithm):
    client = VpcClient(
        config(
            cloud,
            access_key_id=STS_AK,
            access_key_secret=STS_SECRET,
            security_token=STS_TOKEN,
            signature_algorithm=algorithm,
        )
    )
    assert (
        client.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION)).body.total_count == 0
    )


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (None, "MissingSecurityToken"),
        ("another-token", "InvalidSecurityToken.MismatchWithAccessKey"),
    ],
)
def test_an_sts_key_needs_its_own_token(cloud, token, code):
    client = VpcClient(
        config(cloud, access_key_id=STS_AK, access_key_secret=STS_SECRET, security_token=token)
    )
    error = refusal(client.describe_vpcs, vpc_models.DescribeVpcsRequest(region_id=REGION))
    assert (error.status_code, error.code) == (400, code)


def test_refuses_a_replayed_nonce(vpc):
    pinned = fixed(headers={"x-acs-signature-nonce": "3a1f8c6e2b7d4e5f9a0b1c2d3e4f5a6b"})
    request = vpc_models.DescribeVpcsRequest(region_id=REGION)
    vpc.describe_vpcs_with_options(request, pinned)
    error = refusal(vpc.describe_vpcs_with_options, request, pinned)
    assert (error.status_code, error.code) == (400, "SignatureNonceUsed")


def test_refuses_a_replayed_v1_nonce(cloud):
    v1 = VpcClient(config(cloud, signature_algorithm="v2"))
    pinned = fixed(queries={"SignatureNonce": "3a1f8c6e2b7d4e5f9a0b1c2d3e4f5a6b"})
    request = vpc_models.DescribeVpcsRequest(region_id=REGION)
    v1.describe_vpcs_with_options(request, pinned)
    error = refusal(v1.describe_vpcs_with_options, request, pinned)
    assert error.code == "SignatureNonceUsed"


@pytest.mark.parametrize("minutes", [-16, 16])
def test_refuses_a_date_more_than_15_minutes_off(vpc, minutes):
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + minutes * 60))
    request = vpc_models.DescribeVpcsRequest(region_id=REGION)
    error = refusal(vpc.describe_vpcs_with_options, request, fixed(headers={"x-acs-date": date}))
    assert (error.status_code, error.code) == (400, "IllegalTimestamp")


def test_accepts_a_date_14_minutes_off(vpc):
    date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 14 * 60))
    request = vpc_models.DescribeVpcsRequest(region_id=REGION)
    vpc.describe_vpcs_with_options(request, fixed(headers={"x-acs-date": date}))


def signed_post(
    cloud: CloudSandbox, body: bytes, claimed_hash: str, unsigned: dict[str, str] | None = None
) -> requests.Response:
    """A DescribeVpcs signed correctly over headers that claim ``claimed_hash`` for the body,
    sent with the ``unsigned`` headers besides."""
    headers = {
        "host": cloud.endpoint,
        "x-acs-action": "DescribeVpcs",
        "x-acs-version": "2016-04-28",
        "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": os.urandom(16).hex(),
        "x-acs-content-sha256": claimed_hash,
        "content-type": "application/x-www-form-urlencoded",
    }
    names = sorted(headers)
    query = [("RegionId", REGION)]
    canonical = signature.canonical_request("POST", "/", query, headers, names, claimed_hash)
    sig = signature.acs3_signature(SECRET, signature.string_to_sign(canonical))
    headers["Authorization"] = (
        f"ACS3-HMAC-SHA256 Credential={AK},SignedHeaders={';'.join(names)},Signature={sig}"
    )
    headers |= unsigned or {}
    return requests.post(f"{cloud.url}/?RegionId={REGION}", data=body, headers=headers, timeout=5)


def test_accepts_a_form_body_that_matches_its_hash(cloud):
    body = b"PageSize=5"
    answer = signed_post(cloud, body, signature.sha256_hex(body))
    assert (answer.status_code, answer.json()["PageSize"]) == (200, 5)


def test_refuses_a_common_header_that_is_not_signed(cloud):
    unsigned = {"x-acs-accesskey-id": "someone-else"}
    answer = signed_post(cloud, b"", signature.sha256_hex(b""), unsigned)
    assert (answer.status_code, answer.json()["Code"]) == (400, "IncompleteSignature")


def test_a_v1_request_calls_the_action_it_signed_not_the_header_beside_it(cloud):
    vpc = VpcClient(config(cloud))
    vpc_id = new_vpc(vpc)
    params = {
        "Action": "DescribeVpcAttribute",
        "Version": "2016-04-28",
        "Format": "JSON",
        "RegionId": REGION,
        "VpcId": vpc_id,
        "AccessKeyId": AK,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "SignatureNonce": os.urandom(16).hex(),
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    pairs = sorted(params.items())
    params["Signature"] = signature.v2_signature(SECRET, signature.v2_string_to_sign("POST", pairs))
    answer = requests.post(
        cloud.url + "/", params=params, headers={"x-acs-action": "DeleteVpc"}, timeout=5
    )
    assert (answer.status_code, answer.json()["Code"]) == (400, "InvalidParameter")
    assert cloud.count("vpc") == 1


def test_refuses_a_body_that_does_not_match_its_hash(cloud):
    answer = signed_post(cloud, b"PageSize=5", signature.sha256_hex(b""))
    assert (answer.status_code, answer.json()["Code"]) == (400, "SignatureDoesNotMatch")


# --- the spec's test vectors against the verifier's own steps -------------------------------

VECTOR_QUERY = [
    ("RegionId", "cn-hangzhou"),
    ("CidrBlock", "10.0.0.0/8"),
    ("VpcName", "test vpc"),
    ("ClientToken", "0c593ea1-3bea-11e9-b96b-88e9fe637760"),
]
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
VECTOR_A_HEADERS = {
    "host": "vpc.cn-hangzhou.aliyuncs.com",
    "x-acs-action": "CreateVpc",
    "x-acs-version": "2016-04-28",
    "x-acs-date": "2024-01-01T00:00:00Z",
    "x-acs-signature-nonce": "3a1f8c6e2b7d4e5f9a0b1c2d3e4f5a6b",
    "x-acs-content-sha256": EMPTY,
}
VECTOR_B_HEADERS = {
    **VECTOR_A_HEADERS,
    "accept": "application/json",
    "host": "127.0.0.1:18080",
    "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
    "x-acs-credentials-provider": "static_ak",
}
VECTOR_B_CANONICAL = "\n".join(
    [
        "POST",
        "/",
        "CidrBlock=10.0.0.0%2F8&ClientToken=0c593ea1-3bea-11e9-b96b-88e9fe637760"
        "&RegionId=cn-hangzhou&VpcName=test%20vpc",
        *(f"{name}:{VECTOR_B_HEADERS[name]}" for name in sorted(VECTOR_B_HEADERS)),
        "",
        ";".join(sorted(VECTOR_B_HEADERS)),
        EMPTY,
    ]
)


def test_vector_a_signature():
    names = sorted(VECTOR_A_HEADERS)
    canonical = signature.canonical_request(
        "POST", "/", VECTOR_QUERY, VECTOR_A_HEADERS, names, EMPTY
    )
    assert signature.canonical_query(VECTOR_QUERY) == (
        "CidrBlock=10.0.0.0%2F8&ClientToken=0c593ea1-3bea-11e9-b96b-88e9fe637760"
        "&RegionId=cn-hangzhou&VpcName=test%20vpc"
    )
    assert signature.acs3_signature("testsecret", signature.string_to_sign(canonical)) == (
        "65b6b3c2e7d74fad0abb6020152786ed92b0df1a3c8c9b845027f989ed9d936b"
    )


def test_vector_b_canonical_request_and_string_to_sign():
    names = sorted(VECTOR_B_HEADERS)
    canonical = signature.canonical_request(
        "POST", "/", VECTOR_QUERY, VECTOR_B_HEADERS, names, EMPTY
    )
    to_sign = signature.string_to_sign(canonical)
    assert canonical == VECTOR_B_CANONICAL
    assert (
        to_sign
        == "ACS3-HMAC-SHA256\nc200b60d375ff2e23053bb16231d09278a52b286f27c66c5b10bcc97234da04b"
    )
    assert signature.acs3_signature("testsecret", to_sign) == (
        "8129dcc668e946c8c8b5171226417f5a0b0557cca7302dd9cf3a9ddfc8015b70"
    )


def test_the_verifier_accepts_vector_b_at_its_own_time():
    """The whole check (key, signature, date, nonce) on vector B's request, clock at 2024-01-01."""
    auth = Authenticator({"testid": Key("testsecret")}, clock=lambda: 1704067200.0)
    authorization = (
        f"ACS3-HMAC-SHA256 Credential=testid,SignedHeaders={';'.join(sorted(VECTOR_B_HEADERS))},"
        "Signature=8129dcc668e946c8c8b5171226417f5a0b0557cca7302dd9cf3a9ddfc8015b70"
    )
    request = Incoming(
        "POST", "/", VECTOR_QUERY, {**VECTOR_B_HEADERS, "authorization": authorization}
    )
    assert auth.authenticate(request).access_key_id == "testid"


@pytest.mark.parametrize(
    ("token", "expected"),
    [(None, "8+9vLaqDTvZ3Alo5dmoNPKuAmQ0="), ("sts-token-123", "fMezG33V+5X5z1lgtCBnUGgxzY4=")],
)
def test_v1_vector_signature(token, expected):
    params = [
        ("Action", "CreateVpc"),
        ("Format", "json"),
        ("Version", "2016-04-28"),
        ("Timestamp", "2024-01-01T00:00:00Z"),
        ("SignatureNonce", "3a1f8c6e2b7d4e5f9a0b1c2d3e4f5a6b"),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("AccessKeyId", "testid"),
        *VECTOR_QUERY,
        *([("SecurityToken", token)] if token else []),
    ]
    to_sign = signature.v2_string_to_sign("POST", params)
    assert signature.v2_signature("testsecret", to_sign) == expected


# --- faults ----------------------------------------------------------------------------------


def test_throttling_refuses_with_throttling_user(cloud, vpc):
    cloud.faults.set("throttling")
    error = refusal(vpc.describe_vpcs, vpc_models.DescribeVpcsRequest(region_id=REGION))
    assert isinstance(error, ClientException)
    assert (error.status_code, error.code) == (400, "Throttling.User")


def test_throttling_with_retry_after_raises_throttling_exception(cloud, vpc):
    cloud.faults.set("throttling", retry_after=2000)
    error = refusal(vpc.describe_vpcs, vpc_models.DescribeVpcsRequest(region_id=REGION))
    assert isinstance(error, ThrottlingException)
    assert error.retry_after == 2000


def test_a_fault_meets_only_its_action_and_only_its_next_calls(cloud, vpc):
    cloud.faults.set("throttling", action="CreateVpc", times=1)
    vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION))
    assert refusal(new_vpc, vpc).code == "Throttling.User"
    new_vpc(vpc)
    assert cloud.count("vpc") == 1 and cloud.faults.active() == []


def test_unavailable_answers_503(cloud, vpc):
    cloud.faults.set("unavailable", action="CreateVpc")
    error = refusal(new_vpc, vpc)
    assert isinstance(error, ServerException)
    assert (error.status_code, error.code) == (503, "ServiceUnavailable")
    assert cloud.count("vpc") == 0


def test_slow_answers_late(cloud, vpc):
    cloud.faults.set("slow", seconds=0.5)
    started = time.monotonic()
    vpc.describe_vpcs(vpc_models.DescribeVpcsRequest(region_id=REGION))
    assert time.monotonic() - started >= 0.5


def test_stuck_resources_never_leave_pending(cloud, vpc):
    cloud.faults.set("stuck", action="CreateVpc", times=1)
    stuck, normal = new_vpc(vpc), new_vpc(vpc)
    assert (vpc_status(vpc, stuck), vpc_status(vpc, normal)) == ("Pending", "Available")


def test_lose_answer_creates_but_never_answers(cloud, vpc):
    cloud.faults.set("lose_answer", action="CreateVpc", times=1)
    with pytest.raises(UnretryableException):
        new_vpc(vpc)
    assert cloud.count("vpc") == 1


def test_faults_are_switched_over_http(cloud, vpc):
    fault = {"kind": "throttling", "action": "DescribeVpcs", "times": 2, "retry_after": 500}
    added = requests.post(f"{cloud.url}/_sandbox/faults", json=fault, timeout=5)
    listed = requests.get(f"{cloud.url}/_sandbox/faults", timeout=5).json()
    assert added.status_code == 201
    assert listed["faults"] == [{**fault, "seconds": 0.0}]
    request = vpc_models.DescribeVpcsRequest(region_id=REGION)
    assert refusal(vpc.describe_vpcs, request).code == "Throttling.User"
    requests.delete(f"{cloud.url}/_sandbox/faults", timeout=5)
    vpc.describe_vpcs(request)


def test_a_bad_fault_is_refused_with_its_reason(cloud):
    answer = requests.post(f"{cloud.url}/_sandbox/faults", json={"kind": "meteor"}, timeout=5)
    assert answer.status_code == 400
    assert "meteor" in answer.json()["error"]


# --- ClientToken ---------------------------------------------------------------------------


def test_a_client_token_replays_the_first_answer(cloud, vpc):
    first = new_vpc(vpc, client_token="change-7-vpc")
    again = new_vpc(vpc, client_token="change-7-vpc")
    assert first == again and cloud.count("vpc") == 1


def test_a_client_token_with_other_parameters_is_refused(vpc):
    new_vpc(vpc, client_token="change-7-vpc")
    error = refusal(new_vpc, vpc, cidr="192.168.0.0/16", client_token="change-7-vpc")
    assert (error.status_code, error.code) == (400, "IdempotentParameterMismatch")


def test_a_retry_after_a_lost_answer_finds_the_first_resource(cloud, ecs, network):
    _, vswitch, group = network
    cloud.faults.set("lose_answer", action="RunInstances", times=1)
    request = run_request(vswitch, group, client_token="change-7-ecs")
    with pytest.raises(UnretryableException):
        ecs.run_instances(request)
    ids = ecs.run_instances(request).body.instance_id_sets.instance_id_set
    assert cloud.count("instance") == 1
    assert [i.instance_id for i in instances(ecs, *ids)] == ids


def test_client_tokens_hold_across_keys_of_the_account(cloud, vpc):
    """A runner retrying with fresh STS credentials still finds its VPC."""
    sts = VpcClient(
        config(cloud, access_key_id=STS_AK, access_key_secret=STS_SECRET, security_token=STS_TOKEN)
    )
    assert new_vpc(vpc, client_token="t-1") == new_vpc(sts, client_token="t-1")


# --- states ----------------------------------------------------------------------------------


def test_a_vpc_is_pending_then_available(cloud, vpc):
    cloud.ready_after = 0.3
    vpc_id = new_vpc(vpc)
    assert vpc_status(vpc, vpc_id) == "Pending"
    assert wait_for(lambda: vpc_status(vpc, vpc_id) == "Available")


def test_an_instance_is_pending_then_starting_then_running(cloud, ecs, network):
    _, vswitch, group = network
    cloud.ready_after = 1.0
    [instance] = ecs.run_instances(
        run_request(vswitch, group)
    ).body.instance_id_sets.instance_id_set
    seen = []

    def running() -> bool:
        seen.append(instances(ecs, instance)[0].status)
        return seen[-1] == "Running"

    assert wait_for(running)
    assert list(dict.fromkeys(seen)) == ["Pending", "Starting", "Running"]


def test_a_vswitch_in_a_pending_vpc_is_refused(cloud, vpc):
    cloud.ready_after = 60
    error = refusal(new_vswitch, vpc, new_vpc(vpc))
    assert (error.status_code, error.code) == (400, "IncorrectVpcStatus")


def test_an_instance_in_a_pending_vswitch_is_refused(cloud, vpc, ecs):
    vpc_id = new_vpc(vpc)
    group = new_group(ecs, vpc_id)
    cloud.ready_after = 60
    vswitch = new_vswitch(vpc, vpc_id)
    error = refusal(ecs.run_instances, run_request(vswitch, group))
    assert (error.status_code, error.code) == (400, "IncorrectVSwitchStatus")


def test_ready_after_is_set_over_http(cloud, vpc):
    changed = requests.put(f"{cloud.url}/_sandbox/settings", json={"ready_after": 60}, timeout=5)
    assert changed.json() == {"ready_after": 60.0}
    assert vpc_status(vpc, new_vpc(vpc)) == "Pending"


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cidr", "code"),
    [
        ("10.0.1.128/25", "InvalidCidrBlock.Overlapped"),
        ("192.168.1.0/24", "InvalidParameter"),
        ("10.0.2.0/30", "InvalidCirdrBlock.MaskLength"),
        ("10.0.2.1/24", "InvalidCidrBlock.Malformed"),
    ],
)
def test_a_vswitch_block_must_fit_its_vpc(vpc, network, cidr, code):
    error = refusal(new_vswitch, vpc, network[0], cidr)
    assert (error.status_code, error.code) == (400, code)


def test_a_group_and_vswitch_of_different_vpcs_are_refused(vpc, ecs, network):
    other_group = new_group(ecs, new_vpc(vpc, "192.168.0.0/16"))
    error = refusal(ecs.run_instances, run_request(network[1], other_group))
    assert (error.status_code, error.code) == (400, "InvalidParameter.Mismatch")


@pytest.mark.parametrize(
    ("call", "code"),
    [
        ("describe_vpc", "InvalidVpcId.NotFound"),
        ("describe_vswitch", "InvalidVSwitchId.NotFound"),
        ("delete_instance", "InvalidInstanceId.NotFound"),
        ("get_user", "EntityNotExist.User"),
    ],
)
def test_unknown_ids_are_not_found(vpc, ecs, ram, call, code):
    calls = {
        "describe_vpc": lambda: vpc_status(vpc, "vpc-bp1nothere"),
        "describe_vswitch": lambda: vpc.describe_vswitch_attributes(
            vpc_models.DescribeVSwitchAttributesRequest(v_switch_id="vsw-bp1nothere")
        ),
        "delete_instance": lambda: ecs.delete_instance(
            ecs_models.DeleteInstanceRequest(instance_id="i-bp1nothere", force=True)
        ),
        "get_user": lambda: ram.get_user(ram_models.GetUserRequest(user_name="nobody")),
    }
    error = refusal(calls[call])
    assert (error.status_code, error.code) == (404, code)


def test_a_missing_required_parameter_is_named(vpc, network):
    request = vpc_models.CreateVSwitchRequest(vpc_id=network[0], cidr_block="10.0.9.0/24")
    error = refusal(vpc.create_vswitch, request)
    assert (error.status_code, error.code) == (400, "MissingParameter")
    assert '"ZoneId"' in error.message


def test_a_vpc_with_a_vswitch_cannot_be_deleted(vpc):
    vpc_id = new_vpc(vpc)
    new_vswitch(vpc, vpc_id)
    error = refusal(vpc.delete_vpc, vpc_models.DeleteVpcRequest(region_id=REGION, vpc_id=vpc_id))
    assert (error.status_code, error.code) == (400, "DependencyViolation.VSwitch")


def test_a_vpc_with_a_security_group_cannot_be_deleted(vpc, ecs):
    vpc_id = new_vpc(vpc)
    new_group(ecs, vpc_id)
    error = refusal(vpc.delete_vpc, vpc_models.DeleteVpcRequest(region_id=REGION, vpc_id=vpc_id))
    assert (error.status_code, error.code) == (400, "DependencyViolation.SecurityGroup")


def test_a_vswitch_or_group_with_an_instance_cannot_be_deleted(vpc, ecs, network):
    _, vswitch, group = network
    ecs.run_instances(run_request(vswitch, group))
    switch_error = refusal(vpc.delete_vswitch, vpc_models.DeleteVSwitchRequest(v_switch_id=vswitch))
    group_error = refusal(
        ecs.delete_security_group,
        ecs_models.DeleteSecurityGroupRequest(region_id=REGION, security_group_id=group),
    )
    assert (switch_error.status_code, switch_error.code) == (400, "DependencyViolation")
    assert (group_error.status_code, group_error.code) == (403, "DependencyViolation")


def test_everything_is_deleted_in_order(cloud, vpc, ecs, network):
    vpc_id, vswitch, group = network
    ids = ecs.run_instances(run_request(vswitch, group)).body.instance_id_sets.instance_id_set
    ecs.delete_instances(
        ecs_models.DeleteInstancesRequest(region_id=REGION, instance_id=ids, force=True)
    )
    ecs.delete_security_group(
        ecs_models.DeleteSecurityGroupRequest(region_id=REGION, security_group_id=group)
    )
    vpc.delete_vswitch(vpc_models.DeleteVSwitchRequest(v_switch_id=vswitch))
    vpc.delete_vpc(vpc_models.DeleteVpcRequest(region_id=REGION, vpc_id=vpc_id))
    assert cloud.state.summaries() == []


def test_a_running_instance_is_deleted_only_with_force(ecs, network):
    _, vswitch, group = network
    [instance] = ecs.run_instances(
        run_request(vswitch, group)
    ).body.instance_id_sets.instance_id_set
    error = refusal(ecs.delete_instance, ecs_models.DeleteInstanceRequest(instance_id=instance))
    assert (error.status_code, error.code) == (403, "IncorrectInstanceStatus")


def test_describe_instances_pages_by_ten_by_default(ecs, network):
    _, vswitch, group = network
    ids = ecs.run_instances(
        run_request(vswitch, group, amount=12)
    ).body.instance_id_sets.instance_id_set
    assert len(instances(ecs, *ids)) == 10
    assert len(instances(ecs, *ids, max_results=100)) == 12


def test_an_existing_user_name_is_refused(ram):
    ram.create_user(ram_models.CreateUserRequest(user_name="worker-1"))
    error = refusal(ram.create_user, ram_models.CreateUserRequest(user_name="worker-1"))
    assert (error.status_code, error.code) == (409, "EntityAlreadyExists.User")


def test_a_user_with_policies_cannot_be_deleted(ram):
    ram.create_user(ram_models.CreateUserRequest(user_name="worker-1"))
    ram.attach_policy_to_user(
        ram_models.AttachPolicyToUserRequest(
            policy_type="System", policy_name="AliyunOSSReadOnlyAccess", user_name="worker-1"
        )
    )
    error = refusal(ram.delete_user, ram_models.DeleteUserRequest(user_name="worker-1"))
    assert (error.status_code, error.code) == (409, "DeleteConflict.User.Policy")


def test_an_unknown_action_is_not_found_in_json(cloud, vpc):
    error = refusal(
        vpc.call_api,
        utils_models.Params(
            action="CreateNatGateway",
            version="2016-04-28",
            protocol="HTTPS",
            pathname="/",
            method="POST",
            auth_type="AK",
            style="RPC",
            req_body_type="formData",
            body_type="json",
        ),
        utils_models.OpenApiRequest(query={"RegionId": REGION}),
        RuntimeOptions(),
    )
    assert (error.status_code, error.code) == (404, "InvalidAction.NotFound")


API_HEADERS = {"x-acs-action": "DescribeVpcs", "x-acs-version": "2016-04-28"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "code"),
    [
        ("POST", "/", API_HEADERS, "IncompleteSignature"),
        ("POST", "/?Action=DescribeVpcs&Version=2016-04-28", {}, "IncompleteSignature"),
        ("GET", "/favicon.ico", {}, "InvalidAction.NotFound"),
    ],
)
def test_errors_are_json_never_html(cloud, method, path, headers, code):
    answer = requests.request(method, f"{cloud.url}{path}", headers=headers, timeout=5)
    assert answer.headers["content-type"].startswith("application/json")
    assert set(answer.json()) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
    assert answer.json()["Code"] == code


# --- prices ----------------------------------------------------------------------------------


def price_request(**more: object) -> ecs_models.DescribePriceRequest:
    """DescribePrice for an hour of ecs.g7.large with a 40 GiB ESSD, changed by ``more``."""
    settings: dict[str, object] = {
        "region_id": REGION,
        "resource_type": "instance",
        "instance_type": TYPE,
        "system_disk": ecs_models.DescribePriceRequestSystemDisk(category="cloud_essd", size=40),
        **more,
    }
    return ecs_models.DescribePriceRequest(**settings)


def test_prices_an_hour_of_an_instance_and_its_system_disk_from_the_table(ecs):
    price = ecs.describe_price(price_request()).body.price_info.price
    instance, disk = price_table.HOURLY[TYPE], price_table.DISK_GIB_HOURLY["cloud_essd"] * 40
    assert (price.currency, price.trade_price) == ("CNY", float(instance + disk))
    assert {d.resource: d.trade_price for d in price.detail_infos.detail_info} == {
        "instanceType": float(instance),
        "systemDisk": float(disk),
        "bandwidth": 0.0,
    }


@pytest.mark.parametrize(("charge", "per_mbps"), [("PayByTraffic", 0), ("PayByBandwidth", 1)])
def test_outbound_bandwidth_costs_by_the_hour_only_when_paid_by_bandwidth(ecs, charge, per_mbps):
    """Traffic paid by the GiB is billed as it flows: nothing of it is in an hour's price."""
    plain = ecs.describe_price(price_request()).body.price_info.price.trade_price
    request = price_request(internet_charge_type=charge, internet_max_bandwidth_out=5)
    priced = ecs.describe_price(request).body.price_info.price.trade_price
    expected = price_table.BANDWIDTH_MBPS_HOURLY * 5 * per_mbps
    assert Decimal(str(priced)) - Decimal(str(plain)) == expected


PRICE_REFUSALS = [
    ({"region_id": None}, 400, "MissingParameter"),
    ({"instance_type": None}, 404, "InvalidInstanceType.Missing"),
    ({"instance_type": "ecs.nonesuch.large"}, 400, "InvalidInstanceType.ValueNotSupported"),
    ({"resource_type": "vm"}, 400, "InvalidResourceType.ValueNotSupported"),
    ({"price_unit": "Day"}, 400, "InvalidPriceUnit.ValueNotSupported"),
    ({"price_unit": "Hour", "period": 2}, 400, "InvalidPeriod"),
    ({"internet_max_bandwidth_out": 101}, 400, "InvalidInternetMaxBandwidthOut.ValueNotSupported"),
    (
        {"system_disk": ecs_models.DescribePriceRequestSystemDisk(category="cloud", size=501)},
        404,
        "InvalidSystemDiskSize.MoreThanMaxSize",
    ),
    # What the service prices but the sandbox has no number for: never a made-up price.
    ({"price_unit": "Month"}, 400, "PriceNotFound"),
    ({"resource_type": "disk"}, 400, "PriceNotFound"),
]


@pytest.mark.parametrize(
    ("changes", "status", "code"),
    PRICE_REFUSALS,
    ids=[f"{'+'.join(changes)}:{code}" for changes, _, code in PRICE_REFUSALS],
)
def test_a_price_the_service_would_not_give_is_refused(ecs, changes, status, code):
    error = refusal(ecs.describe_price, price_request(**changes))
    assert (error.status_code, error.code) == (status, code)


def test_a_price_request_meets_the_faults_like_any_call(cloud, ecs):
    cloud.faults.set("unavailable", action="DescribePrice", times=1)
    error = refusal(ecs.describe_price, price_request())
    assert (error.status_code, error.code) == (503, "ServiceUnavailable")
    assert ecs.describe_price(price_request()).body.price_info.price.currency == "CNY"


# --- what the sandbox shows ----------------------------------------------------------------


def test_the_page_lists_resources_and_faults(cloud, network):
    cloud.faults.set("slow", action="RunInstances", seconds=1)
    page = requests.get(f"{cloud.url}/", timeout=5).text
    for resource_id in network:
        assert f'data-resource="{resource_id}"' in page
    assert "10.0.1.0/24" in page and 'data-fault="slow"' in page


def test_resources_are_listed_as_json(cloud, network):
    listed = requests.get(f"{cloud.url}/_sandbox/resources", timeout=5).json()
    assert listed["counts"] == {
        "vpc": 1,
        "vswitch": 1,
        "security_group": 1,
        "instance": 0,
        "user": 0,
    }
    assert {r["id"]: r["type"] for r in listed["resources"]} == dict(
        zip(network, ["vpc", "vswitch", "security_group"], strict=True)
    )


def test_logs_hold_no_secret_and_no_token(cloud, caplog):
    caplog.set_level("INFO")
    for algorithm in (None, "v2"):
        client = VpcClient(
            config(
                cloud,
                access_key_id=STS_AK,
                access_key_secret=STS_SECRET,
                security_token=STS_TOKEN,
                signature_algorithm=algorithm,
            )
        )
        new_vpc(client)
    assert caplog.text.count("CreateVpc") == 2
    assert STS_SECRET not in caplog.text and STS_TOKEN not in caplog.text


# --- the command -----------------------------------------------------------------------------


def test_the_command_serves_the_sandbox(tmp_path: Path):
    port = free_port()
    env = {**os.environ, "CLOUD_ACCESS_KEY_ID": AK, "CLOUD_ACCESS_KEY_SECRET": SECRET}
    command = [DINGPASS, "cloud-sandbox", "--port", str(port), "--ready-after", "0"]
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            assert "Ctrl+C" in (process.stdout.readline() if process.stdout else "")
            client = VpcClient(config(f"127.0.0.1:{port}"))
            assert vpc_status(client, new_vpc(client)) in ("Pending", "Available")
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0


def test_dingpass_sandbox_serves_the_cloud_beside_dingtalk_with_a_key_it_prints(tmp_path: Path):
    dingtalk, cloud = free_port(), free_port()
    env = {
        **os.environ,
        "DINGTALK_APP_KEY": "dingsandbox",
        "DINGTALK_APP_SECRET": "sandbox-secret",
        "DINGTALK_PROCESS_CODE": "PROC-SANDBOX",
    }
    command = [DINGPASS, "sandbox", "--port", str(dingtalk), "--cloud-port", str(cloud)]
    with subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True
    ) as process:
        try:
            printed = "".join(process.stdout.readline() for _ in range(4) if process.stdout)
            key = printed.split("CLOUD_ACCESS_KEY_ID=")[1].split()[0]
            secret = printed.split("CLOUD_ACCESS_KEY_SECRET=")[1].split()[0]
            assert f"CLOUD_ENDPOINT=http://127.0.0.1:{cloud}" in printed
            client = VpcClient(
                config(f"127.0.0.1:{cloud}", access_key_id=key, access_key_secret=secret)
            )
            assert new_vpc(client).startswith("vpc-")
        finally:
            process.terminate()
        assert process.wait(timeout=10) == 0
