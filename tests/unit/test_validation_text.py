"""The backend's rules for the text of an application form: Unicode, invisible characters, email.

The page applies the same rules (tests/contract runs both over form-cases.json); these tests
pin down the backend's side one behaviour at a time.
"""

import unicodedata

import pytest

from backend.applications.validation import ApplicationForm, validate
from backend.catalogue import load_catalogue
from backend.exceptions import ValidationError
from tests.conftest import CATALOGUE, a_form

NOT_ALLOWED = "Contains characters that are not allowed."
BAD_EMAIL = "Enter a valid email address."
SINGLE_LINE = ("company", "contact", "email", "phone", "feature_code", "product_version")
INVISIBLE = {
    "left-to-right embedding": "\u202a",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "pop directional isolate": "\u2069",
    "zero width space": "\u200b",
    "zero width joiner": "\u200d",
    "right-to-left mark": "\u200f",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "Arabic letter mark": "\u061c",
}


def accepted(**changes: object) -> ApplicationForm:
    return validate(a_form(**changes), load_catalogue(CATALOGUE))


def refusal(**changes: object) -> dict[str, str]:
    """The English message of each refused field."""
    with pytest.raises(ValidationError) as refused:
        accepted(**changes)
    return {name: message["en"] for name, message in refused.value.fields.items()}


@pytest.mark.parametrize("field", [*SINGLE_LINE, "note"])
@pytest.mark.parametrize("surrogate", ["\ud800", "\udfff", "x\udc00y"])
def test_a_lone_surrogate_is_refused_in_every_text_field(field, surrogate):
    assert refusal(**{field: f"示例{surrogate}公司"}) == {field: NOT_ALLOWED}


def test_a_character_outside_the_basic_plane_is_accepted():
    assert accepted(company="𠀀𠀁科技").company == "𠀀𠀁科技"


@pytest.mark.parametrize("field", SINGLE_LINE)
@pytest.mark.parametrize("character", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_format_character_is_refused_in_a_single_line_field(field, character):
    assert refusal(**{field: f"Acme{character}2"}) == {field: NOT_ALLOWED}


@pytest.mark.parametrize("character", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_format_character_is_refused_in_the_note(character):
    assert refusal(note=f"see {character}attached") == {"note": NOT_ALLOWED}


@pytest.mark.parametrize(
    ("name", "character"),
    [
        ("C1 control NEL", "\u0085"),
        ("C1 control CSI", "\u009b"),
        ("private use", "\ue000"),
        ("noncharacter", "\uffff"),
        ("unassigned", "\u0378"),
        ("line separator", "\u2028"),
        ("paragraph separator", "\u2029"),
    ],
)
def test_controls_private_use_unassigned_and_line_separators_are_refused_in_names(name, character):
    assert refusal(company=f"Acme{character}Inc") == {"company": NOT_ALLOWED}


def test_the_note_keeps_line_breaks_and_tabs():
    assert accepted(note="第一行\r\n第二行\t!\u2028third").note == "第一行\r\n第二行\t!\u2028third"


def test_the_note_refuses_a_control_character_other_than_a_line_break_or_tab():
    assert refusal(note="bell \u0085 here") == {"note": NOT_ALLOWED}


def test_every_text_field_is_stored_in_nfc():
    decomposed = "Cafe\u0301 \u1100\u1161"  # e + combining acute; Hangul jamo
    form = accepted(company=decomposed, contact=decomposed, note=decomposed)
    assert form.company == form.contact == form.note == "Café 가"
    assert unicodedata.is_normalized("NFC", form.company)


def test_the_length_limit_counts_the_normalised_text():
    assert accepted(company="e\u0301" * 100).company == "é" * 100
    assert refusal(company="e\u0301" * 101) == {"company": "At most 100 characters."}


def test_the_length_limit_counts_what_nfc_expands_to():
    # U+0958 is excluded from composition: NFC writes it as two code points.
    assert refusal(company="\u0958" * 60) == {"company": "At most 100 characters."}


def test_unicode_white_space_around_a_value_is_trimmed():
    assert accepted(company="\u3000\u00a0示例公司\u2003\n").company == "示例公司"


def test_a_byte_order_mark_at_the_start_is_refused_not_trimmed():
    assert refusal(company="\ufeff示例公司") == {"company": NOT_ALLOWED}


@pytest.mark.parametrize(
    "email",
    [
        "zhang@example.com",
        "zhang.san+licence@mail.example.com.cn",
        "o'neil@example.co.uk",
        "ZHANG_3@Example-Host.io",
        "li@xn--fiqs8s.xn--fiqz9s",
    ],
)
def test_one_plain_address_is_an_email(email):
    assert accepted(email=email).email == email


@pytest.mark.parametrize(
    "email",
    [
        "x@example.com,postmaster",
        "x@example.com, y@example.com",
        "x@example.com;y@example.com",
        "Zhang San <zhang@example.com>",
        "<zhang@example.com>",
        '"zhang san"@example.com',
        "zhang san@example.com",
        "zhang@example",
        "zhang@localhost",
        "zhang@@example.com",
        "zhang@exa@mple.com",
        ".zhang@example.com",
        "zhang.@example.com",
        "zh..ang@example.com",
        "zhang@-example.com",
        "zhang@example-.com",
        "zhang@example..com",
        "zhang@example.com.",
        "zhang@192.168.1.1",
        "zhang@[192.168.1.1]",
        "张三@例子.中国",
        "zhang@example.com\u3000x",
        f"{'z' * 65}@example.com",
        f"zhang@{'a' * 64}.com",
    ],
)
def test_anything_but_one_plain_address_is_not_an_email(email):
    assert refusal(email=email) == {"email": BAD_EMAIL}
