"""Write a license's terms two ways: canonical JSON (RFC 8785) to sign, and lines to read.

RFC 8785 sorts keys and escapes only ``"``, ``\\`` and control characters (lowercase
``\\u00xx`` but for the five short forms), exactly as the stdlib's C
``encode_basestring`` does. A license's terms have one fixed shape -- text, nullable
text, a list of texts, and small whole numbers -- so their canonical form is written
here directly, keys in RFC 8785 order, from the same formatted values as the summary:
a generic encoder (the ``rfc8785`` package) costs as much as the signature itself,
and issuing must cost little more than signing. The tests hold these bytes to
``rfc8785.dumps(License.to_payload())``, which also catches a field added to the
payload but not here.
"""

from json.encoder import encode_basestring

from license.exceptions import PayloadError
from license.verifier import FORMAT_VERSION, License, format_time

_s = encode_basestring


def render(terms: License, key_id: str) -> tuple[bytes, str]:
    """The canonical JSON payload of ``terms`` signed by ``key_id``, and its summary lines."""
    issued = format_time(terms.issued_at)
    start = issued if terms.valid_from == terms.issued_at else format_time(terms.valid_from)
    end = None if terms.valid_until is None else format_time(terms.valid_until)
    try:
        payload = _payload(terms, key_id, issued, start, end).encode("utf-8")
    except UnicodeEncodeError as err:
        raise PayloadError(f"text with a lone surrogate cannot be signed: {err.object!r}") from None
    except TypeError as err:
        raise PayloadError(f"a license term has the wrong type: {err}") from None
    return payload, _summary(terms, key_id, issued, start, end)


def summary_of(lic: License) -> str:
    """The summary lines of a license read back from a file."""
    return render(lic, lic.key_id)[1]


def _payload(t: License, key_id: str, issued: str, start: str, end: str | None) -> str:
    who, application, quantity = t.licensee, t.application, t.quantity
    # Checked here, not only by the issuer: an f-string would happily write 2.5 or True.
    if type(quantity) is not int:
        raise TypeError(f"expected a whole number, got {quantity!r}")
    # Times come from format_time (digits, "-", ":", "T", "Z"): nothing in them to escape.
    until = "null" if end is None else f'"{end}"'
    return (
        f'{{"application":{"null" if application is None else _s(application)},'
        f'"edition":{_s(t.edition)},"entitlements":[{",".join(map(_s, t.entitlements))}],'
        f'"feature_code":{_s(t.feature_code)},"id":{_s(t.id)},'
        f'"issued_at":"{issued}","kid":{_s(key_id)},'
        f'"licensee":{{"company":{_s(who.company)},"contact":{_s(who.contact)},'
        f'"email":{_s(who.email)}}},"product":{_s(t.product)},'
        f'"quantity":{quantity},"v":{FORMAT_VERSION},"valid_from":"{start}",'
        f'"valid_until":{until}}}'
    )


def _summary(t: License, key_id: str, issued: str, start: str, end: str | None) -> str:
    who = t.licensee
    return (
        f"License:      {t.id}\n"
        f"Product:      {t.product} ({t.edition})\n"
        f"Licensee:     {who.company} / {who.contact} <{who.email}>\n"
        f"Feature code: {t.feature_code}\n"
        f"Quantity:     {t.quantity}\n"
        f"Valid from:   {start}\n"
        f"Valid until:  {end or 'perpetual'}\n"
        f"Entitlements: {', '.join(t.entitlements) or '-'}\n"
        f"Application:  {t.application or '-'}\n"
        f"Issued at:    {issued}\n"
        f"Key id:       {key_id}\n"
    )
