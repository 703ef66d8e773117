"""Requests planned with the real plugins' parameters, as the changes API and DingTalk forms
plan them: what a caller may leave out is filled in, and planning twice changes nothing."""

from backend.changes.service import Changes
from backend.changes.types import change_types
from backend.clock import utc_now
from backend.cloud.plugins import all_plugins


def changes() -> Changes:
    plugins = all_plugins()
    return Changes(None, change_types(plugins), plugins, utc_now)  # type: ignore[arg-type]


def test_a_ram_user_without_policies_is_planned_with_none():
    plan = changes().checked_plan({"type": "ram.user", "spec": {"user_name": "mallory"}})
    assert plan.spec["policies"] == [] and plan.steps[0].spec["policies"] == []


def test_an_invalid_value_is_explained_in_chinese_alone_in_chinese():
    from backend.exceptions import ValidationError

    body = {"type": "ecs.security_group", "spec": {"vpc_id": "vpc-1", "name": "1bad"}}
    try:
        changes().checked_plan(body)
    except ValidationError as err:
        message = err.fields["spec.name"]
    assert message["zh"] == "格式不正确。" and "starting with a letter" in message["en"]
