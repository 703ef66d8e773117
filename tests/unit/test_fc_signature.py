"""The frontend's FC trigger signatures: FC 3.0's ACS3-HMAC-SHA256 as Alibaba Cloud's utility
makes it, and FC 2.0's own scheme as the official FC 2.0 SDK (aliyun-fc2) makes it."""

from datetime import datetime, timezone

import pytest
from alibabacloud_openapi_util.client import Client as OpenApiUtil
from fc2.auth import Auth as Fc2Auth
from Tea.request import TeaRequest

from frontend.config import FrontendConfig
from frontend.fc_signature import (
    FcCredentials,
    authorization,
    fc2_authorization,
    fc2_trigger_headers,
    trigger_headers,
)

EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
"""sha256 of no bytes."""
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc).timestamp()
STS = FcCredentials("STS.test-key-id", "test-secret", "test-sts-token")
VECTOR_QUERY = {
    "RegionId": "cn-hangzhou",
    "CidrBlock": "10.0.0.0/8",
    "VpcName": "test vpc",
    "ClientToken": "0c593ea1-3bea-11e9-b96b-88e9fe637760",
}
"""The CreateVpc call both of aliyun-openapi.md's vectors sign."""


def test_vector_a_of_the_openapi_reference():
    """aliyun-openapi.md §2.2, computed with alibabacloud-tea-openapi 0.4.6."""
    headers = {
        "host": "vpc.cn-hangzhou.aliyuncs.com",
        "x-acs-action": "CreateVpc",
        "x-acs-version": "2016-04-28",
        "x-acs-date": "2024-01-01T00:00:00Z",
        "x-acs-signature-nonce": "3a1f8c6e2b7d4e5f9a0b1c2d3e4f5a6b",
        "x-acs-content-sha256": EMPTY,
    }
    value = authorization(
        FcCredentials("testid", "testsecret"), "POST", "/", VECTOR_QUERY, headers, EMPTY
    )
    assert value == (
        "ACS3-HMAC-SHA256 Credential=testid,SignedHeaders=host;x-acs-action;"
        "x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=65b6b3c2e7d74fad0abb6020152786ed92b0df1a3c8c9b845027f989ed9d936b"
    )


def test_vector_b_with_an_sts_token_of_the_openapi_reference():
    """aliyun-openapi.md §2.3, the same call with security_token='sts-token-123'."""
    headers = {
        "accept": "application/json",
        "host": "127.0.0.1:18080",
        "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
        "x-acs-accesskey-id": "testid",
        "x-acs-action": "CreateVpc",
        "x-acs-content-sha256": EMPTY,
        "x-acs-credentials-provider": "static_sts",
        "x-acs-date": "2024-01-01T00:00:00Z",
        "x-acs-security-token": "sts-token-123",
        "x-acs-signature-nonce": "3a1f8c6e2b7d4e5f9a0b1c2d3e4f5a6b",
        "x-acs-version": "2016-04-28",
    }
    value = authorization(
        FcCredentials("testid", "testsecret"), "POST", "/", VECTOR_QUERY, headers, EMPTY
    )
    assert value.endswith(
        ",Signature=b75714108e8f9725e9310f52fe9644f4629551d78b65d85f17fc9da694e42e92"
    )


def official(method: str, path: str, headers: dict[str, str], credentials: FcCredentials) -> str:
    """What FC's guide does: alibabacloud-openapi-util's get_authorization, payload ''."""
    request = TeaRequest()
    request.method, request.pathname = method, path.replace("$", "%24")
    request.headers, request.query = dict(headers), {}
    return OpenApiUtil.get_authorization(
        request,
        "ACS3-HMAC-SHA256",
        "",
        credentials.access_key_id,
        credentials.access_key_secret,
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/applications"),
        ("GET", "/applications/AbCdEfGhIjKlMnOpQrStUv"),
        ("GET", "/price/$1"),
    ],
)
def test_a_trigger_signature_is_the_one_alibaba_clouds_utility_makes(method, path):
    headers = trigger_headers(STS, method, path, NOW)
    signed = {k: v for k, v in headers.items() if k != "Authorization"}
    assert headers["Authorization"] == official(method, path, signed, STS)


