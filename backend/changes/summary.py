"""How a change reads to people in DingTalk: the approver's form, the outcome's comment and
work notification. In Chinese, as the approvers and employees read them; ids as they are."""

import json
from typing import Any

from backend.changes.forms import ApprovalForm
from backend.changes.model import Change, ChangeStatus

TYPE_NAMES = {
    "vpc": "专有网络 VPC",
    "vswitch": "交换机 vSwitch",
    "ecs.security_group": "安全组",
    "ecs.instance": "ECS 实例",
    "ram.user": "RAM 用户",
}
NOTICE_BYTES = 2048
"""The most a work notification's msg may take, as JSON in UTF-8."""
COMMENT_LENGTH = 1024


def type_name(change_type: str) -> str:
    """``ECS 实例 (ecs.instance)``: the kind of resource, then the type as the API names it."""
    name = TYPE_NAMES.get(change_type)
    return f"{name} ({change_type})" if name else change_type


def form_values(
    change: Change, form: ApprovalForm, region: str, requester: str, cost: str
) -> list[tuple[str, str]]:
    """The approval form's values, by component label, for ``change``."""
    values = {
        "change": change.public_id,
        "type": type_name(change.type),
        "region": region,
        "spec": spec_lines(change.spec),
        "count": _count(change),
        "cost": cost,
        "requester": requester,
    }
    return [(label, values[source]) for label, source in form.fields]


def spec_lines(spec: dict[str, Any]) -> str:
    """The spec, one ``name: value`` a line, leaving out what is unset."""
    return "\n".join(
        f"{name}: {_shown(value)}" for name, value in spec.items() if value is not None
    )


def comment(change: Change) -> str:
    """The outcome, as a comment on the approval instance."""
    return _cut("\n".join(_outcome(change)), COMMENT_LENGTH)


def notice(change: Change) -> dict[str, Any]:
    """The outcome, as a work notification (a markdown msg) to the employee who asked."""
    title = _title(change)
    lines = [f"### {title}", *(f"- {line}" for line in _outcome(change)[1:])]
    return _markdown(title, "  \n".join(lines))


def _markdown(title: str, text: str) -> dict[str, Any]:
    """A markdown msg, its text cut to fit DingTalk's 2048 bytes (of UTF-8 JSON)."""
    while len(_msg(title, text)) > NOTICE_BYTES:
        text = text[: len(text) * 9 // 10] + "…"
    return {"msgtype": "markdown", "markdown": {"title": title, "text": text}}


def refusal_comment(problems: list[str]) -> str:
    """Why an agreed request was not run: each value that is wrong, and why."""
    lines = ["dingpass：表单中的值不能构成有效的变更，未创建任何资源。", *problems]
    lines.append("请修改后重新发起申请。")
    return _cut("\n".join(lines), COMMENT_LENGTH)


def refusal_notice(instance_id: str, problems: list[str]) -> dict[str, Any]:
    """The same, as a work notification; the instance named, since DingTalk drops a second
    message of the same content to the same person within a day."""
    title = "云资源申请未执行"
    lines = [f"### {title}", f"审批实例 {instance_id}：表单中的值不能构成有效的变更：", *problems]
    return _markdown(title, "  \n".join(lines))


def _outcome(change: Change) -> list[str]:
    head = f"dingpass：变更 {change.public_id}（{type_name(change.type)}）{_verdict(change)}"
    made = [_resource(step.type, step.resource_id, step.results) for step in change.steps]
    lines = [head, *(line for line in made if line)]
    if change.status == ChangeStatus.FAILED:
        lines.append(f"原因：{change.error}")
        if any(made):
            lines.append(f"已创建的资源可用 dingpass changes cleanup {change.public_id} 删除。")
    return lines


def _verdict(change: Change) -> str:
    return {
        ChangeStatus.SUCCEEDED: "已完成。",
        ChangeStatus.FAILED: "失败。",
        ChangeStatus.REFUSED: "被拒绝，未创建任何资源。",
        ChangeStatus.CANCELLED: "已撤销，未创建任何资源。",
    }.get(change.status, f"状态：{change.status}。")


def _title(change: Change) -> str:
    return f"云资源变更{_verdict(change).rstrip('。').split('，')[0]}：{change.public_id}"


def _resource(step_type: str, resource_id: str | None, results: dict[str, Any] | None) -> str:
    if resource_id is None:
        return ""
    extra = ""
    if results and results.get("private_ip"):
        extra = f"（私网 IP {results['private_ip']}）"
    return f"{TYPE_NAMES.get(step_type, step_type)}：{resource_id}{extra}"


def _count(change: Change) -> str:
    names = "、".join(TYPE_NAMES.get(step.type, step.type) for step in change.steps)
    return f"{len(change.steps)} 个资源：{names}"


def _shown(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else str(value)


def _msg(title: str, text: str) -> bytes:
    body = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    return json.dumps(body, ensure_ascii=False).encode()


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
