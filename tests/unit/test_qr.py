"""The QR code: the configured base URL's apply page, prefilled, with its quiet zone."""

import struct
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest

from frontend.exceptions import BadRequest
from frontend.qr import SCALE, apply_url, render


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


def png_data(png: bytes) -> bytes:
    """The decompressed image data of a PNG: each row a filter byte, then its pixels."""
    chunks, at = b"", 8
    while at < len(png):
        (length,) = struct.unpack(">I", png[at : at + 4])
        if png[at + 4 : at + 8] == b"IDAT":
            chunks += png[at + 8 : at + 8 + length]
        at += 12 + length
    return zlib.decompress(chunks)


def light_pixels(png: bytes) -> list[list[bool]]:
    """segno's 1-bit greyscale PNG as rows of pixels, True where light."""
    width, height = struct.unpack(">II", png[16:24])
    data, stride = png_data(png), (width + 7) // 8 + 1
    rows, above = [], bytes(stride - 1)
    for y in range(height):
        kind, line = data[y * stride], data[y * stride + 1 : (y + 1) * stride]
        assert kind in (0, 2), "segno filters rows with None or Up only"
        if kind == 2:  # Up: each byte is added to the one above it
            line = bytes((a + b) % 256 for a, b in zip(line, above, strict=True))
        rows.append([bool(line[x // 8] >> (7 - x % 8) & 1) for x in range(width)])
        above = line
    return rows


def test_the_code_has_the_standard_quiet_zone_of_four_modules_on_every_side():
    pixels = light_pixels(render(apply_url("https://a.example", "acme-erp", "9F2C", None), "png"))
    quiet = 4 * SCALE["png"]  # ISO/IEC 18004's quiet zone: 4 modules, in pixels
    dark = [(x, y) for y, row in enumerate(pixels) for x, light in enumerate(row) if not light]
    size = len(pixels)
    assert min(x for x, _ in dark) == min(y for _, y in dark) == quiet
    assert max(x for x, _ in dark) == max(y for _, y in dark) == size - quiet - 1


def test_a_link_too_long_for_one_code_is_a_bad_request_saying_how_long_it_is():
    url = apply_url("https://apply.example.com", "acme-erp", "9F2C-" * 600, "4.2")
    with pytest.raises(BadRequest, match=f"The apply link is {len(url)} characters"):
        render(url, "svg")