def test_a_trigger_signature_carries_the_date_and_the_sts_token_under_it():
    headers = trigger_headers(STS, "POST", "/applications", NOW)
    assert headers["x-acs-date"] == "2026-11-23T08:00:00Z"
    assert headers["x-acs-security-token"] == "test-sts-token"
    assert headers["Authorization"].startswith(
        "ACS3-HMAC-SHA256 Credential=STS.test-key-id,"
        "SignedHeaders=x-acs-date;x-acs-security-token,Signature="
    )


def test_the_credentials_come_from_the_headers_fc_adds_to_each_request():
    credentials = FcCredentials.from_headers(
        {
            "x-fc-access-key-id": "STS.k",
            "x-fc-access-key-secret": "s",
            "x-fc-security-token": "t",
        }
    )
    assert credentials == FcCredentials("STS.k", "s", "t")


@pytest.mark.parametrize(
    "headers", [{}, {"x-fc-access-key-id": "STS.k"}, {"x-fc-access-key-secret": "s"}]
)
def test_without_credentials_in_the_request_there_is_nothing_to_sign_with(headers):
    assert FcCredentials.from_headers(headers) is None


def test_the_secret_and_token_never_show_in_a_repr():
    shown = repr(STS)
    assert "test-secret" not in shown and "test-sts-token" not in shown


FC2_BACKEND = "/2016-08-15/proxy/dingpass/backend"
JSON = {"Content-Type": "application/json"}


def fc2_official(method: str, path: str, headers: dict[str, str], query=None) -> str:
    """What the FC 2.0 SDK's do_http_request signs: the decoded path, the query (or none)."""
    auth = Fc2Auth(STS.access_key_id, STS.access_key_secret, STS.security_token)
    return auth.sign_request(method, path, headers, query or {})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"{FC2_BACKEND}/applications"),
        ("GET", f"{FC2_BACKEND}/applications/AbCdEfGhIjKlMnOpQrStUv"),
        ("GET", f"{FC2_BACKEND}/price/$1"),
    ],
)
def test_an_fc2_trigger_signature_is_the_one_the_official_sdk_makes(method, path):
    headers = fc2_trigger_headers(STS, method, path, JSON, NOW)
    signed = {k.lower(): v for k, v in {**JSON, **headers}.items() if k != "Authorization"}
    assert headers["Authorization"] == fc2_official(method, path, signed)


def test_an_fc2_signature_covers_every_x_fc_header_and_the_sorted_query():
    headers = {**JSON, "date": "Mon, 23 Nov 2026 08:00:00 GMT", "X-Fc-Invocation-Type": "Sync"}
    headers["x-fc-security-token"] = STS.security_token
    query = {"x": "1", "a": "2", "with space": "foo bar"}
    path = f"{FC2_BACKEND}/path-with-%20-space/action"
    ours = fc2_authorization(STS, "GET", path, headers, query)
    decoded = path.replace("%20", " ")
    assert ours == fc2_official("GET", decoded, {k.lower(): v for k, v in headers.items()}, query)


def test_an_fc2_trigger_signature_carries_an_http_date_and_the_sts_token():
    headers = fc2_trigger_headers(STS, "POST", f"{FC2_BACKEND}/applications", JSON, NOW)
    assert headers["Date"] == "Mon, 23 Nov 2026 08:00:00 GMT"
    assert headers["x-fc-security-token"] == "test-sts-token"
    assert headers["Authorization"].startswith("FC STS.test-key-id:")


def test_without_an_sts_token_no_token_header_is_sent():
    keys = FcCredentials("LTAI.long-term", "secret")
    assert "x-fc-security-token" not in fc2_trigger_headers(keys, "GET", FC2_BACKEND, JSON, NOW)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        (
            "https://1234.cn-hangzhou-internal.fc.aliyuncs.com/2016-08-15/proxy/dingpass/backend",
            "fc2",
        ),
        ("https://dingpass-backend-abcd.cn-hangzhou-vpc.fcapp.run", "fc3"),
        ("http://127.0.0.1:8001", "fc3"),
    ],
)
def test_the_backend_url_says_which_generation_of_fc_signs_it(url, scheme):
    assert FrontendConfig.from_env({"BACKEND_URL": url}).fc_scheme == scheme
