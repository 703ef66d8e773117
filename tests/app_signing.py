"""A caller's side of API Gateway's application signature, for tests and the benchmark.

Written from Alibaba's documentation (doc 29475 §3.2) and the vectors in
/work/shared/apigateway-signature.md, without backend.apps, so that the two can hold each
other to account: a request this module signs is what an official SDK would send.
"""

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, urlsplit

FORM = "application/x-www-form-urlencoded"
DIGESTS = {"HmacSHA256": hashlib.sha256, "HmacSHA1": hashlib.sha1}


def signed_headers(
    key: str,
    secret: str,
    method: str,
    url: str,
    body: bytes = b"",
    content_type: str | None = None,
    accept: str | None = "application/json",
    now_ms: int | None = None,
    nonce: str | None = None,
    *,
    date: str | None = None,
    extra: Mapping[str, str] | None = None,
    sign_also: Iterable[str] = (),
    signature_method: str | None = "HmacSHA256",
    lowercase: bool = True,
) -> dict[str, str]:
    """The headers that sign a request to ``url`` (Accept, Content-Type, Content-MD5, X-Ca-*).

    ``extra`` headers are sent too; the X-Ca-* among them are signed, as the SDKs sign them,
    and so are those named in ``sign_also``. ``signature_method=None`` sends no
    X-Ca-Signature-Method (the Node SDK, the demos). ``lowercase=False`` spells the signed
    names X-Ca-Key, ... as the older Java and Python demos do.
    """
    sent = {
        "X-Ca-Key": key,
        "X-Ca-Timestamp": str(int(time.time() * 1000) if now_ms is None else now_ms),
        "X-Ca-Nonce": str(uuid.uuid4()) if nonce is None else nonce,
        **({"X-Ca-Signature-Method": signature_method} if signature_method else {}),
        **(extra or {}),
    }
    also = {name.lower() for name in sign_also}
    signed = {
        name.lower() if lowercase else name: value
        for name, value in sent.items()
        if name.lower().startswith("x-ca-") or name.lower() in also
    }
    md5 = _md5(body) if body and not _is_form(content_type) else None
    fields = [method.upper(), accept or "", md5 or "", content_type or "", date or ""]
    text = "\n".join(fields) + "\n" + _block(signed) + _path_and_params(url, body, content_type)
    mac = hmac.new(secret.encode(), text.encode(), DIGESTS[signature_method or "HmacSHA256"])
    optional = {"Accept": accept, "Content-Type": content_type, "Content-MD5": md5, "Date": date}
    return {
        **{name: value for name, value in optional.items() if value is not None},
        **sent,
        "X-Ca-Signature-Headers": ",".join(signed),
        "X-Ca-Signature": base64.b64encode(mac.digest()).decode(),
    }


def _block(signed: Mapping[str, str]) -> str:
    return "".join(f"{name}:{signed[name]}\n" for name in sorted(signed))


def _path_and_params(url: str, body: bytes, content_type: str | None) -> str:
    parts = urlsplit(url)
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        params.setdefault(name, value)
    if _is_form(content_type):
        form: dict[str, str] = {}
        for name, value in parse_qsl(body.decode(), keep_blank_values=True):
            form.setdefault(name, value)
        params.update(form)
    joined = "&".join(f"{k}={v}" if v else k for k, v in sorted(params.items()))
    return parts.path + (f"?{joined}" if joined else "")


def _is_form(content_type: str | None) -> bool:
    return (content_type or "").lower().startswith(FORM)


def _md5(body: bytes) -> str:
    return base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 -- the protocol's
