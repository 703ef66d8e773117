"""Opening a DingTalk approval instance for a stored application: submitted -> pending.

DingTalk has no idempotency key, so one instance per application rests on the record of
each start: it is written before the start is sent, cleared when DingTalk answers no, and
kept when the answer never came (a start in doubt). Before starting again, an application
with a start in doubt searches DingTalk for the instance that start may have opened; the
application number in the form is how it is recognised.
"""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from backend.applications.status import ApplicationStatus
from backend.approvals.dispatcher import apply_held, link, release_held
from backend.approvals.form import ProcessSettings, form_values
from backend.approvals.outcomes import Outcome
from backend.catalogue import Catalogue
from backend.dingtalk.client import DingTalkClient
from backend.exceptions import DingTalkError, DingTalkUnavailable
from backend.storage import searched_instances
from backend.storage.applications import (
    Application,
    by_id,
    by_instance,
    by_number,
    mark_requested,
    unmark_requested,
)
from backend.storage.database import Database

log = logging.getLogger(__name__)
SETTLE = timedelta(seconds=30)
"""How long a start in doubt is left before searching: DingTalk may still be working on it."""
SEARCH_AROUND = timedelta(minutes=1)
"""How far around the start in doubt to search: the clocks of DingTalk and ours may differ."""


class StartInDoubt(Exception):
    """A start was sent too recently to tell whether it opened an instance: try again later."""


class InstanceOpener:
    """Starts approval instances; a failure leaves the application submitted, to retry."""

    def __init__(
        self,
        database: Database,
        client: DingTalkClient,
        settings: ProcessSettings,
        catalogue: Catalogue,
        clock: Callable[[], datetime],
    ) -> None:
        self.database, self.client, self.settings = database, client, settings
        self.catalogue, self.clock = catalogue, clock

    def open(self, application_id: int) -> str | None:
        """Open the instance of one application; its id, or None if it stays for a retry."""
        with self.database.transaction() as connection:
            application = by_id(connection, application_id)
        if application is None or application.status is not ApplicationStatus.SUBMITTED:
            return None
        try:
            instance_id = self._earlier(application) or self._start(application)
        except (DingTalkError, StartInDoubt) as err:
            log.warning("approval for %s not opened, will retry: %s", application.number, err)
            return None
        with self.database.transaction() as connection:
            if not link(connection, application_id, instance_id, self.clock()):
                return self._linked_meanwhile(connection, application, instance_id)
        log.info("approval %s opened for %s", instance_id, application.number)
        return instance_id

    def _linked_meanwhile(
        self, connection: Connection, application: Application, instance_id: str
    ) -> str | None:
        """The application moved on while its instance was opened: by this very instance (its
        start event, adopted first), or, against every precaution, by another."""
        now = by_id(connection, application.id)
        if now is not None and now.instance_id == instance_id:
            return instance_id
        log.error(
            "approval %s for %s is a second instance (the application has %s): withdraw %s in "
            "DingTalk",
            instance_id,
            application.number,
            now.instance_id if now else None,
            instance_id,
        )
        return None

    def _start(self, application: Application) -> str:
        with self.database.transaction() as connection:
            at, before = self.clock(), application.instance_requested_at
            if not mark_requested(connection, application.id, at, before):
                raise StartInDoubt("another runner is starting this instance")
        try:
            return self.client.start_instance(
                self.settings.process_code,
                self.settings.originator,
                self.settings.dept_id,
                form_values(application, self.settings, self.catalogue),
            )
        except (DingTalkError, DBAPIError) as err:
            # Only a start sent without an answer is in doubt: DingTalk said no, or the start
            # never left (no token, the database away while getting one), and it may go again.
            if not (isinstance(err, DingTalkUnavailable) and err.in_doubt):
                with self.database.transaction() as connection:
                    unmark_requested(connection, application.id, at)
            raise

    def _earlier(self, application: Application) -> str | None:
        """The instance a start in doubt opened, if any; StartInDoubt while it may still come."""
        requested = application.instance_requested_at
        if requested is None:
            return None
        if requested > self.clock() - SETTLE:
            raise StartInDoubt(f"the start sent at {requested:%H:%M:%S} has no answer yet")
        found = self.find(
            application.number, requested - SEARCH_AROUND, requested + SETTLE + SEARCH_AROUND
        )
        if found is not None:
            log.info("approval %s for %s was opened before; adopting it", found, application.number)
        return found

    def adopt(self, instance_id: str) -> None:
        """Link an instance whose events came before any application knew it, if it is ours.

        Ours means started as our originator, with one of our application numbers in its form:
        anyone in the company can start an instance and type a number into it.
        """
        # Both looks in Database.run: the start's answer or another runner may act on this
        # instance meanwhile, which MariaDB under snapshot isolation answers with 1020; looking
        # again then sees what they did.
        if self.database.run(partial(self._linked, instance_id)):
            return
        state = self.client.get_instance(instance_id)
        label = self.settings.number_label
        ours = state.originator == self.settings.originator and label is not None
        number = state.form.get(label or "") if ours else None
        self.database.run(partial(self._adopt, instance_id, number))

    def _linked(self, instance_id: str, connection: Connection) -> bool:
        """Whether an application has the instance already; its held events applied if so."""
        if by_instance(connection, instance_id) is None:
            return False
        apply_held(connection, instance_id, self.clock())
        return True

    def _adopt(self, instance_id: str, number: str | None, connection: Connection) -> None:
        """Link the instance and apply its events; a second instance's are left for a person.
        Logged once written: a write may yet fail with 1020, and the whole runs again."""
        application = by_number(connection, number) if number else None
        if application is None:
            release_held(connection, instance_id, Outcome.NOT_OURS)
            log.info("approval %s is not one of ours: its events are let go", instance_id)
            return
        if link(connection, application.id, instance_id, self.clock()):
            log.info("approval %s adopted by %s from its event", instance_id, application.number)
            return
        now = by_id(connection, application.id, lock=True)  # the snapshot predates the link
        if now is not None and now.instance_id == instance_id:  # by its start's answer
            apply_held(connection, instance_id, self.clock())
            return
        release_held(connection, instance_id, Outcome.DUPLICATE_INSTANCE)
        log.warning(
            "approval %s carries %s's number, which %s: its events are left for a person to look "
            "at",
            instance_id,
            application.number,
            _why_not(now),
        )

    def find(self, number: str, since: datetime, until: datetime) -> str | None:
        """The instance started as us between ``since`` and ``until`` that carries ``number``."""
        label = self.settings.number_label
        if label is None:
            log.warning("DINGTALK_FORM_FIELDS has no number: an earlier start cannot be found")
            return None
        code, originator = self.settings.process_code, self.settings.originator
        return find_started(self.client, code, originator, (label, number), (since, until))


