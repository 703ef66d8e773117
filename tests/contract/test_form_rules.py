"""The page and the backend apply the same form rules, with the same messages."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.applications.validation import (
    TEXT_LIMITS,
    canonical_feature_code,
    normalise,
    validate,
)
from backend.catalogue import load_catalogue
from backend.exceptions import ValidationError
from frontend import catalogue as frontend_catalogue
from frontend.catalogue import public_catalogue
from tests.conftest import CATALOGUE, ROOT

CASES = json.loads((Path(__file__).parent / "form-cases.json").read_text(encoding="utf-8"))


def backend_verdict(form: dict, catalogue: Path = CATALOGUE) -> dict:
    try:
        validate(form, load_catalogue(catalogue))
    except ValidationError as err:
        return err.fields
    return {}


NORMALISE = """
import { readFileSync } from "node:fs";
import { normalise } from "./vue-app/src/validation.js";
const texts = JSON.parse(readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(texts.map(normalise)));
"""


def run_node(arguments: list[str], given: object) -> list:
    """What a page script prints, as JSON, for ``given`` on its standard input."""
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is needed to run the page's validation (make test installs the page's tools)"
        )
    done = subprocess.run(
        [node, *arguments],
        input=json.dumps(given),  # ASCII: a lone surrogate travels as its \u escape
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def page_verdicts(cases: list[dict] = CASES, catalogue: Path = CATALOGUE) -> list[dict]:
    given = {"catalogue": public_catalogue(catalogue), "cases": cases}
    return run_node(["vue-app/scripts/validate-cases.mjs"], given)


CANONICAL_CODE = """
import { readFileSync } from "node:fs";
import { canonicalFeatureCode } from "./vue-app/src/validation.js";
const { catalogue, codes } = JSON.parse(readFileSync(0, "utf8"));
const canonical = ([product, code]) => canonicalFeatureCode(catalogue.products[product], code);
process.stdout.write(JSON.stringify(codes.map(canonical)));
"""


def page_feature_codes(codes: list[tuple[str, str]], catalogue: Path = CATALOGUE) -> list[str]:
    """The feature codes as the page would send them, for (product, code) pairs."""
    given = {"catalogue": public_catalogue(catalogue), "codes": codes}
    return run_node(["--input-type=module", "--eval", CANONICAL_CODE], given)


def a_case(**changes: object) -> dict:
    """A form both sides accept, with ``changes``."""
    return {**CASES[0], **changes}


def test_the_cases_cover_both_verdicts():
    verdicts = [backend_verdict(form) for form in CASES]
    assert {} in verdicts and sum(1 for v in verdicts if v) >= 10


def test_page_and_backend_agree_on_every_case():
    for form, page in zip(CASES, page_verdicts(), strict=True):
        assert page == backend_verdict(form), form


def test_page_and_backend_normalise_text_alike():
    texts = [
        form[name] for form in CASES for name in TEXT_LIMITS if isinstance(form.get(name), str)
    ]
    texts += ["\ufeff x \u0085", "\x1c x \x1f", "\u2003\u212b\u2028", "\ud800 \u00a0"]
    page = run_node(["--input-type=module", "--eval", NORMALISE], texts)
    assert page == [normalise(text) for text in texts]


OUT_OF_RANGE = {"product": "acme-crm", "feature_code": "K7Q2M9XH", "quantity": 600}
NOT_LISTED = {"quantity": 7}


@pytest.mark.parametrize(
    ("changes", "zh", "en"),
    [
        (OUT_OF_RANGE, "请选择 1 到 500 之间的数量。", "Choose a quantity from 1 to 500."),
        (
            NOT_LISTED,
            "请从 1、5、10、25、50、100 中选择数量。",
            "Choose one of 1, 5, 10, 25, 50, 100.",
        ),
    ],
)
def test_a_quantity_not_offered_is_told_the_range_or_values_offered(changes, zh, en):
    form = a_case(**changes, validity="1y")
    expected = {"quantity": {"zh": zh, "en": en}}
    assert page_verdicts([form]) == [expected]
    assert backend_verdict(form) == expected


def test_a_lower_case_feature_code_is_taken_upper_cased_on_both_sides():
    form = a_case(feature_code="9f2c-41ab-77d0-e5c3")
    assert page_verdicts([form]) == [{}]
    accepted = validate(form, load_catalogue(CATALOGUE))
    assert accepted.feature_code == "9F2C-41AB-77D0-E5C3"
    assert page_feature_codes([("acme-erp", "9f2c-41ab-77d0-e5c3")]) == ["9F2C-41AB-77D0-E5C3"]


def test_page_backend_and_qr_code_upper_case_feature_codes_alike():
    products = load_catalogue(CATALOGUE)
    codes = [
        (case["product"], case["feature_code"]) for case in CASES if case["product"] in products
    ]
    codes += [("acme-crm", "k7q2m9xh\u00df\u0131"), ("acme-erp", "9f2c-41ab-77d0-e5c\u00e9")]
    backend = [canonical_feature_code(products[name], code) for name, code in codes]
    patterns = {name: product.feature_code_pattern.pattern for name, product in products.items()}
    qr = [frontend_catalogue.canonical_feature_code(patterns[name], code) for name, code in codes]
    assert page_feature_codes(codes) == backend == qr


LOWER_CASE_PRODUCT = """
[products.hex-tool]
name = { zh = "工具", en = "Tool" }
edition = "standard"
max_quantity = 10
validities = ["1y"]
feature_code_pattern = "[0-9a-f]{8}"
feature_code_hint = "9f2c41ab"
"""


def test_a_code_the_products_pattern_takes_in_lower_case_is_kept_as_given(tmp_path):
    catalogue = tmp_path / "catalogue.toml"
    catalogue.write_text(LOWER_CASE_PRODUCT, encoding="utf-8")
    form = a_case(product="hex-tool", feature_code="9f2c41ab", quantity=3)
    assert page_verdicts([form], catalogue) == [{}] == [backend_verdict(form, catalogue)]
    assert validate(form, load_catalogue(catalogue)).feature_code == "9f2c41ab"
    assert page_feature_codes([("hex-tool", "9f2c41ab")], catalogue) == ["9f2c41ab"]
