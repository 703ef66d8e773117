"""open_instance: open an application's DingTalk approval (at intake, and as a retry)."""

from backend.applications.status import ApplicationStatus
from backend.fulfillment.names import ADOPT_INSTANCE, OPEN_INSTANCE
from backend.jobs.model import OUTAGE_RETRY, Done, Job
from backend.jobs.registry import Registry
from backend.robots.events import RobotEvent
from backend.robots.notify import notify
from backend.services import Services
from backend.storage.applications import status_of
from backend.subjects import Subject, SubjectType

kinds: Registry[Services] = Registry()
AWAITING = RobotEvent.AWAITING_APPROVAL


class NotOpenedYet(Exception):
    """DingTalk did not open the instance this time; the job is retried."""


@kinds.kind(OPEN_INSTANCE, retry=OUTAGE_RETRY)
def open_instance(services: Services, job: Job) -> Done:
    """Open the instance, or find the application already past this step."""
    if services.opener is None:
        raise NotOpenedYet("DingTalk is not configured; see `dingpass config check`")
    application_id = application_of(job)
    services.opener.open(application_id)
    with services.database.transaction() as connection:
        status = status_of(connection, application_id)
        if status is ApplicationStatus.SUBMITTED:
            raise NotOpenedYet("DingTalk did not open the approval; the reason is logged above")
        # Opened (now, or by an earlier run that died before it was done): tell the robots,
        # once, before this job is done, so that the news is never lost between the two.
        about = Subject.application(application_id)
        told = notify(connection, services.robots.robots, AWAITING, about, services.clock())
    if told:  # wake a runner for the robots' jobs just recorded
        services.kick()
    return Done()


@kinds.kind(ADOPT_INSTANCE, retry=OUTAGE_RETRY)
def adopt_instance(services: Services, job: Job) -> Done:
    """Find out whether an instance DingTalk told us about is one of our applications'."""
    if services.opener is None:
        raise NotOpenedYet("DingTalk is not configured; see `dingpass config check`")
    instance_id, form = str(job.payload["instance_id"]), job.payload.get("process_code")
    approvals = services.approvals
    if approvals is not None and approvals.may_be_ours(form) and approvals.adopt(instance_id):
        return Done()  # a change's approval, whose start went unanswered
    services.opener.adopt(instance_id)
    return Done()


def application_of(job: Job) -> int:
    """The id of the application a job is about; ValueError for a job about anything else."""
    if job.subject is None:
        raise ValueError(f"job {job.id} ({job.kind}) has no subject; it needs an application")
    return job.subject.number(SubjectType.APPLICATION)
