"""Signing keys load from PEM text or a file, and say clearly why they cannot."""

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from license import SigningKeyError
from license.keys import generate, key_id, load_private_key, private_pem


def test_a_key_loads_from_pem_text_and_from_a_file(tmp_path):
    key = generate()
    pem = private_pem(key)
    (tmp_path / "k.pem").write_bytes(pem)
    expected = key_id(key.public_key())
    assert key_id(load_private_key(pem.decode()).public_key()) == expected
    assert key_id(load_private_key(str(tmp_path / "k.pem")).public_key()) == expected


def test_an_encrypted_key_needs_its_passphrase():
    pem = private_pem(generate(), b"correct horse").decode()
    assert load_private_key(pem, b"correct horse")
    with pytest.raises(SigningKeyError, match="is locked: give its passphrase"):
        load_private_key(pem)
    with pytest.raises(SigningKeyError, match="passphrase is wrong"):
        load_private_key(pem, b"wrong")


def test_a_missing_file_says_which_and_what_to_set(tmp_path):
    with pytest.raises(SigningKeyError, match="nope.pem cannot be read.*PEM text or the path"):
        load_private_key(str(tmp_path / "nope.pem"))


def test_a_key_of_another_type_is_refused():
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(SigningKeyError, match="not Ed25519"):
        load_private_key(other.decode())


def test_a_passphrase_for_a_plain_key_is_refused():
    with pytest.raises(SigningKeyError, match="has no passphrase: give none"):
        load_private_key(private_pem(generate()).decode(), b"unneeded")
