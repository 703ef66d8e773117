"""The jobs between changes and DingTalk: open a change's approval, take an employee's
request, and tell DingTalk how a change ended (a comment, a work notification)."""

import logging
from datetime import datetime, timedelta

from sqlalchemy import Connection

from backend.approvals import change_decisions
from backend.changes import costs, dingtalk_requests, outcome, summary
from backend.changes.approval import ChangeApprovals
from backend.changes.model import Change, ChangeStatus
from backend.changes.names import COMMENT_KIND, NOTICE_KIND, OPEN_APPROVAL_KIND, TAKE_REQUEST_KIND
from backend.changes.service import Changes
from backend.changes.types import change_types
from backend.jobs.model import OUTAGE_RETRY, Done, Job, Retry
from backend.jobs.registry import Registry
from backend.services import Services
from backend.storage import changes as store
from backend.subjects import SubjectType

log = logging.getLogger(__name__)
kinds: Registry[Services] = Registry()
WORD_RETRY = Retry(
    max_attempts=None,
    first=timedelta(seconds=10),
    cap=timedelta(minutes=10),
    horizon=timedelta(days=1),
)
"""Telling DingTalk: throttled or down, it is tried again for a day."""


class NotConfigured(Exception):
    """DingTalk is not configured in this runner: the job waits for it."""


class NotOpenedYet(Exception):
    """DingTalk did not open the approval this time; the job is retried."""


@kinds.kind(OPEN_APPROVAL_KIND, retry=OUTAGE_RETRY)
def open_change_approval(services: Services, job: Job) -> Done:
    """Open the DingTalk approval a change waits for (or find it opened before)."""
    approvals = _approvals(services)
    change_id = _change_id(job)
    approvals.open(change_id, lambda change: costs.monthly_cost(services.changes, change))
    with services.database.transaction() as connection:
        change = store.by_id(connection, change_id)
    waiting = change.status == ChangeStatus.AWAITING_APPROVAL
    if waiting and (change.approval is None or change.approval.instance_id is None):
        raise NotOpenedYet("DingTalk did not open the approval; the reason is logged above")
    return Done()


@kinds.kind(TAKE_REQUEST_KIND, retry=OUTAGE_RETRY)
def take_change_request(services: Services, job: Job) -> Done:
    """Make the change an employee's agreed request asks for."""
    _approvals(services)
    if services.changes is None:
        raise NotConfigured("resource changes are not set up in this runner (no plugins)")
    plugins = services.changes.plugins
    changes = Changes(services.database, change_types(plugins), plugins, services.clock)
    instance_id, form = str(job.payload["instance_id"]), str(job.payload["process_code"])
    what = dingtalk_requests.take(services, changes, instance_id, form)
    log.info("request %s (form %s): %s", instance_id, form, what)
    return Done()


@kinds.kind(COMMENT_KIND, retry=WORD_RETRY)
def comment(services: Services, job: Job) -> Done:
    """Comment on the approval instance: the change's outcome, or why nothing was run."""
    approvals = _approvals(services)
    text = str(job.payload.get("text") or summary.comment(_change(services, job)))
    instance_id, user = str(job.payload["instance_id"]), approvals.settings.originator
    if job.attempts > 1 and _commented(approvals, instance_id, user, text):
        return Done()  # an earlier try's answer was lost, not its comment
    approvals.client.add_comment(instance_id, text, user)
    return Done()


def _commented(approvals: ChangeApprovals, instance_id: str, user: str, text: str) -> bool:
    """Whether the comment is on the instance already: DingTalk has no idempotency key."""
    remarks = approvals.client.get_instance(instance_id).remarks
    return (user, text[: summary.COMMENT_LENGTH]) in remarks


@kinds.kind(NOTICE_KIND, retry=WORD_RETRY)
def work_notice(services: Services, job: Job) -> Done:
    """A work notification to the employee who asked: the outcome, or why nothing was run."""
    approvals = _approvals(services)
    agent_id = approvals.settings.agent_id
    if agent_id is None:
        log.info("no work notification to %s: DINGTALK_AGENT_ID is not set", job.payload["user_id"])
        return Done()
    message = job.payload.get("msg") or summary.notice(_change(services, job))
    approvals.client.send_work_notification(agent_id, str(job.payload["user_id"]), message)
    return Done()


def on_open_failed(connection: Connection, job: Job, error: str, now: datetime) -> None:
    """The approval could not be opened for a day: the change fails, and its caller is told,
    rather than waiting for an approver no one asked. Runs in the transaction that marks
    the job failed (the runner's failure hook)."""
    if job.kind != OPEN_APPROVAL_KIND or job.subject is None:
        return
    change = store.by_id(connection, _change_id(job))
    reason = f"its approval could not be opened in DingTalk: {error}"
    if change.approval is not None and change.approval.requested_at is not None:
        reason += (
            f"; a start sent at {change.approval.requested_at:%Y-%m-%d %H:%M} UTC got no answer: "
            f"if DingTalk shows an instance carrying {change.public_id}, withdraw it"
        )
    failed = store.set_change(
        connection,
        change.id,
        now,
        only_if=(ChangeStatus.AWAITING_APPROVAL,),
        status=ChangeStatus.FAILED,
        error=reason,
        finished_at=now,
    )
    if failed:
        change_decisions.cancel_steps(connection, change, now)
        outcome.ended(connection, change, ChangeStatus.FAILED, now)


def _approvals(services: Services) -> ChangeApprovals:
    if services.approvals is None:
        raise NotConfigured("DingTalk is not configured; see `dingpass config check`")
    return services.approvals


def _change(services: Services, job: Job) -> Change:
    with services.database.transaction() as connection:
        return store.by_id(connection, _change_id(job))


def _change_id(job: Job) -> int:
    if job.subject is None:
        raise ValueError(f"job {job.id} ({job.kind}) has no subject; it needs a change")
    return job.subject.number(SubjectType.CHANGE)
