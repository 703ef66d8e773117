"""DingTalk's 加签, against the vectors computed from its documented algorithm (robots.md)."""

import pytest

from backend.robots.sign import dingtalk_sign, signed_url

VECTORS = [
    (1700000000000, "this is secret", "sSFWELbV2YwjdDQhWZwTcWlX5BWUx5J6TPpsZmuPii0="),
    (
        1704067200000,
        "SECb0f8c7d2e3a4b5c6d7e8f90123456789abcdef0123456789abcdef01234567",
        "cxlDhkOlKFao4fEX78Y+9tHZeIaDYE+sBpTd7SJNYhY=",
    ),
]


@pytest.mark.parametrize(("timestamp", "secret", "expected"), VECTORS)
def test_the_signature_matches_the_documented_vectors(timestamp, secret, expected):
    assert dingtalk_sign(secret, timestamp) == expected


def test_the_url_carries_timestamp_and_a_percent_encoded_sign():
    url = signed_url(
        "https://oapi.dingtalk.com/robot/send?access_token=T", VECTORS[1][1], 1704067200000
    )
    assert url == (
        "https://oapi.dingtalk.com/robot/send?access_token=T&timestamp=1704067200000"
        "&sign=cxlDhkOlKFao4fEX78Y%2B9tHZeIaDYE%2BsBpTd7SJNYhY%3D"
    )
