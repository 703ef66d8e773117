"""Recovering lost approval events: a lost event delays a result but never loses it."""

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection

from backend.approvals.dispatcher import (
    Dispatcher,
    Outcome,
    apply_held,
    ask_whose,
    decided,
    held_instances,
)
from backend.approvals.events import ApprovalEvent, from_fields
from backend.dingtalk.client import DingTalkClient, InstanceState
from backend.exceptions import DingTalkError
from backend.storage.applications import by_instance, pending_since
from backend.storage.changes import awaiting_approval
from backend.storage.database import Database

log = logging.getLogger(__name__)
MAX_FAILED_BATCHES = 50  # 200 events each; the rest waits for the next run
DECIDED = ["COMPLETED", "TERMINATED"]
REQUEST_LOOKBACK = timedelta(days=7)
"""How far back the employees' request forms are searched for agreed instances not taken."""


@dataclass
class Report:
    """What one reconciliation did."""

    checked: int = 0
    recovered: list[str] = field(default_factory=list)
    drained: int = 0
    errors: list[str] = field(default_factory=list)


class Reconciler:
    """Asks DingTalk about approvals pending too long and drains its failed-callback list."""

    def __init__(
        self,
        database: Database,
        client: DingTalkClient,
        dispatcher: Dispatcher,
        after: timedelta,
        clock: Callable[[], datetime],
        request_forms: Collection[str] = (),
    ) -> None:
        self.database, self.client, self.dispatcher = database, client, dispatcher
        self.after, self.clock = after, clock
        self.request_forms = tuple(request_forms)

    def run(self) -> Report:
        """One pass: failed pushes first (they are cleared once read), then stale instances."""
        report = Report()
        self._drain(report)
        self._reapply(report)
        with self.database.transaction() as connection:
            before = self.clock() - self.after
            stale = pending_since(connection, before) + awaiting_approval(connection, before)
        for instance_id in stale:
            report.checked += 1
            self._check(instance_id, report)
        for process_code in self.request_forms:
            self._requests(process_code, report)
        return report

    def _requests(self, process_code: str, report: Report) -> None:
        """Find employees' requests decided while their events were lost.

        Nothing tells dingpass of an instance it did not open but its events: the form's
        recent instances are listed, and those not known to be decided are read.
        """
        try:
            since = self.clock() - REQUEST_LOOKBACK
            listed = self.client.instance_ids(
                process_code, since, None, self.clock() - self.after, DECIDED
            )
        except DingTalkError as err:
            report.errors.append(f"{process_code}: {err}")
            return
        with self.database.transaction() as connection:
            known = decided(connection, listed)
        for instance_id in listed:
            if instance_id not in known:
                report.checked += 1
                self._check(instance_id, report, process_code)

    def _reapply(self, report: Report) -> None:
        """Apply decisions recorded but never acted on; ask again whose the others are."""
        # Database.run: the pass lists the held instances before it takes their events, and an
        # adopt job taking one meanwhile fails it under MariaDB's snapshot isolation (1020).
        report.recovered.extend(self.database.run(self._apply_held))

    def _apply_held(self, connection: Connection) -> list[str]:
        now, applied = self.clock(), []
        for instance_id in held_instances(connection):
            if apply_held(connection, instance_id, now):
                applied.append(instance_id)
            elif by_instance(connection, instance_id) is None:
                ask_whose(connection, instance_id, now)
        return applied

    def _drain(self, report: Report) -> None:
        for _ in range(MAX_FAILED_BATCHES):
            try:
                events, more = self.client.failed_callbacks()
            except DingTalkError as err:
                report.errors.append(str(err))
                return
            for fields in events:
                event = from_fields(fields, "reconcile")
                if event is not None:
                    report.drained += 1
                    self._dispatch(event, report)
            if not more:
                return

    def _check(self, instance_id: str, report: Report, process_code: str | None = None) -> None:
        try:
            state = self.client.get_instance(instance_id)
        except DingTalkError as err:
            report.errors.append(f"{instance_id}: {err}")
            return
        event = _as_event(state, process_code)
        if event is not None:
            self._dispatch(event, report)

    def _dispatch(self, event: ApprovalEvent, report: Report) -> None:
        if self.dispatcher.dispatch(event) in (Outcome.MOVED, Outcome.REQUESTED):
            report.recovered.append(event.instance_id)
            log.info(
                "reconciler recovered %s: %s/%s",
                event.instance_id,
                event.kind,
                event.result,
            )


def _as_event(state: InstanceState, process_code: str | None = None) -> ApprovalEvent | None:
    """The event DingTalk would have pushed for an instance's state (GetProcessInstance
    names no form: the caller says which one it listed it from)."""
    payload = {"processCode": process_code} if process_code else {}
    if state.status == "COMPLETED":
        return ApprovalEvent(state.instance_id, "finish", state.result, "reconcile", payload)
    if state.status == "TERMINATED":
        return ApprovalEvent(state.instance_id, "terminate", None, "reconcile", payload)
    return None
