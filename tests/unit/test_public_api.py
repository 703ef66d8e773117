"""The license package's public names are a promise to vendors: changing them is deliberate."""

import license


def test_the_license_package_exports_exactly_these_names():
    assert sorted(license.__all__) == [
        "ActivationCodeError",
        "BadSignature",
        "Expired",
        "Issuer",
        "License",
        "LicenseError",
        "Licensee",
        "MalformedLicense",
        "NotYetValid",
        "PayloadError",
        "SigningKeyError",
        "UnknownKeyId",
        "WrongMachine",
        "WrongProduct",
        "decode_unverified",
        "key_id",
        "key_ring",
        "new_license_id",
        "verify",
    ]


def test_every_license_error_is_a_value_error():
    errors = [getattr(license, name) for name in license.__all__ if name.endswith("Error")]
    assert all(issubclass(error, license.LicenseError) for error in errors)
    assert issubclass(license.LicenseError, ValueError)
