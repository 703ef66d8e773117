"""An approval instance as GetProcessInstance shows it (dingtalk-results.md §3)."""

import time
from typing import Any

from sandbox.state import Instance, Record

ACTIVITY_ID = "sandbox-approve"
"""The one approval node of every sandbox form."""
AFLOW = "https://aflow.dingtalk.com/dingtalk"


def instance_result(instance: Instance) -> dict[str, Any]:
    """GetProcessInstance's ``result``; no processCode in it, as the doc says."""
    return {
        "title": instance.title(),
        "status": instance.status,
        "result": instance.result,
        "businessId": instance.id.split("-")[1],
        "originatorUserId": instance.originator,
        "originatorDeptId": str(instance.dept_id),
        "formComponentValues": [dict(value) for value in instance.form],
        "createTime": iso_minute(instance.created_ms),
        "finishTime": iso_minute(instance.finished_ms),
        "operationRecords": [_operation(record) for record in instance.records],
        "tasks": [_task(instance)],
    }


def _operation(record: Record) -> dict[str, Any]:
    """One ``operationRecords[]`` entry."""
    shown: dict[str, Any] = {
        "userId": record.user_id,
        "date": iso_minute(record.at_ms),
        "type": record.type,
        "result": record.result,
    }
    if record.type == "START_PROCESS_INSTANCE":
        shown["showName"] = "发起"
    if record.type == "EXECUTE_TASK_NORMAL":
        shown |= {"activityId": ACTIVITY_ID, "showName": "审批人"}
    if record.remark is not None:
        shown["remark"] = record.remark
    if record.images:
        shown["images"] = list(record.images)
    return shown


def _task(instance: Instance) -> dict[str, Any]:
    """The instance's one approval task, as ``tasks[]`` shows it."""
    status = {"RUNNING": "RUNNING", "COMPLETED": "COMPLETED"}.get(instance.status, "CANCELED")
    query = f"procInstId={instance.id}"
    return {
        "taskId": instance.task_id,
        "userId": instance.approver,
        "status": status,
        "result": instance.result.upper() if instance.status == "COMPLETED" else "NONE",
        "createTime": iso_minute(instance.created_ms),
        "finishTime": iso_minute(instance.finished_ms),
        "mobileUrl": f"{AFLOW}/mobile/homepage.htm#/approval?{query}",
        "pcUrl": f"{AFLOW}/pc/query/pchomepage.htm?{query}",
        "processInstanceId": instance.id,
        "activityId": ACTIVITY_ID,
    }


def iso_minute(milliseconds: int | None) -> str | None:
    """A time as DingTalk writes it: UTC, to the minute."""
    if milliseconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(milliseconds / 1000))
