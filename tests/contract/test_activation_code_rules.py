"""The page reads activation codes as license/codes.py does: the same codes, the same typos."""

import ast
import re

import pytest

from backend.codes.refusals import CodeMalformed
from license import codes
from license.exceptions import ActivationCodeError
from tests.contract.test_form_rules import run_node

READ = """
import { readFileSync } from "node:fs";
import { codeError, formatCode, parseCode } from "./vue-app/src/validation.js";
const { texts, call } = JSON.parse(readFileSync(0, "utf8"));
const calls = { parseCode, formatCode, codeError };
process.stdout.write(JSON.stringify(texts.map((text) => calls[call](text))));
"""
SAMPLE = 200
"""Generated codes compared in every way of typing them."""
TYPO_SAMPLE = 12
"""Codes whose every one-symbol typo (20 places x 31 symbols) and neighbour swap is tried."""


def page(texts: list[str], call: str = "parseCode") -> list:
    """What the page's validation.js makes of each text."""
    return run_node(["--input-type=module", "--eval", READ], {"texts": texts, "call": call})


def python(text: str) -> dict:
    """license.codes.parse's reading, in the page's terms: {code} or {error, ...}."""
    try:
        return {"code": codes.parse(text)}
    except ActivationCodeError as err:
        message = str(err)
    if "typing mistake" in message:
        return {"error": "typo"}
    if found := re.search(r"found (.+)$", message):
        return {"error": "characters", "found": ast.literal_eval(found[1])}
    count = re.search(r"this one has (\d+)", message)
    assert count, message
    return {"error": "length", "count": int(count[1])}


def typings(code: str) -> list[str]:
    """Ways a person may type ``code`` that parse forgives."""
    compact = code.replace("-", "")
    return [
        code,
        code.lower(),
        compact,
        " ".join(code.split("-")),
        "\u3000" + compact.lower() + "\n",
        code.replace("1", "l").replace("0", "o"),
        code.replace("1", "I").replace("0", "O"),
        "-".join(compact[i : i + 4] for i in range(0, 20, 4)),
    ]


def typos(code: str) -> list[str]:
    """Every code one symbol away from ``code``."""
    compact = code.replace("-", "")
    return [
        compact[:i] + other + compact[i + 1 :]
        for i, symbol in enumerate(compact)
        for other in codes.ALPHABET
        if other != symbol
    ]


def swaps(code: str) -> list[str]:
    """``code`` with each pair of unequal neighbours swapped."""
    compact = code.replace("-", "")
    return [
        compact[:i] + compact[i + 1] + compact[i] + compact[i + 2 :]
        for i in range(len(compact) - 1)
        if compact[i] != compact[i + 1]
    ]


def test_the_page_reads_generated_codes_as_python_does_however_they_are_typed():
    texts = [text for _ in range(SAMPLE) for text in typings(codes.generate())]
    expected = [python(text) for text in texts]
    assert all("code" in reading for reading in expected)
    assert page(texts) == expected


def test_every_one_symbol_typo_is_caught_on_both_sides():
    texts = [text for _ in range(TYPO_SAMPLE) for text in typos(codes.generate())]
    assert len(texts) == TYPO_SAMPLE * 20 * 31
    assert page(texts) == [python(text) for text in texts] == [{"error": "typo"}] * len(texts)


def test_every_swap_of_neighbours_is_caught_on_both_sides():
    texts = [text for _ in range(TYPO_SAMPLE * 10) for text in swaps(codes.generate())]
    assert page(texts) == [python(text) for text in texts] == [{"error": "typo"}] * len(texts)


MALFORMED = [
    "",
    "-- --",
    "7KQ2M-9XHZP-3RWTB-A8D4",
    "7KQ2M-9XHZP-3RWTB-A8D4CC",
    "7KQ2M-9XHZP-3RWTB-A8D4U",
    "7KQ2M_9XHZP_3RWTB_A8D4C",
    "７KQ2M-9XHZP-3RWTB-A8D4C",
    "7kq2m\u00df9xhzp3rwtba8d4",
    "7KQ2M\u00a09XHZP\u20033RWTB\x1cA8D4C",
    "7KQ2M\ufeff9XHZP3RWTBA8D4C",
    "7KQ2M\u200b9XHZP3RWTBA8D4C",
    "\U0001f600\u00e9zu 7KQ2M",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_a_malformed_code_gets_the_same_answer_on_both_sides(text):
    assert page([text]) == [python(text)]


def test_the_page_groups_a_code_in_fives_as_it_is_typed():
    typed = ["7kq2m9", "7KQ2M-9XHZP 3r", " 7-k-q-2-m-9-x ", "7KQ2M9XHZP3RWTBA8D4CQ"]
    assert page(typed, "formatCode") == [
        "7KQ2M-9",
        "7KQ2M-9XHZP-3R",
        "7KQ2M-9X",
        "7KQ2M-9XHZP-3RWTB-A8D4C-Q",
    ]


def test_the_page_says_a_code_has_a_typing_mistake_in_both_languages():
    compact = codes.generate().replace("-", "")
    mistyped = compact[:7] + ("A" if compact[7] != "A" else "B") + compact[8:]
    assert page([mistyped, "", compact], "codeError") == [
        {
            "zh": "激活码有输入错误，请逐个字符核对。",
            "en": "This activation code has a typing mistake: check each character.",
        },
        {"zh": "请填写激活码。", "en": "Enter your activation code."},
        None,
    ]


@pytest.mark.parametrize("text", [text for text in MALFORMED if text.strip(" -")])
def test_the_page_and_the_backend_say_the_same_of_a_malformed_code(text):
    assert page([text], "codeError") == [CodeMalformed(text).reason]
