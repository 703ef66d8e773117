"""API Gateway's application signature, against the vectors of apigateway-signature.md.

Each vector's string to sign and signature came from an official SDK's own code (the Java
SDK, the Node SDK, the Java and Python demos), not from ours: the request each one sent is
rebuilt here, read as the server reads it, and signed. tests/app_signing.py, the client the
other tests sign with, is held to the same vectors.
"""

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from backend.apps import errors, signature
from tests.app_signing import signed_headers

KEY = "203753385"
SECRET = "vector-app-secret-0123456789abcdef"
STAMP = "1525872629832"
NONCE = "c9f15cbf-f4ac-4a6c-b54d-f51abf4b5b44"
V1_URL = "http://127.0.0.1:8080/api/v1/items?b=2&a=1&empty=&q=hello%20world"
V2_URL = "http://127.0.0.1:8080/api/v1/orders?dryRun=true"
V3_URL = "http://127.0.0.1:8080/http2test/test?param1=test"
V4_URL = "http://127.0.0.1:8080/api/v1/form?z=last&a=first"
JSON = "application/json; charset=utf-8"
FORM = "application/x-www-form-urlencoded; charset=utf-8"
DATE = "Wed, 09 May 2018 13:30:29 GMT"
DATE3 = DATE + "+00:00"
MD5 = "bFXcQhPqGUrLI0S9THiizA=="
V2_BODY = b'{"name":"test","count":2}'
V3_BODY = b"username=xiaoming&password=123456789"
V4_BODY = b"m=mid+value&blank="
STAGE = {"X-Ca-Stage": "RELEASE"}
# The parts of the strings to sign the vectors share, as the SDKs printed them (# = \n).
LOWER = f"x-ca-key:{KEY}#x-ca-nonce:{NONCE}#"
CAPITAL = f"X-Ca-Key:{KEY}#X-Ca-Nonce:{NONCE}#X-Ca-Timestamp:{STAMP}#"
STAMPED = f"x-ca-timestamp:{STAMP}#"
V1_TAIL = "/api/v1/items?a=1&b=2&empty&q=hello world"
V2_HEAD = f"POST#{JSON}#{MD5}#{JSON}#{DATE}#"
V3_HEAD = f"POST#{JSON}##{FORM}#{DATE3}#"
V3_TAIL = "/http2test/test?param1=test&password=123456789&username=xiaoming"
V4_HEAD = f"POST#application/json##{FORM}##"
V4_TAIL = "/api/v1/form?a=first&blank&m=mid value&z=last"


@dataclass(frozen=True)
class Vector:
    """A request an official SDK signed: what it sent, what it signed, its signature."""

    method: str
    url: str
    headers: dict[str, str]
    """Sent besides X-Ca-Key, X-Ca-Timestamp, X-Ca-Nonce and X-Ca-Signature."""
    printed: str
    """The string to sign as the SDK printed it, each line break shown as #."""
    signature: str
    body: bytes = b""
    client: dict[str, object] = field(default_factory=dict)
    """What tests/app_signing.py is told to send the same request."""


