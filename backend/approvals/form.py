"""What an approver reads: an application's values for the DingTalk form's components."""

from dataclasses import dataclass

from backend.catalogue import Catalogue
from backend.storage.applications import Application

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

    @property
    def number_label(self) -> str | None:
        """The component that carries the application number: how an instance is recognised."""
        return next((name for name, source in self.fields if source == "number"), None)


def form_values(
    application: Application, settings: ProcessSettings, catalogue: Catalogue
) -> list[tuple[str, str]]:
    """The form values, by component name, for an application."""
    return [
        (name, _value(application, source, settings, catalogue)) for name, source in settings.fields
    ]


def _value(
    application: Application, source: str, settings: ProcessSettings, catalogue: Catalogue
) -> str:
    if source == "product":
        product = catalogue.get(application.product)
        return f"{product.names['zh']} ({product.code})" if product else application.product
    if source == "validity":
        return VALIDITY_NAMES.get(application.validity, application.validity)
    if source == "status_url":
        return f"{settings.public_base_url}/status/{application.token}"
    # The other sources (config.FORM_SOURCES) are the application's fields by name.
    return str(getattr(application, source) or "-")
