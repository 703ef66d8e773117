"""The one shape every approval event takes inside dingpass, whatever brought it."""

import json
from dataclasses import dataclass, field
from typing import Any

INSTANCE_CHANGE = "bpms_instance_change"


@dataclass(frozen=True)
class ApprovalEvent:
    """A change of a DingTalk approval instance: started, finished (agree/refuse), terminated."""

    instance_id: str
    kind: str  # start | finish | terminate | anything DingTalk adds later
    result: str | None  # agree | refuse, with finish
    transport: str  # http | stream | reconcile
    payload: dict[str, Any] = field(default_factory=dict, compare=False)

    def payload_json(self) -> str:
        """The raw business fields, kept for the record."""
        return json.dumps(self.payload, ensure_ascii=False, sort_keys=True)


def from_fields(fields: dict[str, Any], transport: str) -> ApprovalEvent | None:
    """The event in an instance-change payload (HTTP plaintext or Stream data), else None."""
    instance_id, kind = fields.get("processInstanceId"), fields.get("type")
    if not isinstance(instance_id, str) or not instance_id or not isinstance(kind, str):
        return None
    result = fields.get("result")
    return ApprovalEvent(
        instance_id,
        kind,
        result if isinstance(result, str) else None,
        transport,
        fields,
    )
