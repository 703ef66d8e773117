"""An application moves only as the one table of transitions allows."""

from itertools import pairwise

import pytest

from backend.applications.status import TRANSITIONS, ApplicationStatus, check_move
from backend.exceptions import IllegalTransition

S = ApplicationStatus
PATH = [S.SUBMITTED, S.PENDING, S.APPROVED, S.ISSUED, S.DELIVERED]


def test_every_status_has_its_row_in_the_table():
    assert set(TRANSITIONS) == set(ApplicationStatus)


@pytest.mark.parametrize(("before", "after"), list(pairwise(PATH)))
def test_the_license_path_moves_one_step_at_a_time(before, after):
    check_move(before, after)


@pytest.mark.parametrize("decision", [S.APPROVED, S.REFUSED, S.TERMINATED])
def test_a_pending_application_is_decided(decision):
    check_move(S.PENDING, decision)


@pytest.mark.parametrize("decision", [S.REFUSED, S.TERMINATED])
def test_only_a_pending_application_is_refused_or_withdrawn(decision):
    with pytest.raises(IllegalTransition):
        check_move(S.SUBMITTED, decision)


def test_an_application_with_an_activation_code_is_approved_without_waiting():
    check_move(S.SUBMITTED, S.APPROVED)


@pytest.mark.parametrize("final", [S.REFUSED, S.TERMINATED, S.DELIVERED])
def test_a_final_status_moves_nowhere(final):
    for after in ApplicationStatus:
        with pytest.raises(IllegalTransition, match="nothing: it is final"):
            check_move(final, after)


def test_a_move_the_table_lacks_says_what_is_allowed_instead():
    with pytest.raises(IllegalTransition) as refused:
        check_move(S.APPROVED, S.DELIVERED)
    assert str(refused.value) == (
        "an application cannot move approved -> delivered; from approved it may move to issued"
    )