VECTORS = {
    "V1": Vector(
        "GET",
        V1_URL,
        {
            "Accept": "application/json",
            "X-Ca-Signature-Method": "HmacSHA256",
            # The Java SDK lists the names in HashMap order: the server sorts them itself.
            "X-Ca-Signature-Headers": "x-ca-nonce,x-ca-timestamp,x-ca-key,x-ca-signature-method",
        },
        f"GET#application/json####{LOWER}x-ca-signature-method:HmacSHA256#{STAMPED}{V1_TAIL}",
        "b5I5YEicGQAr/s8JfpHhGofusK+HQQHkFRJkl6oWmOI=",
    ),
    "V2": Vector(
        "POST",
        V2_URL,
        {
            "Accept": JSON,
            "Content-Type": JSON,
            "Content-MD5": MD5,
            "Date": DATE,
            "X-Ca-Signature-Method": "HmacSHA256",
            "X-Ca-Signature-Headers": "x-ca-key,x-ca-nonce,x-ca-signature-method,x-ca-timestamp",
        },
        f"{V2_HEAD}{LOWER}x-ca-signature-method:HmacSHA256#{STAMPED}/api/v1/orders?dryRun=true",
        "7phuZWUImokY0ClBj7jzNij5Aq+qNcVjV8QOQ4s2wxE=",
        V2_BODY,
        {"accept": JSON, "content_type": JSON, "date": DATE},
    ),
    "V3": Vector(
        "POST",
        V3_URL,
        {
            "Accept": JSON,
            "Content-Type": FORM,
            "Date": DATE3,
            "X-Ca-Signature-Method": "HmacSHA256",
            # The order of doc 29475's own example.
            "X-Ca-Signature-Headers": "x-ca-timestamp,x-ca-key,x-ca-nonce,x-ca-signature-method",
        },
        f"{V3_HEAD}{LOWER}x-ca-signature-method:HmacSHA256#{STAMPED}{V3_TAIL}",
        "+8yP6ZMxcU/lAl4QK9PK3T3H3DTFC/IIbRmhdOaIxvI=",
        V3_BODY,
        {"accept": JSON, "content_type": FORM, "date": DATE3},
    ),
    "V4": Vector(
        "POST",
        V4_URL,
        {
            "Accept": "application/json",
            "Content-Type": FORM,
            "X-Ca-Signature-Method": "HmacSHA1",
            "X-Ca-Stage": "RELEASE",
            "X-Custom-Trace": "trace-42",
            "X-Unsigned": "not-signed",
            "X-Ca-Signature-Headers": (
                "x-ca-key,x-ca-nonce,x-ca-signature-method,x-ca-stage,x-ca-timestamp,x-custom-trace"
            ),
        },
        f"{V4_HEAD}{LOWER}x-ca-signature-method:HmacSHA1#x-ca-stage:RELEASE#{STAMPED}"
        f"x-custom-trace:trace-42#{V4_TAIL}",
        "T1Cj5RJpOH2FMC0D9XuA8kfnFiM=",
        V4_BODY,
        {
            "content_type": FORM,
            "signature_method": "HmacSHA1",
            "extra": {**STAGE, "X-Custom-Trace": "trace-42", "X-Unsigned": "not-signed"},
            "sign_also": ["X-Custom-Trace"],
        },
    ),
    "V4-sdk": Vector(
        "POST",
        V4_URL,
        {
            "Accept": "application/json",
            "Content-Type": FORM,
            "X-Ca-Signature-Method": "HmacSHA1",
            **STAGE,
            "X-Ca-Signature-Headers": "x-ca-stage,x-ca-signature-method,x-ca-key,x-ca-timestamp,"
            "x-ca-nonce",
        },
        f"{V4_HEAD}{LOWER}x-ca-signature-method:HmacSHA1#x-ca-stage:RELEASE#{STAMPED}{V4_TAIL}",
        "yrDP6hRj0Auo7FIeZGfj2zvSOY0=",
        V4_BODY,
        {"content_type": FORM, "signature_method": "HmacSHA1", "extra": STAGE},
    ),
    "N1": Vector(
        "GET",
        V1_URL,
        {
            "Accept": "application/json",
            **STAGE,
            "X-Ca-Signature-Headers": "x-ca-key,x-ca-nonce,x-ca-stage,x-ca-timestamp",
        },
        f"GET#application/json####{LOWER}x-ca-stage:RELEASE#{STAMPED}{V1_TAIL}",
        "HV4nZ7lmIej9xtL7OVDKMhNZ4v2jXytIOCa3KvDQ8pQ=",
        client={"signature_method": None, "extra": STAGE},
    ),
    "N2": Vector(
        "POST",
        V2_URL,
        {
            "Accept": JSON,
            "Content-Type": JSON,
            "Content-MD5": MD5,
            "Date": DATE,
            **STAGE,
            "X-Ca-Signature-Headers": "x-ca-key,x-ca-nonce,x-ca-stage,x-ca-timestamp",
        },
        f"{V2_HEAD}{LOWER}x-ca-stage:RELEASE#{STAMPED}/api/v1/orders?dryRun=true",
        "XN2ZmthPOFmmWg6DKsIeRLH3m0jt2q8D2il6YN5lCTc=",
        V2_BODY,
        {
            "accept": JSON,
            "content_type": JSON,
            "date": DATE,
            "signature_method": None,
            "extra": STAGE,
        },
    ),
    "N3": Vector(
        "POST",
        V3_URL,
        {
            "Accept": JSON,
            "Content-Type": FORM,
            "Date": DATE3,
            **STAGE,
            "X-Ca-Signature-Headers": "x-ca-key,x-ca-nonce,x-ca-stage,x-ca-timestamp",
        },
        f"{V3_HEAD}{LOWER}x-ca-stage:RELEASE#{STAMPED}{V3_TAIL}",
        "zmqVxVxECXHDuVTVmpEFhkyP8fWMA94ReAG+zS1Puzk=",
        V3_BODY,
        {
            "accept": JSON,
            "content_type": FORM,
            "date": DATE3,
            "signature_method": None,
            "extra": STAGE,
        },
    ),
    "P1": Vector(
        "GET",
        V1_URL,
        {
            "Accept": "application/json",
            "X-Ca-Signature-Headers": "X-Ca-Key,X-Ca-Nonce,X-Ca-Timestamp",
        },
        f"GET#application/json####{CAPITAL}{V1_TAIL}",
        "NqHXmiuCf6Fr/GEUJX+JBB6WYLe7GCkexXiqHE+dnyU=",
        client={"signature_method": None, "lowercase": False},
    ),
    "D2": Vector(
        "POST",
        V2_URL,
        {
            "Accept": JSON,
            "Content-Type": JSON,
            "Content-MD5": MD5,
            "Date": DATE,
            "X-Ca-Signature-Headers": "X-Ca-Key,X-Ca-Nonce,X-Ca-Timestamp",
        },
        f"{V2_HEAD}{CAPITAL}/api/v1/orders?dryRun=true",
        "PEdwgWsFUz2A6zxwUolfQjqSmMCI+Ur+ecwGNFTItYU=",
        V2_BODY,
        {
            "accept": JSON,
            "content_type": JSON,
            "date": DATE,
            "signature_method": None,
            "lowercase": False,
        },
    ),
    "P3": Vector(
        "POST",
        V3_URL,
        {
            "Accept": JSON,
            "Content-Type": FORM,
            "Date": DATE3,
            "X-Ca-Signature-Headers": "X-Ca-Key,X-Ca-Nonce,X-Ca-Timestamp",
        },
        f"{V3_HEAD}{CAPITAL}{V3_TAIL}",
        "Hy8PAtuACTNafFhoLm0PYQRFm5PlOcWV8lsamVmXd5w=",
        V3_BODY,
        {
            "accept": JSON,
            "content_type": FORM,
            "date": DATE3,
            "signature_method": None,
            "lowercase": False,
        },
    ),
}
FIXED = {"X-Ca-Key": KEY, "X-Ca-Timestamp": STAMP, "X-Ca-Nonce": NONCE}
SIGNED = ("x-ca-key", "x-ca-nonce", "x-ca-timestamp")