def _why_not(application: Application | None) -> str:
    """Why an application could not take an instance: as a person reading the log needs it."""
    if application is None or application.instance_id is None:
        return f"is {application.status.value if application else 'gone'} without one"
    return f"has its own {application.instance_id}"


def find_started(
    client: DingTalkClient,
    process_code: str,
    originator: str,
    carrying: tuple[str, str],
    window: tuple[datetime, datetime],
) -> str | None:
    """The instance of ``process_code`` started as ``originator`` within ``window`` whose
    component ``carrying[0]`` holds ``carrying[1]``: what a start in doubt opened, if any.

    Instances already linked are passed over, and what is read of the others is kept, so a
    search that is cut short (DingTalk limiting it, say) and run again reads no instance twice.
    """
    label, value = carrying
    ids = client.instance_ids(process_code, window[0], originator, window[1])
    with client.database.transaction() as connection:
        passed_over = searched_instances.linked(connection, ids)
        known = searched_instances.forms(connection, ids)
    for instance_id in ids:
        if instance_id in passed_over:
            continue
        form = known.get(instance_id)
        if form is None:
            form = client.get_instance(instance_id).form
            # Searches run side by side: MySQL may pick this one as a deadlock victim.
            now = client.clock()
            keep = partial(searched_instances.remember, instance_id=instance_id, form=form, now=now)
            client.database.run(keep)
        if form.get(label) == value:
            return instance_id
    return None
