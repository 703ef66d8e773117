"""Opening the DingTalk approval a change waits for: awaiting_approval, with its instance.

As for applications, DingTalk has no idempotency key: the start is marked before it is sent,
the mark cleared when DingTalk answers no, kept when no answer came (a start in doubt); a
change with a start in doubt searches DingTalk for the instance that start may have opened,
by the change id in its form, before starting again.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import Connection

from backend.approvals.dispatcher import apply_held, release_held
from backend.approvals.opener import SEARCH_AROUND, SETTLE, StartInDoubt, find_started
from backend.approvals.outcomes import Outcome
from backend.apps.store import by_id as app_by_id
from backend.changes.costs import UNSTATED
from backend.changes.forms import ApprovalForm, ChangeForms
from backend.changes.model import Change, ChangeStatus
from backend.changes.summary import form_values
from backend.dingtalk.client import DingTalkClient
from backend.exceptions import DingTalkUnavailable, RetryCannotHelp
from backend.storage import changes as store
from backend.storage.database import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ApprovalSettings:
    """As whom approvals are opened and comments written, and where the resources are made."""

    originator: str
    dept_id: int | None
    region: str
    agent_id: int | None = None  # the app's AgentId: work notifications need it


class ChangeApprovals:
    """Opens the approvals changes wait for; what the jobs of changes and DingTalk share."""

    def __init__(
        self,
        database: Database,
        client: DingTalkClient,
        forms: ChangeForms,
        settings: ApprovalSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self.database, self.client, self.forms = database, client, forms
        self.settings, self.clock = settings, clock

    def open(
        self, change_id: int, cost: Callable[[Change], str] = lambda _: UNSTATED
    ) -> str | None:
        """Open the change's approval (or find the one a start in doubt opened); its id, or
        None when the change no longer waits for one. ``cost``: its estimated monthly cost."""
        with self.database.transaction() as connection:
            change = store.by_id(connection, change_id)
            requester = _requester(connection, change)
        if change.status != ChangeStatus.AWAITING_APPROVAL or change.approval is None:
            return None
        if change.approval.instance_id is not None:
            return change.approval.instance_id
        form = self._form(change)
        instance_id = self._earlier(change, form) or self._start(change, form, requester, cost)
        with self.database.transaction() as connection:
            if store.link_instance(connection, change.id, instance_id):
                apply_held(connection, instance_id, self.clock())
                log.info("approval %s opened for change %s", instance_id, change.public_id)
                return instance_id
            linked = store.by_id(connection, change.id).approval
        if linked is not None and linked.instance_id != instance_id:
            log.error(
                "approval %s for change %s is a second instance (it has %s): withdraw %s in "
                "DingTalk",
                instance_id,
                change.public_id,
                linked.instance_id,
                instance_id,
            )
        return linked.instance_id if linked else None

    def may_be_ours(self, process_code: object) -> bool:
        """Whether an instance of form ``process_code`` (None: not known) may gate a change."""
        if process_code is None:
            return bool(self.forms.approvals)
        return self.forms.approval_form(str(process_code)) is not None

    def adopt(self, instance_id: str) -> bool:
        """Link an instance whose events came before its change knew it; whether it was a
        change's. Ours means started as our originator, on one of our approval forms, with
        the id of a change waiting on that form in it."""
        if not self.forms.approvals:
            return False
        state = self.client.get_instance(instance_id)
        if state.originator != self.settings.originator:
            return False
        for form in self.forms.approvals:
            public_id = state.form.get(form.change_label or "")
            if public_id and self._link_found(public_id, form, instance_id):
                return True
        return False

    def _link_found(self, public_id: str, form: ApprovalForm, instance_id: str) -> bool:
        # In Database.run: the start's answer may link this instance meanwhile, which MariaDB
        # under snapshot isolation answers with 1020 (a second look then finds it linked).
        return self.database.run(partial(self._link, public_id, form, instance_id))

    def _link(
        self, public_id: str, form: ApprovalForm, instance_id: str, connection: Connection
    ) -> bool:
        """Link the instance to the change it carries; a second instance's events are left for
        a person. Logged once written: a write may yet fail with 1020, and the whole runs again."""
        change = store.by_public_id(connection, public_id)
        approval = change.approval if change else None
        if change is None or approval is None or approval.process_code != form.process_code:
            return False
        if store.link_instance(connection, change.id, instance_id):
            apply_held(connection, instance_id, self.clock())
            log.info("approval %s adopted by change %s from its event", instance_id, public_id)
            return True
        linked = store.by_id(connection, change.id, lock=True).approval  # the snapshot's is old
        if linked is not None and linked.instance_id == instance_id:  # by its start's answer
            apply_held(connection, instance_id, self.clock())
            return True
        release_held(connection, instance_id, Outcome.DUPLICATE_INSTANCE)
        log.warning(
            "approval %s carries change %s, which has its own %s: its events are left for a "
            "person to look at",
            instance_id,
            public_id,
            linked.instance_id if linked else None,
        )
        return True

    def _form(self, change: Change) -> ApprovalForm:
        code = change.approval.process_code if change.approval else None
        form = self.forms.approval_form(code)
        if form is None:
            raise RetryCannotHelp(
                f"change {change.public_id} waits on form {code}, which CHANGE_FORMS_FILE no "
                "longer lists: put it back, or refuse the change"
            )
        return form

    def _start(
        self, change: Change, form: ApprovalForm, requester: str, cost: Callable[[Change], str]
    ) -> str:
        # The price first: a slow cloud must not stretch the time a start is marked sent.
        values = form_values(change, form, self.settings.region, requester, cost(change))
        approval, at = change.approval, self.clock()
        with self.database.transaction() as connection:
            before = approval.requested_at if approval else None
            if not store.mark_requested(connection, change.id, at, before):
                raise StartInDoubt("another runner is starting this approval")
        try:
            return self.client.start_instance(
                form.process_code, self.settings.originator, self.settings.dept_id, values
            )
        except DingTalkUnavailable as err:
            if not err.in_doubt:
                self._unmark(change, at)
            raise
        except Exception:
            self._unmark(change, at)  # DingTalk said no: nothing was opened
            raise

    def _unmark(self, change: Change, at: datetime) -> None:
        with self.database.transaction() as connection:
            store.unmark_requested(connection, change.id, at)

    def _earlier(self, change: Change, form: ApprovalForm) -> str | None:
        """The instance a start in doubt opened, if any; StartInDoubt while it may still come."""
        requested = change.approval.requested_at if change.approval else None
        if requested is None:
            return None
        if requested > self.clock() - SETTLE:
            raise StartInDoubt(f"the start sent at {requested:%H:%M:%S} has no answer yet")
        window = (requested - SEARCH_AROUND, requested + SETTLE + SEARCH_AROUND)
        carrying = (form.change_label or "", change.public_id)
        code, originator = form.process_code, self.settings.originator
        found = find_started(self.client, code, originator, carrying, window)
        if found is not None:
            log.info("approval %s for %s was opened before; adopting it", found, change.public_id)
        return found


def _requester(connection: Connection, change: Change) -> str:
    """Who asked, as the approver reads it: the calling system's name, or the employee."""
    if change.app_id is not None:
        return f"{app_by_id(connection, change.app_id).name}（API）"
    return change.requester or "-"
