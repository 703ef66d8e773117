"""Issuing: canonical payload bytes, and terms no product should be asked to accept."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from license import Licensee, PayloadError, verify
from license.issuer import new_license_id
from license.render import render
from license.verifier import format_time, parse_time
from tests.conftest import NOW

text = st.text(min_size=1, max_size=40).filter(lambda s: s.strip())
moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2999, 1, 1),
    timezones=st.just(timezone.utc),
)


# The `terms` fixture is a frozen dataclass, so sharing it across examples is safe.
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    company=text,
    contact=st.text(max_size=20),
    feature=text,
    quantity=st.integers(min_value=1, max_value=2**53 - 1),
    entitlements=st.lists(st.text(max_size=12), max_size=5),
    application=st.none() | st.text(max_size=20),
    start=moments,
    days=st.none() | st.integers(min_value=1, max_value=36500),
)
def test_the_signed_payload_is_exactly_rfc8785(
    terms, company, contact, feature, quantity, entitlements, application, start, days
):
    varied = replace(
        terms,
        licensee=Licensee(company, contact, "x@example.com"),
        feature_code=feature,
        quantity=quantity,
        entitlements=tuple(entitlements),
        application=application,
        issued_at=start,
        valid_from=start,
        valid_until=None if days is None else start + timedelta(days=days),
    )
    payload = varied.to_payload() | {"kid": "0123456789abcdef"}
    assert render(varied, "0123456789abcdef")[0] == rfc8785.dumps(payload)


def test_control_characters_and_quotes_are_escaped_as_rfc8785_does(terms):
    odd = replace(terms, licensee=Licensee('A "B"\\\n\t\x00\x1f\x7f\u2028 公司', "c", "e@x.io"))
    assert render(odd, "k")[0] == rfc8785.dumps(odd.to_payload() | {"kid": "k"})


def test_a_license_round_trips_through_signing_and_verifying(issuer, terms, ring):
    lic = verify(issuer.sign(terms), ring, now=NOW)
    assert replace(lic, key_id="") == terms


@pytest.mark.parametrize("entitlements", [0, 1, 40, 400])
def test_the_body_is_cut_into_lines_of_64_whatever_its_length(issuer, terms, ring, entitlements):
    long = replace(terms, entitlements=tuple(f"feature-{n}" for n in range(entitlements)))
    text = issuer.sign(long)
    body = text.split(f"Key-Id: {issuer.key_id}\n\n")[1].split("\n-----END")[0]
    lines = body.split("\n")
    assert all(len(line) == 64 for line in lines[:-1]) and 0 < len(lines[-1]) <= 64
    assert verify(text, ring, now=NOW).entitlements == long.entitlements


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"quantity": 0}, "whole number from 1"),
        ({"quantity": 2.5}, "whole number from 1"),
        ({"quantity": True}, "whole number from 1"),
        ({"quantity": 2**53}, "whole number from 1"),
        ({"product": ""}, "needs an id, a product"),
        ({"licensee": Licensee("", "c", "e@x.io")}, "company name and an email"),
        (
            {"licensee": Licensee("Co", "c", "not-an-email")},
            "company name and an email",
        ),
        ({"valid_until": NOW}, "must end after it starts"),
        ({"issued_at": datetime(2026, 11, 23)}, "timezone-aware"),
    ],
)
def test_unacceptable_terms_are_refused_before_signing(issuer, terms, change, message):
    with pytest.raises(PayloadError, match=message):
        issuer.sign(replace(terms, **change))


def test_text_with_a_lone_surrogate_cannot_be_signed(issuer, terms):
    with pytest.raises(PayloadError, match="lone surrogate"):
        issuer.sign(replace(terms, feature_code="\ud800"))


def test_an_entitlement_that_is_not_text_cannot_be_signed(issuer, terms):
    with pytest.raises(PayloadError, match="wrong type"):
        issuer.sign(replace(terms, entitlements=("reports", 7)))


def test_license_ids_carry_the_issue_date_and_differ(terms):
    ids = {new_license_id(NOW) for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("L20261123-") and len(i) == 18 for i in ids)


@given(
    moment=st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.builds(
            timezone,
            st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23)),
        ),
    )
)
def test_times_are_written_in_utc_to_the_second_and_read_back(moment):
    utc = moment.astimezone(timezone.utc).replace(microsecond=0)
    written = format_time(moment)
    assert written == utc.replace(tzinfo=None).isoformat() + "Z"
    assert parse_time(written) == utc
