"""How long a license runs: the validities customers choose, and any number of days for batches."""

from datetime import timedelta

import pytest

from backend.catalogue import VALIDITIES, validity_length


@pytest.mark.parametrize(("validity", "length"), sorted(VALIDITIES.items()))
def test_every_validity_a_customer_may_choose_keeps_its_length(validity, length):
    assert validity_length(validity) == length


def test_perpetual_runs_for_ever():
    assert validity_length("perpetual") is None


@pytest.mark.parametrize(
    ("validity", "days"), [("1d", 1), ("7d", 7), ("400d", 400), ("3650d", 3650)]
)
def test_a_number_of_days_runs_that_many_days(validity, days):
    assert validity_length(validity) == timedelta(days=days)


@pytest.mark.parametrize(
    "validity", ["0d", "3651d", "99999d", "07d", "-5d", "10D", "d", "1y2", "10 d", " 30d", "", "1w"]
)
def test_anything_else_is_refused_naming_the_choices(validity):
    with pytest.raises(ValueError, match=r"neither one of 30d, 90d.*nor a number of days from 1d"):
        validity_length(validity)
