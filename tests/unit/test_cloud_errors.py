"""What the official Alibaba Cloud SDK raises, as our errors: retry, refused, not found.

The real SDK makes each call; `responses` stands in for the cloud's answers, and loopback
sockets for a cloud that refuses, drops or never answers the connection.
"""

import socket
import threading
from collections.abc import Iterator

import pytest
import responses

from backend.cloud.clients import CloudClients, cloud_clients
from backend.cloud.credentials import CloudCredentials
from backend.cloud.errors import (
    CloudError,
    CloudNotFound,
    CloudRefused,
    CloudRetryable,
    translated,
)
from backend.config import Config
from backend.exceptions import DingpassError, RetryCannotHelp

CLOUD = "http://cloud.test:8004"
KEY = CloudCredentials("testid", "testsecret")


@pytest.fixture
def cloud() -> CloudClients:
    return CloudClients("cn-hangzhou", CLOUD, KEY)


@pytest.fixture
def answers() -> Iterator[responses.RequestsMock]:
    """The cloud's answers, each expected to be asked for (strict)."""
    with responses.RequestsMock() as mock:
        yield mock


def answer_error(answers, status: int, code: str, message: str, **headers: str) -> None:
    body = {"RequestId": "REQ-1", "HostId": "vpc.aliyuncs.com", "Code": code, "Message": message}
    answers.post(f"{CLOUD}/", json=body, status=status, headers=headers)


def create_vpc(cloud: CloudClients) -> None:
    from alibabacloud_vpc20160428 import models

    request = models.CreateVpcRequest(region_id=cloud.region, cidr_block="10.0.0.0/16")
    with translated("CreateVpc"):
        cloud.vpc().create_vpc(request)


def test_a_refusal_reads_with_the_action_code_message_and_request_id(cloud, answers):
    answer_error(answers, 400, "QuotaExceeded.Vpc", "The VPC quota is exceeded.")
    with pytest.raises(CloudRefused) as raised:
        create_vpc(cloud)
    assert str(raised.value) == (
        "CreateVpc refused: QuotaExceeded.Vpc: The VPC quota is exceeded. (request id REQ-1)"
    )


def test_a_refusal_keeps_the_clouds_own_fields(cloud, answers):
    answer_error(answers, 400, "InvalidVpcName.Malformed", "The name is malformed.")
    with pytest.raises(CloudRefused) as raised:
        create_vpc(cloud)
    error = raised.value
    assert (error.action, error.code, error.message) == (
        "CreateVpc",
        "InvalidVpcName.Malformed",
        "The name is malformed.",
    )
    assert (error.request_id, error.status) == ("REQ-1", 400)


def test_a_refusal_fails_the_job_at_once(cloud, answers):
    answer_error(answers, 403, "Forbidden.RAM", "User not authorized to operate.")
    with pytest.raises(RetryCannotHelp):
        create_vpc(cloud)


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "Throttling"),
        (400, "Throttling.User"),
        (429, "Throttling.Api"),
        (503, "ServiceUnavailable"),
        (500, "InternalError"),
        (502, "BadGateway"),
        (409, "OperationConflict"),
        (403, "LastTokenProcessing"),
        (400, "IncorrectVpcStatus"),
        (400, "IncorrectVSwitchStatus"),
    ],
)
def test_passing_troubles_are_retried(cloud, answers, status, code):
    answer_error(answers, status, code, "try later")
    with pytest.raises(CloudRetryable) as raised:
        create_vpc(cloud)
    assert raised.value.code == code
    assert not isinstance(raised.value, RetryCannotHelp)


def test_an_answer_that_says_when_to_come_back_is_retried_whatever_its_code(cloud, answers):
    """The SDK raises its ThrottlingException when the x-acs-retry-after header is there."""
    answer_error(
        answers, 400, "Flow.Limited", "Request was denied.", **{"x-acs-retry-after": "2000"}
    )
    with pytest.raises(CloudRetryable) as raised:
        create_vpc(cloud)
    assert str(raised.value) == (
        "CreateVpc failed for now: Flow.Limited: Request was denied. (request id REQ-1)"
    )


@pytest.mark.parametrize(
    "code", ["InvalidVpcId.NotFound", "Forbidden.VpcNotFound", "EntityNotExist.User"]
)
def test_not_found_codes_are_refusals_of_their_own_kind(cloud, answers, code):
    answer_error(answers, 404, code, "Specified VPC does not exist.")
    with pytest.raises(CloudNotFound) as raised:
        create_vpc(cloud)
    assert isinstance(raised.value, CloudRefused)


