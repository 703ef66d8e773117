"""What reminders about a license say: the licensee, the end date and the renewal link."""

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from backend.services import Services
from backend.storage.applications import Application


def product_names(services: Services, application: Application) -> dict[str, str]:
    """The product's name per language, or its code where the catalogue has it no more."""
    product = services.catalogue.get(application.product)
    return (
        dict(product.names) if product else {"zh": application.product, "en": application.product}
    )


def renewal_url(services: Services, application: Application, license_id: str) -> str:
    """The apply page, filled in from the license's application, to ask for its renewal."""
    query = {
        "product": application.product,
        "version": application.product_version,
        "feature": application.feature_code,
        "renew": license_id,
        "company": application.company,
        "contact": application.contact,
        "email": application.email,
        "phone": application.phone,
        "quantity": str(application.quantity),
        "validity": application.validity,
    }
    return f"{services.robots.public_base_url}/apply?{urlencode(query)}"


def expiry_facts(
    services: Services,
    application: Application,
    license_id: str,
    valid_until: datetime,
    days: int,
) -> dict[str, Any]:
    """What the reminder mail and the vendor's robot are told of a license about to end."""
    names = product_names(services, application)
    language = "en" if application.language == "en" else "zh"
    return {
        "license_id": license_id,
        "number": application.number,
        "company": application.company,
        "contact": application.contact,
        "email": application.email,
        "quantity": application.quantity,
        "product_name": names.get(language, application.product),
        "product_names": names,
        "expires": valid_until.date().isoformat(),
        "days": days,
        "renewal_url": renewal_url(services, application, license_id),
        "status_url": f"{services.robots.public_base_url}/status/{application.token}",
    }
