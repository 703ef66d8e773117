"""The one shape every approval event takes inside dingpass, whatever brought it."""

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

INSTANCE_CHANGE = "bpms_instance_change"
FIELD_WIDTHS = {"processInstanceId": 64, "type": 16, "result": 16}
"""Characters each field may have: the approval_events columns instance_id, event_type, result."""


@dataclass(frozen=True)
class ApprovalEvent:
    """A change of a DingTalk approval instance: started, finished (agree/refuse), terminated."""

    instance_id: str
    kind: str  # start | finish | terminate | anything DingTalk adds later
    result: str | None  # agree | refuse, with finish
    transport: str  # http | stream | reconcile
    payload: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def process_code(self) -> str | None:
        """The approval form the instance belongs to, when the event says (pushes do)."""
        code = self.payload.get("processCode")
        return code if isinstance(code, str) else None

    @property
    def finished_at(self) -> datetime | None:
        """When the approver decided, when the event says (finishTime, in milliseconds)."""
        moment = self.payload.get("finishTime")
        if not isinstance(moment, int) or isinstance(moment, bool) or moment <= 0:
            return None
        try:
            return datetime.fromtimestamp(moment / 1000, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None

    def payload_json(self) -> str:
        """The raw business fields, kept for the record."""
        text = json.dumps(self.payload, ensure_ascii=False, sort_keys=True)
        if _encodable(text):
            return text
        # JSON may carry a lone surrogate (\ud800), which no UTF-8 column stores; escaped, it is
        # kept as it came.
        return json.dumps(self.payload, sort_keys=True)


def unusable(fields: dict[str, Any]) -> str | None:
    """Why an instance-change payload cannot be recorded as an event, or None if it can."""
    instance_id, kind = fields.get("processInstanceId"), fields.get("type")
    if not isinstance(instance_id, str) or not instance_id or not isinstance(kind, str):
        return "bpms_instance_change without processInstanceId or type"
    for name, width in FIELD_WIDTHS.items():
        value = fields.get(name)
        if isinstance(value, str) and len(value) > width:
            return f"{name} is {len(value)} characters; at most {width} can be recorded"
        if isinstance(value, str) and not value.isprintable():
            return f"{name} {value[:40]!r} has control characters or is not valid Unicode"
    return None


def from_fields(fields: dict[str, Any], transport: str) -> ApprovalEvent | None:
    """The event in an instance-change payload (HTTP plaintext or Stream data), else None."""
    if unusable(fields) is not None:
        return None
    instance_id, kind, result = fields["processInstanceId"], fields["type"], fields.get("result")
    return ApprovalEvent(
        instance_id,
        kind,
        result if isinstance(result, str) else None,
        transport,
        fields,
    )


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