def read(method: str, url: str, headers: dict[str, str], body: bytes = b""):
    """A request as the server reads it."""
    parts = urlsplit(url)
    return signature.read(method, parts.path, parts.query, headers, body)


def read_vector(vector: Vector) -> signature.SignedRequest:
    headers = {**FIXED, **vector.headers, "X-Ca-Signature": vector.signature}
    return read(vector.method, vector.url, headers, vector.body)


def plain(*names: str) -> dict[str, str]:
    """The signature headers of a request that signs ``names`` (spelled as given)."""
    listed = ",".join(names or SIGNED)
    return {**FIXED, "X-Ca-Signature": "x", "X-Ca-Signature-Headers": listed}


@pytest.mark.parametrize("name", VECTORS)
def test_the_server_reads_the_string_the_sdk_signed(name):
    vector = VECTORS[name]
    assert read_vector(vector).string_to_sign == vector.printed.replace("#", "\n")


@pytest.mark.parametrize("name", VECTORS)
def test_the_server_signs_it_as_the_sdk_did(name):
    signed = read_vector(VECTORS[name])
    assert signature.sign(SECRET, signed.string_to_sign, signed.method) == VECTORS[name].signature


@pytest.mark.parametrize("name", VECTORS)
def test_the_test_client_sends_what_the_sdk_sent(name):
    vector = VECTORS[name]
    options = {"now_ms": int(STAMP), "nonce": NONCE, **vector.client}
    sent = signed_headers(KEY, SECRET, vector.method, vector.url, vector.body, **options)
    assert sent["X-Ca-Signature"] == vector.signature
    assert sent.get("Content-MD5") == vector.headers.get("Content-MD5")


