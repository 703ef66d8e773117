"""What a change's end calls for: the caller's callback, and the word back to DingTalk.

Recorded as jobs in the transaction that ends the change, so that the news is sent even if
every runner dies the moment after; each job is one per change (its dedupe key).
"""

from datetime import datetime

from sqlalchemy import Connection

from backend.changes.model import Change, ChangeStatus
from backend.changes.names import CALLBACK_KIND, COMMENT_KIND, NOTICE_KIND
from backend.jobs import queue
from backend.subjects import Subject

RAN = (ChangeStatus.SUCCEEDED, ChangeStatus.FAILED)
"""Ends that made (or tried to make) something: the approval instance is told of them."""


def ended(connection: Connection, change: Change, status: ChangeStatus, now: datetime) -> None:
    """Record the news of ``change`` ending ``status``, in the transaction that ends it."""
    subject = Subject.change(change.id)
    if change.callback_url:
        queue.enqueue(connection, CALLBACK_KIND, subject, now)
    instance = change.approval.instance_id if change.approval else None
    if instance is not None and status in RAN:
        queue.enqueue(connection, COMMENT_KIND, subject, now, payload={"instance_id": instance})
    if change.origin == "dingtalk" and change.requester and status in RAN:
        queue.enqueue(connection, NOTICE_KIND, subject, now, payload={"user_id": change.requester})
