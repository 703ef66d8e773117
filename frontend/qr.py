"""QR codes of the apply link, as SVG or PNG (segno)."""

import io
from urllib.parse import urlencode

import segno

from frontend.exceptions import BadRequest

SCALE = {"svg": 8, "png": 8}
BORDER = 4
"""The quiet zone, in modules: the QR standard (ISO/IEC 18004) asks for 4 on every side."""


def apply_url(base_url: str, product: str, feature: str, version: str | None) -> str:
    """The link a QR code opens: the apply page, prefilled."""
    query = {"product": product, "feature": feature}
    if version:
        query["version"] = version
    return f"{base_url}/apply?{urlencode(query)}"


def render(url: str, kind: str) -> bytes:
    """The QR code of ``url`` as ``svg`` or ``png`` bytes; BadRequest if it cannot hold the link."""
    try:
        code = segno.make(url, error="m", micro=False)
    except segno.DataOverflowError:
        raise BadRequest(
            "参数过长，二维码放不下。",
            f"The apply link is {len(url)} characters once encoded, too long for one QR code; "
            f"shorten product, feature or version.",
        ) from None
    out = io.BytesIO()
    if kind == "svg":
        code.save(
            out,
            kind="svg",
            scale=SCALE[kind],
            border=BORDER,
            title="Apply for a license",
        )
    else:
        code.save(out, kind="png", scale=SCALE[kind], border=BORDER)
    return out.getvalue()
