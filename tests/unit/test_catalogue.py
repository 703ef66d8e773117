"""The catalogue file: what it allows, and mistakes named by file, product and key."""

import pytest

from backend.catalogue import load_catalogue
from backend.exceptions import ConfigError
from tests.conftest import CATALOGUE

GOOD = """
[products.acme-erp]
name = { zh = "甲", en = "A" }
edition = "enterprise"
quantities = [1, 5]
validities = ["1y"]
feature_code_pattern = "[0-9A-F]{4}"
"""


def test_the_sample_catalogue_reads():
    products = load_catalogue(CATALOGUE)
    assert products["acme-erp"].allows_quantity(5) and not products["acme-erp"].allows_quantity(6)
    assert products["acme-crm"].allows_quantity(500) and not products["acme-crm"].allows_quantity(
        501
    )


def test_the_public_view_leaves_out_the_license_terms():
    public = load_catalogue(CATALOGUE)["acme-erp"].public()
    assert "entitlements" not in public and "edition" not in public


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('["1y"]', '["forever"]'), "validities must be among"),
        (lambda t: t.replace("quantities = [1, 5]", ""), "give quantities"),
        (lambda t: t.replace("[0-9A-F]{4}", "[0-9A-F"), "unterminated character set"),
        (lambda t: t.replace("acme-erp", "Acme_ERP"), "lower-case"),
        (lambda t: t.replace(', en = "A"', ""), "name must be"),
        (lambda t: t + "[[oops", "not valid TOML"),
        (lambda t: "", "no \\[products.<code>\\] tables"),
    ],
)
def test_a_mistake_names_the_file_and_the_product(tmp_path, edit, message):
    path = tmp_path / "catalogue.toml"
    path.write_text(edit(GOOD), encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_catalogue(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_says_which(tmp_path):
    with pytest.raises(ConfigError, match="cannot read .*nope.toml"):
        load_catalogue(tmp_path / "nope.toml")
