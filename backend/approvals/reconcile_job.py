"""Reconciliation as a job: one pass every RECONCILE_AFTER seconds, whichever runner is up.

One job (one dedupe key) that parks itself between passes: on Function Compute no instance
lives long enough to keep a schedule in memory, and several runners must not all ask DingTalk
the same questions. The timer's checks record it once; it then re-arms itself for ever.
"""

import logging
from datetime import timedelta

from backend.approvals.dispatcher import dispatcher_of
from backend.approvals.reconciler import Reconciler
from backend.changes.forms import ChangeForms
from backend.jobs.model import Job, Retry, Wait
from backend.jobs.registry import Registry
from backend.services import Services

log = logging.getLogger(__name__)
RECONCILE_KIND = "reconcile"
kinds: Registry[Services] = Registry()
FOREVER = Retry(max_attempts=None, first=timedelta(minutes=1), cap=timedelta(minutes=10))
"""A pass that failed (the database away) is tried again; the job must never end."""


@kinds.kind(RECONCILE_KIND, retry=FOREVER)
def reconcile(services: Services, job: Job) -> Wait:
    """Ask DingTalk about what its lost events may have decided, then wait for the next pass."""
    every = timedelta(seconds=int(job.payload.get("every", 600)))
    reconciler = reconciler_of(services, every)
    if reconciler is None:
        return Wait({"skipped": "DingTalk is not configured"}, every)
    report = reconciler.run()
    if report.recovered or report.errors:
        log.info(
            "reconciled: %d checked, recovered %s, %d drained, errors: %s",
            report.checked,
            ", ".join(report.recovered) or "none",
            report.drained,
            "; ".join(report.errors) or "none",
        )
    return Wait({"checked": report.checked, "recovered": len(report.recovered)}, every)


def reconciler_of(services: Services, after: timedelta) -> Reconciler | None:
    """The reconciler of this runner's DingTalk and forms; None while DingTalk is unset."""
    opener = services.opener
    if opener is None:
        return None
    forms = services.approvals.forms if services.approvals else ChangeForms()
    license_form = opener.settings.process_code
    dispatcher = dispatcher_of(
        services.database, services.clock, services.kick, license_form, forms
    )
    requests = [form.process_code for form in forms.requests]
    return Reconciler(services.database, opener.client, dispatcher, after, services.clock, requests)
