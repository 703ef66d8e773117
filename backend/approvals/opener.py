"""Opening a DingTalk approval instance for a stored application: submitted -> pending."""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.applications.status import ApplicationStatus
from backend.catalogue import Catalogue
from backend.dingtalk.client import DingTalkClient
from backend.exceptions import DingTalkError
from backend.storage.applications import Application, by_id, mark_pending
from backend.storage.database import Database

log = logging.getLogger(__name__)
SETTLE = timedelta(seconds=10)
"""Longer than the DingTalk client waits for an answer (connect + read timeouts)."""
VALIDITY_NAMES = {
    "30d": "30 天",
    "90d": "90 天",
    "180d": "180 天",
    "1y": "1 年",
    "2y": "2 年",
    "3y": "3 年",
    "perpetual": "永久",
}


@dataclass(frozen=True)
class ProcessSettings:
    """Which approval form to fill, as whom, and which component shows which field."""

    process_code: str
    originator: str
    dept_id: int | None
    fields: tuple[tuple[str, str], ...]
    public_base_url: str


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
            instance_id = self._already_opened(application) or self.client.start_instance(
                self.settings.process_code,
                self.settings.originator,
                self.settings.dept_id,
                self.form(application),
            )
        except DingTalkError as err:
            log.warning("approval for %s not opened, will retry: %s", application.number, err)
            return None
        with self.database.transaction() as connection:
            mark_pending(connection, application_id, instance_id, self.clock())
        log.info("approval %s opened for %s", instance_id, application.number)
        return instance_id

    def _already_opened(self, application: Application) -> str | None:
        """An instance an earlier attempt opened though its answer never came back, if any.

        Only an attempt made at least SETTLE ago can have reached DingTalk unanswered (the
        client gives up sooner), so a first attempt does not search. DingTalk has no
        idempotency key: the application number in the form is how its instance is known.
        """
        if application.created_at > self.clock() - SETTLE:
            return None
        label = next((name for name, source in self.settings.fields if source == "number"), None)
        if label is None:
            log.warning(
                "DINGTALK_FORM_FIELDS has no number: a retry cannot tell an instance opened before"
            )
            return None
        since = application.created_at - SETTLE
        for instance_id in self.client.instance_ids(self.settings.process_code, since):
            if self.client.get_instance(instance_id).form.get(label) == application.number:
                log.info(
                    "approval %s for %s was opened before; adopting it",
                    instance_id,
                    application.number,
                )
                return instance_id
        return None

    def form(self, application: Application) -> list[tuple[str, str]]:
        """The form values, by component name, for an application."""
        return [(name, self._value(application, source)) for name, source in self.settings.fields]

    def _value(self, application: Application, source: str) -> str:
        if source == "product":
            product = self.catalogue.get(application.product)
            return f"{product.names['zh']} ({product.code})" if product else application.product
        if source == "validity":
            return VALIDITY_NAMES.get(application.validity, application.validity)
        if source == "status_url":
            return f"{self.settings.public_base_url}/status/{application.token}"
        # The other sources (config.FORM_SOURCES) are the application's fields by name.
        return str(getattr(application, source) or "-")
