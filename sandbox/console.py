"""The approver console: every instance with its form, values and comments; Approve, Refuse
and Terminate; and starting an instance on an employee's behalf, as the DingTalk client does.

A start from the console is checked as the client checks a form (required values, numbers,
select options) and delivers no event: the sandbox publishes decisions only.
"""

import time
from typing import Any

from flask import Blueprint, Response, current_app, redirect, render_template, request

from sandbox.dingtalk_api import error, sandbox_state
from sandbox.forms import FormTemplate, console_problem

console = Blueprint("console", __name__, template_folder="templates")
ACTIONS = ("approve", "refuse", "terminate")


@console.app_template_filter("clock")
def clock(milliseconds: int) -> str:
    """A time for people: local, to the second."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(milliseconds / 1000))


@console.get("/")
def console_page() -> str:
    state = sandbox_state()
    with state.lock:  # a comment or a decision may be arriving meanwhile
        instances = sorted(state.instances.values(), key=lambda i: i.created_ms, reverse=True)
        return render_template("console.html", instances=instances, users=state.users)


@console.post("/console/<instance_id>/<action>")
def decide(instance_id: str, action: str) -> Any:
    """Decide as manager01, or as the employee the request names (``userId``)."""
    if action not in ACTIONS:
        return error(404, "notFound", "no such action")
    state, deliverer = current_app.extensions["sandbox"]
    user_id = _named_user()
    if user_id is not None and user_id not in state.users:
        return error(400, "userNotExist", f"用户不存在: {user_id}")
    instance = state.decide(instance_id, action, user_id)
    if instance is None:
        return error(409, "instanceNotRunning", "the instance is not running")
    deliverer.publish(instance)
    if _wants_json():
        return {
            "instanceId": instance.id,
            "status": instance.status,
            "result": instance.result,
        }
    return redirect("/")


def _named_user() -> str | None:
    body = request.get_json(silent=True) if request.is_json else None
    named = body.get("userId") if isinstance(body, dict) else request.values.get("userId")
    return str(named) if named else None


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


@console.get("/console/start")
def start_list() -> str:
    """The forms an employee can start an approval on."""
    return render_template("start.html", forms=list(sandbox_state().forms.values()))


@console.get("/console/start/<process_code>")
def start_form(process_code: str) -> Any:
    """One form, to fill in on behalf of an employee."""
    form = sandbox_state().forms.get(process_code)
    if form is None:
        return error(404, "processCodeError", f"no form {process_code}")
    return _form_page(form, "", {}, None)


@console.post("/console/start/<process_code>")
def start(process_code: str) -> Any:
    """Start an instance as the employee named; JSON in, JSON out, or the HTML form."""
    state = sandbox_state()
    form = state.forms.get(process_code)
    if form is None:
        return error(400, "processCodeError", "获取审批模板失败或者模板已被删除")
    try:
        originator, values = _checked_start(form)
    except StartRefused as refused:
        if _wants_json():
            return error(400, refused.code, refused.message)
        originator = request.form.get("originatorUserId", "")
        return _form_page(form, originator, _form_values(form), refused.message), 400
    filled = [
        {"name": c.label, "value": values[c.label]}
        for c in form.components
        if values.get(c.label, "").strip()
    ]
    instance = state.start(process_code, originator, -1, filled)
    if _wants_json():
        return {"instanceId": instance.id}
    return redirect("/")


class StartRefused(ValueError):
    """A start from the console that DingTalk's client would not submit."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _checked_start(form: FormTemplate) -> tuple[str, dict[str, str]]:
    """The originator and the values (label to value) of a start, checked.

    Raises:
        StartRefused: with DingTalk's code and a message a person reads.
    """
    if request.is_json:
        body = request.get_json(silent=True)
        body = body if isinstance(body, dict) else {}
        originator, values = body.get("originatorUserId"), body.get("values")
    else:
        originator, values = request.form.get("originatorUserId"), _form_values(form)
    if not isinstance(originator, str) or originator not in sandbox_state().users:
        raise StartRefused("userNotExist", f"发起人不是组织内的员工: {originator!r}")
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise StartRefused("illegalComponent", "表单组件入参错误: values maps labels to strings")
    problem = console_problem(form, values)
    if problem is not None:
        raise StartRefused("formConverterError", problem)
    return originator, values


def _form_values(form: FormTemplate) -> dict[str, str]:
    """The values of the HTML form, whose inputs are named by component id, by label."""
    return {c.label: request.form[c.id] for c in form.components if c.id in request.form}


def _form_page(
    form: FormTemplate, originator: str, values: dict[str, str], message: str | None
) -> str | Response:
    return render_template(
        "start_form.html",
        form=form,
        users=sandbox_state().users,
        originator=originator,
        values=values,
        message=message,
    )
