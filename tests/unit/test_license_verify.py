"""verify() returns the license or raises exactly the error that says why not."""

import ast
import base64
import sys
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import license.verifier
from license import (
    Expired,
    MalformedLicense,
    NotYetValid,
    WrongMachine,
    WrongProduct,
    verify,
)
from license.render import render
from license.verifier import SIGNING_PREFIX, decode_unverified
from tests.conftest import NOW

START, END = NOW, NOW + timedelta(days=30)
TICK = timedelta(microseconds=1)
VECTOR_KEY_ID = "3167edf078c551a7"  # the id of tests/vectors/license-v1/test-public-key.pem


@pytest.mark.parametrize("moment", [START, START + TICK, END - TICK])
def test_a_license_holds_from_its_first_instant_to_just_before_its_end(issuer, terms, ring, moment):
    assert verify(issuer.sign(terms), ring, now=moment).id == terms.id


def test_a_license_is_not_yet_valid_an_instant_before_it_starts(issuer, terms, ring):
    with pytest.raises(NotYetValid, match="valid from 2026-11-23T08:00:00Z"):
        verify(issuer.sign(terms), ring, now=START - TICK)


def test_a_license_has_expired_at_its_end(issuer, terms, ring):
    with pytest.raises(Expired, match="expired at 2026-12-23T08:00:00Z; renew it"):
        verify(issuer.sign(terms), ring, now=END)


def test_a_perpetual_license_never_expires(issuer, terms, ring):
    text = issuer.sign(replace(terms, valid_until=None))
    far = datetime(9999, 1, 1, tzinfo=NOW.tzinfo)
    assert verify(text, ring, now=far).perpetual


def test_a_license_for_another_machine_is_refused(issuer, terms, ring):
    with pytest.raises(WrongMachine, match="'AAAA-BBBB'.*not this one \\('CCCC-DDDD'\\)"):
        verify(issuer.sign(terms), ring, now=NOW, feature_code="CCCC-DDDD")


def test_a_license_for_another_product_is_refused(issuer, terms, ring):
    with pytest.raises(WrongProduct, match="for product 'acme-erp', not 'acme-crm'"):
        verify(issuer.sign(terms), ring, now=NOW, product="acme-crm")


def test_the_summary_lines_are_ignored(issuer, terms, ring):
    text = issuer.sign(terms).replace("Quantity:     3", "Quantity:     3000")
    assert verify(text, ring, now=NOW).quantity == 3


def test_a_naive_time_is_refused_rather_than_guessed(issuer, terms, ring):
    with pytest.raises(TypeError, match="timezone-aware"):
        verify(issuer.sign(terms), ring, now=datetime(2026, 11, 24))


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: "hello", "no license found"),
        (
            lambda t: t.replace("Format: 1", "Format: 2"),
            "format '2' is not one this verifier reads",
        ),
        (lambda t: t.replace("Key-Id:", "Key:"), "no Key-Id header"),
        (lambda t: t.replace("\nFormat: 1", "\nFormat 1"), "is not 'Name: value'"),
        (lambda t: t.replace("-----END", "$$\n-----END"), "not base64url"),
        (lambda t: t.replace("-----END", "+\n-----END"), "not base64url"),
        (
            lambda t: (
                t[: t.index("\n\n", t.index("-----BEGIN")) + 2]
                + "AAAA\n-----END DINGPASS LICENSE-----"
            ),
            "truncated",
        ),
    ],
)
def test_a_damaged_envelope_is_malformed(issuer, terms, ring, mangle, message):
    with pytest.raises(MalformedLicense, match=message):
        verify(mangle(issuer.sign(terms)), ring, now=NOW)


def signed_blob(vector_key, payload: bytes) -> str:
    """A correctly signed license around an arbitrary payload, as a buggy issuer might make."""
    blob = payload + vector_key.sign(SIGNING_PREFIX + payload)
    body = base64.urlsafe_b64encode(blob).rstrip(b"=").decode()
    head = f"-----BEGIN DINGPASS LICENSE-----\nFormat: 1\nKey-Id: {VECTOR_KEY_ID}\n\n"
    return f"{head}{body}\n-----END DINGPASS LICENSE-----\n"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "not of format 1"),
        (b'{"v": 1, "id": "x"}', "unreadable"),
        (b"\xff\xfe", "not valid JSON"),
        (b'{"v": 1} {"v": 1}', "followed by something else"),
    ],
)
def test_signed_terms_that_cannot_be_read_are_malformed(vector_key, ring, payload, message):
    with pytest.raises(MalformedLicense, match=message):
        verify(signed_blob(vector_key, payload), ring, now=NOW)


def test_a_key_id_header_that_differs_from_the_signed_one_is_malformed(vector_key, terms, ring):
    payload, _ = render(terms, "0000000000000000")
    with pytest.raises(MalformedLicense, match="differs"):
        verify(signed_blob(vector_key, payload), ring, now=NOW)


def test_entitlements_that_are_not_a_list_are_malformed(vector_key, terms, ring):
    payload, _ = render(terms, VECTOR_KEY_ID)
    flags = payload[payload.index(b'"entitlements":') :].split(b"]", 1)[0] + b"]"
    payload = payload.replace(flags, b'"entitlements":"sso"')
    with pytest.raises(MalformedLicense, match="list of texts"):
        verify(signed_blob(vector_key, payload), ring, now=NOW)


def test_decoding_unverified_reads_the_terms_for_display(vector_text, vector_terms):
    assert replace(decode_unverified(vector_text), key_id="") == vector_terms


def test_the_verifier_depends_only_on_the_standard_library_and_cryptography():
    tree = ast.parse(Path(license.verifier.__file__).read_text(encoding="utf-8"))
    roots = {
        (node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert roots - {"__future__", "cryptography"} <= set(sys.stdlib_module_names)
