"""Activation codes: random, typeable, and a typing mistake is caught before any lookup."""

import pytest

from license import ActivationCodeError
from license.codes import ALPHABET, LENGTH, generate, parse


def test_a_code_is_four_groups_of_five_crockford_symbols():
    code = generate()
    groups = code.split("-")
    assert [len(g) for g in groups] == [5, 5, 5, 5]
    assert set("".join(groups)) <= set(ALPHABET) and not set("ILOU") & set(code)


def test_generated_codes_parse_back_unchanged():
    for _ in range(200):
        code = generate()
        assert parse(code) == code


def test_codes_do_not_repeat():
    assert len({generate() for _ in range(10_000)}) == 10_000


def test_reading_forgives_case_spaces_dashes_and_confusable_letters():
    code = generate()
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert parse(f"  {typed} ") == code


def test_every_single_mistyped_symbol_is_caught():
    compact = generate().replace("-", "")
    for position in range(LENGTH):
        for symbol in ALPHABET:
            if symbol != compact[position]:
                wrong = compact[:position] + symbol + compact[position + 1 :]
                with pytest.raises(ActivationCodeError, match="typing mistake"):
                    parse(wrong)


def test_every_swap_of_two_neighbours_is_caught():
    for _ in range(50):
        compact = generate().replace("-", "")
        for i in range(LENGTH - 1):
            if compact[i] != compact[i + 1]:
                swapped = compact[:i] + compact[i + 1] + compact[i] + compact[i + 2 :]
                with pytest.raises(ActivationCodeError, match="typing mistake"):
                    parse(swapped)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("ABCDE-FGHJK", "has 20 characters, this one has 10"),
        ("ABCDE-FGHJK-MNPQR-STVWX-YZ", "this one has 22"),
        ("ABCDE-FGHJK-MNPQR-STVWU", "found 'U'"),
        ("ABCDE-FGHJK-MNPQR-STV#X", "found '#'"),
    ],
)
def test_a_malformed_code_says_what_is_wrong(typed, message):
    with pytest.raises(ActivationCodeError, match=message):
        parse(typed)
