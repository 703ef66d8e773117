"""Hostile text in an application, through the signed API, on SQLite and on MariaDB.

Each case is refused with 422 and the field's own message; nothing reaches the database driver
(a lone surrogate used to make pymysql raise UnicodeEncodeError, a 500).
"""

import pytest
from sqlalchemy import func, select

from backend.storage.schema import applications
from tests.integration.conftest import a_form

NOT_ALLOWED = "Contains characters that are not allowed."


@pytest.mark.parametrize(
    ("changes", "field", "english"),
    [
        ({"company": "示例\ud800公司"}, "company", NOT_ALLOWED),
        ({"contact": "\udc00"}, "contact", NOT_ALLOWED),
        ({"note": "first line\nsecond \udbff"}, "note", NOT_ALLOWED),
        ({"email": "x@example.com,postmaster"}, "email", "Enter a valid email address."),
        ({"email": "<zhang@example.com>"}, "email", "Enter a valid email address."),
        ({"company": "Acme\u202egnp.exe"}, "company", NOT_ALLOWED),
        ({"contact": "张\u200b三"}, "contact", NOT_ALLOWED),
        ({"note": "\u2066hidden\u2069"}, "note", NOT_ALLOWED),
        ({"feature_code": "9F2C-41AB-77D0-E5C3\ufeff"}, "feature_code", NOT_ALLOWED),
        # NFC writes U+0958 as two code points: 60 typed are 120 stored, over the limit.
        ({"company": "\u0958" * 60}, "company", "At most 100 characters."),
    ],
)
def test_hostile_text_is_refused_with_the_fields_message(api, database, changes, field, english):
    answer = api.post("/applications", a_form(**changes))
    assert answer.status_code == 422
    fields = answer.get_json()["fields"]
    assert list(fields) == [field] and fields[field]["en"] == english and fields[field]["zh"]
    with database.transaction() as connection:
        assert connection.execute(select(func.count()).select_from(applications)).scalar() == 0


def test_a_lone_surrogate_in_a_field_name_is_refused_not_a_server_error(api):
    answer = api.post("/applications", {**a_form(), "\ud800": "x"})
    assert answer.status_code == 422 and list(answer.get_json()["fields"]) == ["\ud800"]


def test_decomposed_text_is_stored_in_nfc(api, database):
    api.post("/applications", a_form(company="Cafe\u0301 \u1100\u1161", note="Cafe\u0301"))
    with database.transaction() as connection:
        company, note = connection.execute(
            select(applications.c.company, applications.c.note)
        ).one()
    assert (company, note) == ("Café 가", "Café")