def test_the_content_md5_of_v2s_body():
    assert signature.content_md5(V2_BODY) == MD5


def test_names_sort_by_code_point_as_spelled():
    headers = plain("x-ca-timestamp", "X-Ca-Nonce", "x-ca-key")
    text = read("GET", "http://h/p", headers).string_to_sign
    assert text.endswith(f"X-Ca-Nonce:{NONCE}\nx-ca-key:{KEY}\nx-ca-timestamp:{STAMP}\n/p")


def test_a_repeated_parameter_signs_its_first_value():
    headers = plain()
    assert read("GET", "http://h/p?a=1&a=2&b", headers).string_to_sign.endswith("/p?a=1&b")


def test_a_form_field_signs_over_the_query_parameter_of_its_name():
    """The Java SDK, the Node SDK and the Python demo all let the form's value win."""
    headers = plain()
    headers["Content-Type"] = FORM
    text = read("POST", "http://h/p?a=query&b=q", headers, b"a=form").string_to_sign
    assert text.endswith("/p?a=form&b=q")


def test_a_body_that_is_not_a_form_adds_no_parameters():
    headers = plain()
    headers["Content-Type"] = "text/plain"
    assert read("POST", "http://h/p", headers, b"a=1").string_to_sign.endswith("\n/p")


def test_a_signed_header_that_was_not_sent_signs_as_empty():
    headers = plain(*SIGNED, "x-ca-stage")
    assert "\nx-ca-stage:\n" in read("GET", "http://h/p", headers).string_to_sign


def test_the_fields_with_lines_of_their_own_stay_out_of_the_headers_block():
    headers = plain("content-type", *SIGNED, "x-ca-signature") | {"Content-Type": "text/plain"}
    text = read("POST", "http://h/p", headers, b"x").string_to_sign
    assert text == f"POST\n\n\ntext/plain\n\n{LOWER}{STAMPED}/p".replace("#", "\n")


@pytest.mark.parametrize(
    "missing",
    ["X-Ca-Key", "X-Ca-Timestamp", "X-Ca-Nonce", "X-Ca-Signature", "X-Ca-Signature-Headers"],
)
def test_each_missing_signature_header_is_named(missing):
    headers = plain()
    del headers[missing]
    with pytest.raises(errors.Unsigned) as refused:
        read("GET", "http://h/p", headers)
    assert missing.lower() in refused.value.message["en"]
    assert (refused.value.status, refused.value.code) == (401, "unsigned")


@pytest.mark.parametrize("left_out", ["x-ca-key", "x-ca-timestamp", "x-ca-nonce"])
def test_the_key_timestamp_and_nonce_must_be_signed(left_out):
    names = [name for name in SIGNED if name != left_out]
    with pytest.raises(errors.Unsigned) as refused:
        read("GET", "http://h/p", plain(*names, "x-ca-stage"))
    assert f"does not list {left_out}" in refused.value.message["en"]


def test_an_unknown_signature_method_is_refused_with_the_two_it_takes():
    headers = plain()
    headers["X-Ca-Signature-Method"] = "HmacMD5"
    with pytest.raises(errors.BadSignatureMethod) as refused:
        read("GET", "http://h/p", headers)
    assert "HmacSHA256 (the default) or HmacSHA1" in refused.value.message["en"]
    assert (refused.value.status, refused.value.code) == (400, "bad_signature_method")


def test_a_mismatch_shows_the_string_to_sign_as_api_gateway_does():
    mismatch = errors.SignatureMismatch(f"GET\napplication/json\n\n\n\nx-ca-key:{KEY}\n/p?q=你")
    assert mismatch.headers == {
        "X-Ca-Error-Message": "Invalid Signature, Server StringToSign:"
        f"`GET#application/json####x-ca-key:{KEY}#/p?q=%E4%BD%A0`"
    }
