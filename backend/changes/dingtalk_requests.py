"""Changes asked for in DingTalk: an employee's agreed request becomes a change, once.

The instance's form values are read (GetProcessInstance) and mapped to a spec as the request
form's configuration says; a valid spec is recorded as a change of the form's type, already
approved, with its steps queued. One whose values make no valid change is not run: a comment
on the instance and a work notification say which value is wrong and why. The change's
unique instance id, and the one job per instance, make every repeat a no-op.
"""

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from backend.changes.forms import RequestForm
from backend.changes.model import ChangeStatus
from backend.changes.names import COMMENT_KIND, NOTICE_KIND
from backend.changes.service import Changes, NewChange, record, request_hash
from backend.changes.summary import refusal_comment, refusal_notice
from backend.cloud.plugins.base import Param
from backend.dingtalk.client import InstanceState
from backend.exceptions import RetryCannotHelp, ValidationError
from backend.jobs import queue
from backend.services import Services
from backend.storage import changes as store

log = logging.getLogger(__name__)


class NotDecidedYet(Exception):
    """DingTalk does not show the agreed request as decided yet; the job asks again."""


def take(services: Services, changes: Changes, instance_id: str, process_code: str) -> str:
    """Make the change an agreed request asks for; what became of it, for the log."""
    approvals = services.approvals
    form = approvals.forms.request_form(process_code) if approvals else None
    if approvals is None or form is None:
        raise RetryCannotHelp(
            f"instance {instance_id} was agreed on form {process_code}, which CHANGE_FORMS_FILE "
            "no longer lists as a request form: put it back, then `dingpass jobs retry` this job"
        )
    with services.database.transaction() as connection:
        if store.by_instance(connection, instance_id) is not None:
            return "taken before"
    state = approvals.client.get_instance(instance_id)
    if state.status == "RUNNING":
        # The event said agreed; DingTalk's read may lag behind it: ask again later, since
        # the event, once recorded, never comes back.
        raise NotDecidedYet(f"DingTalk still shows {instance_id} running; asking again later")
    if (state.status, state.result) != ("COMPLETED", "agree"):
        return f"not agreed ({state.status} {state.result})"
    body = spec_of(form, state, _parameters(changes, form.type))
    try:
        plan = changes.checked_plan(body)
    except ValidationError as err:
        _refuse(services, instance_id, state, problems(err, form, state))
        return "refused: its values make no valid change"
    new = NewChange(
        None,
        instance_id,
        request_hash({"type": form.type, "spec": plan.spec}),
        form.type,
        plan,
        ChangeStatus.PLANNED,
        {
            "origin": "dingtalk",
            "requester": state.originator,
            "approval_form": process_code,
            "instance_id": instance_id,
            "approval": "agree",
            "decided_at": services.clock(),
        },
    )
    with services.database.transaction() as connection:
        made = record(connection, new, services.clock())
    services.kick()
    return "taken" if made is not None else "taken meanwhile"


def spec_of(form: RequestForm, state: InstanceState, parameters: Mapping[str, Param]) -> Any:
    """The change request the instance's values make: {"type", "spec"}."""
    spec: dict[str, Any] = dict(form.fixed)
    for parameter, component in form.spec:
        value = _value(state, component)
        if value is None or value == "":
            continue  # left empty: the parameter's default, or its "required" message
        spec[parameter] = _typed(value, parameters.get(parameter))
    return {"type": form.type, "spec": spec}


def problems(error: ValidationError, form: RequestForm, state: InstanceState) -> list[str]:
    """Each wrong value, named by its component's label, with why (in Chinese)."""
    lines = []
    for field, text in error.fields.items():
        parameter = field.removeprefix("spec.")
        component = form.component_of(parameter)
        reason = text.get("zh") or text.get("en") if isinstance(text, dict) else str(text)
        if component is None:
            lines.append(f"- {parameter}：{reason}（{_english(text)}）")
            continue
        value = _value(state, component)
        shown = f"「{value}」" if value else "（未填写）"
        lines.append(f"- {component}{shown}：{reason}（{_english(text)}）")
    return lines


def _refuse(services: Services, instance_id: str, state: InstanceState, lines: list[str]) -> None:
    """Record the comment and the notification that say why nothing was run."""
    log.warning("request %s makes no valid change: %s", instance_id, "; ".join(lines))
    now = services.clock()
    with services.database.transaction() as connection:
        _enqueue(connection, COMMENT_KIND, instance_id, now, {"text": refusal_comment(lines)})
        if state.originator:
            notice = {"user_id": state.originator, "msg": refusal_notice(instance_id, lines)}
            _enqueue(connection, NOTICE_KIND, instance_id, now, notice)
    services.kick()


def _enqueue(
    connection: Connection, kind: str, instance_id: str, now: Any, payload: dict[str, Any]
) -> None:
    queue.enqueue(
        connection,
        kind,
        None,
        now,
        part=instance_id,
        payload={"instance_id": instance_id, **payload},
    )


def _value(state: InstanceState, component: str) -> str | None:
    """A component's value, by id (stable) or by label (as people write the mapping)."""
    if component in state.form_ids:
        return state.form_ids[component]
    return state.form.get(component)


def _typed(value: str, param: Param | None) -> Any:
    """A form's text as the parameter's kind: DingTalk gives every value as text."""
    if param is None:
        return value
    if param.kind == "int" and value.strip().lstrip("-").isdecimal():
        return int(value.strip())
    if param.kind == "bool" and value in ("true", "false", "是", "否"):
        return value in ("true", "是")
    if param.kind == "list":
        return [part.strip() for part in value.replace("，", ",").split(",") if part.strip()]
    return value


def _parameters(changes: Changes, change_type: str) -> Mapping[str, Param]:
    kind = changes.types.get(change_type)
    return kind.parameters if kind else {}


def _english(text: Any) -> str:
    return str(text.get("en", "")) if isinstance(text, dict) else ""