def test_an_answer_that_is_not_json_is_retried(cloud, answers):
    """A gateway's error page: the SDK cannot read it and keeps no status."""
    answers.post(f"{CLOUD}/", body="<html>502 Bad Gateway</html>", status=502)
    with pytest.raises(CloudRetryable, match="answered with something other than JSON"):
        create_vpc(cloud)


def test_every_cloud_error_is_a_dingpass_error():
    assert issubclass(CloudError, DingpassError)
    assert issubclass(CloudNotFound, CloudRefused)


def test_an_exception_that_is_not_the_sdks_passes_unchanged():
    with pytest.raises(KeyError), translated("CreateVpc"):
        raise KeyError("VpcId")


# -- no answer at all: real sockets on loopback ------------------------------------------


def on_port(port: int, **timeouts: float) -> CloudClients:
    return CloudClients("cn-hangzhou", f"http://127.0.0.1:{port}", KEY, **timeouts)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def dropping_port() -> Iterator[int]:
    """A server that reads each request and closes the connection without a word."""
    server = socket.create_server(("127.0.0.1", 0))

    def drop() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return  # closed: the test is over
            with connection:
                connection.recv(65536)

    thread = threading.Thread(target=drop, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    server.close()


def test_a_refused_connection_is_retried_and_says_so(closed_port):
    with pytest.raises(CloudRetryable) as raised:
        create_vpc(on_port(closed_port))
    assert str(raised.value) == (
        f"CreateVpc failed for now: no answer from the cloud API at 127.0.0.1:{closed_port}: "
        "connection refused"
    )
    assert raised.value.code is None


def test_a_dropped_connection_is_retried(dropping_port):
    with pytest.raises(CloudRetryable, match="connection dropped before an answer"):
        create_vpc(on_port(dropping_port))


def test_a_cloud_that_never_answers_times_out_and_is_retried(taken_port):
    with pytest.raises(CloudRetryable, match="timed out"):
        create_vpc(on_port(taken_port, read_timeout=0.2))


# -- credentials: how the clients sign, and that nothing shows a secret -------------------


def test_credentials_never_show_their_secret_or_token():
    shown = repr(CloudCredentials("LTAIexample", "the-secret", "the-token"))
    assert "LTAIexample" in shown
    assert "the-secret" not in shown and "the-token" not in shown


def test_the_clients_never_show_their_credentials(cloud):
    assert "testsecret" not in repr(cloud)


def test_function_computes_headers_give_the_invocations_credentials():
    headers = {
        "X-Fc-Access-Key-Id": "STS.id",
        "x-fc-access-key-secret": "secret",
        "X-FC-SECURITY-TOKEN": "token",
    }
    assert CloudCredentials.from_fc_headers(headers) == CloudCredentials(
        "STS.id", "secret", "token"
    )


def test_no_function_compute_headers_give_no_credentials():
    assert CloudCredentials.from_fc_headers({"x-fc-access-key-id": "STS.id"}) is None


def test_each_client_is_built_once(cloud):
    assert cloud.vpc() is cloud.vpc()
    assert cloud.ecs() is not cloud.vpc()


def test_with_credentials_signs_with_the_new_key_and_its_token(cloud, answers):
    answers.post(f"{CLOUD}/", json={"RequestId": "R", "VpcId": "vpc-1"})
    create_vpc(cloud.with_credentials(CloudCredentials("STS.fc", "s", "fc-token")))
    sent = answers.calls[0].request.headers
    assert "Credential=STS.fc," in sent["Authorization"]
    assert sent["x-acs-security-token"] == "fc-token"


def test_the_configured_endpoint_region_and_key_are_used(answers):
    config = Config(
        cloud_region="cn-shanghai",
        cloud_endpoint="http://cloud.test:8004",
        cloud_access_key_id="sandbox-id",
        cloud_access_key_secret="sandbox-secret",
    )
    answers.post(f"{CLOUD}/", json={"RequestId": "R", "VpcId": "vpc-1"})
    create_vpc(cloud_clients(config))
    sent = answers.calls[0].request
    assert "RegionId=cn-shanghai" in sent.url
    assert sent.headers["host"] == "cloud.test:8004"
    assert "Credential=sandbox-id," in sent.headers["Authorization"]
