"""QR codes of the apply link, as SVG or PNG (segno)."""

import io
from urllib.parse import urlencode

import segno

SCALE = {"svg": 8, "png": 8}
BORDER = 2


def apply_url(base_url: str, product: str, feature: str, version: str | None) -> str:
    """The link a QR code opens: the apply page, prefilled."""
    query = {"product": product, "feature": feature}
    if version:
        query["version"] = version
    return f"{base_url}/apply?{urlencode(query)}"


def render(url: str, kind: str) -> bytes:
    """The QR code of ``url`` as ``svg`` or ``png`` bytes."""
    code = segno.make(url, error="m", micro=False)
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
