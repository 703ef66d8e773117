"""The page and the backend apply the same form rules, with the same messages."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.applications.validation import validate
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


def page_verdicts() -> list[dict]:
    node = shutil.which("node")
    if node is None:
        pytest.fail(
            "node is needed to run the page's validation (make test installs the page's tools)"
        )
    given = json.dumps({"catalogue": public_catalogue(CATALOGUE), "cases": CASES})
    done = subprocess.run(
        [node, "vue-app/scripts/validate-cases.mjs"],
        input=given,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_the_cases_cover_both_verdicts():
    verdicts = [backend_verdict(form) for form in CASES]
    assert {} in verdicts and sum(1 for v in verdicts if v) >= 10


def test_page_and_backend_agree_on_every_case():
    for form, page in zip(CASES, page_verdicts(), strict=True):
        assert page == backend_verdict(form), form
