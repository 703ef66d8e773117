"""The QR code's link: the configured base URL's apply page, prefilled."""

from urllib.parse import parse_qs, urlsplit

from frontend.qr import apply_url


def test_the_link_carries_product_feature_and_version():
    url = apply_url("https://apply.example.com", "acme-erp", "9F2C 41AB&x=1", "8.2")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "apply.example.com",
        "/apply",
    )
    assert parse_qs(parts.query) == {
        "product": ["acme-erp"],
        "feature": ["9F2C 41AB&x=1"],
        "version": ["8.2"],
    }


def test_the_version_is_left_out_when_unknown():
    assert "version" not in apply_url("https://a.example", "p", "f", None)
