"""The page and the backend apply the same form rules, with the same messages."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.applications.validation import TEXT_LIMITS, normalise, validate
from backend.catalogue import load_catalogue
from backend.exceptions import ValidationError
from frontend.catalogue import public_catalogue
from tests.conftest import CATALOGUE, ROOT

CASES = json.loads((Path(__file__).parent / "form-cases.json").read_text(encoding="utf-8"))


def backend_verdict(form: dict) -> dict:
    try:
        validate(form, load_catalogue(CATALOGUE))
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


def page_verdicts() -> list[dict]:
    given = {"catalogue": public_catalogue(CATALOGUE), "cases": CASES}
    return run_node(["vue-app/scripts/validate-cases.mjs"], given)


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
