"""The committed vectors pin format 1 byte for byte; any tampering is a bad signature."""

import base64

import pytest

from license import BadSignature, Issuer, UnknownKeyId, key_ring, verify
from license.keys import generate, key_id
from license.verifier import BEGIN, END, read_envelope
from tests.conftest import NOW


def rewrap(text: str, blob: bytes) -> str:
    """The license text with its body replaced by ``blob``."""
    kid, _ = read_envelope(text)
    body = base64.urlsafe_b64encode(blob).rstrip(b"=").decode()
    return f"{text[: text.index(BEGIN)]}{BEGIN}\nFormat: 1\nKey-Id: {kid}\n\n{body}\n{END}\n"


def test_issuing_the_vector_terms_reproduces_the_committed_text(issuer, vector_terms, vector_text):
    assert issuer.sign(vector_terms) == vector_text


def test_the_vector_key_id_is_derived_from_its_public_key(vector_key, ring):
    assert list(ring) == [key_id(vector_key.public_key())] == ["3167edf078c551a7"]


def test_the_committed_text_verifies_with_the_public_key(vector_text, ring, vector_terms):
    lic = verify(
        vector_text,
        ring,
        now=NOW,
        feature_code="9F2C-41AB-77D0-E5C3",
        product="acme-erp",
    )
    assert lic.licensee.company == "杭州示例网络科技有限公司"
    assert lic.quantity == 25 and lic.entitlements == ("reports", "api", "sso")
    assert lic.application == "A20261123-000042" and lic.key_id == "3167edf078c551a7"


def test_every_flipped_bit_of_the_payload_or_signature_is_a_bad_signature(vector_text, ring):
    _, blob = read_envelope(vector_text)
    for bit in range(len(blob) * 8):
        tampered = bytearray(blob)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(BadSignature):
            verify(rewrap(vector_text, bytes(tampered)), ring, now=NOW)


def test_a_license_checked_against_another_key_under_the_same_id_is_a_bad_signature(
    vector_text,
):
    impostor = {"3167edf078c551a7": generate().public_key()}
    with pytest.raises(BadSignature, match="altered or forged"):
        verify(vector_text, impostor, now=NOW)


def test_a_license_signed_by_a_key_not_in_the_ring_is_an_unknown_key_id(vector_text):
    with pytest.raises(UnknownKeyId, match="3167edf078c551a7"):
        verify(vector_text, key_ring([generate().public_key()]), now=NOW)


def test_a_key_id_header_pointing_at_another_known_key_is_a_bad_signature(vector_text, ring):
    other = generate()
    forged = vector_text.replace(
        "Key-Id: 3167edf078c551a7", f"Key-Id: {key_id(other.public_key())}"
    )
    with pytest.raises(BadSignature):
        verify(forged, {**ring, **key_ring([other.public_key()])}, now=NOW)


def test_a_rotated_ring_verifies_licenses_of_both_keys(terms, vector_key):
    old_text, new_key = Issuer(vector_key).sign(terms), generate()
    new_text = Issuer(new_key).sign(terms)
    rotated = key_ring([vector_key.public_key(), new_key.public_key()])
    assert verify(old_text, rotated, now=NOW).key_id == key_id(vector_key.public_key())
    assert verify(new_text, rotated, now=NOW).key_id == key_id(new_key.public_key())
