"""open_instance: open an application's DingTalk approval (at intake, and as a retry)."""

from backend.fulfillment.context import Fulfillment
from backend.jobs.model import Done, Job
from backend.storage.applications import by_id


class NotOpenedYet(Exception):
    """DingTalk did not open the instance this time; the job is retried."""


def open_instance(ctx: Fulfillment, job: Job) -> Done:
    """Open the instance, or find the application already past this step."""
    if ctx.opener is None:
        raise NotOpenedYet("DingTalk is not configured; see `dingpass config check`")
    if ctx.opener.open(job.application_id):
        return Done()
    with ctx.database.transaction() as connection:
        application = by_id(connection, job.application_id)
    if application is None or application["status"] != "submitted":
        return Done()
    raise NotOpenedYet("DingTalk did not open the approval; the reason is logged above")
