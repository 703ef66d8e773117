"""The fulfillment runner, built from the configuration for every entry point alike."""

from collections.abc import Callable
from datetime import datetime
from functools import partial

from backend import license_keys
from backend.approvals.opener import InstanceOpener
from backend.catalogue import Catalogue
from backend.config import Config
from backend.fulfillment.context import Fulfillment
from backend.fulfillment.instances import open_instance
from backend.fulfillment.licenses import issue_license
from backend.fulfillment.mails import send_license_mail, send_refusal_mail
from backend.jobs.model import Retry
from backend.jobs.runner import Handler, Runner
from backend.mail.smtp import SmtpSender
from backend.storage.database import Database


def handlers(ctx: Fulfillment) -> dict[str, Handler]:
    """Each job kind and the function that does it."""
    return {
        "open_instance": partial(open_instance, ctx),
        "issue_license": partial(issue_license, ctx),
        "send_license_mail": partial(send_license_mail, ctx),
        "send_refusal_mail": partial(send_refusal_mail, ctx),
    }


def runner(
    config: Config,
    database: Database,
    catalogue: Catalogue,
    opener: InstanceOpener | None,
    clock: Callable[[], datetime],
    kick: Callable[[], None] = lambda: None,
) -> Runner:
    """A runner of every fulfillment job."""
    helo = config.mail_from.rsplit("@", 1)[-1].strip(" >") or "localhost"
    sender = SmtpSender(
        config.smtp_host,
        config.smtp_port,
        config.smtp_security,
        config.smtp_user,
        config.smtp_password,
        helo,
        config.smtp_ca_file,
    )
    ctx = Fulfillment(
        database,
        catalogue,
        lambda: license_keys.issuer(config),
        sender,
        config.mail_from,
        opener,
        clock,
        kick,
    )
    return Runner(database, handlers(ctx), clock, retry=Retry(max_attempts=config.job_attempts))


def standalone_runner(config: Config, clock: Callable[[], datetime]) -> Runner:
    """A runner with its own connection pool, catalogue and DingTalk opener: the runner function,
    `dingpass runner` and `dingpass dev` each run one."""
    from backend.approvals.wiring import instance_opener
    from backend.catalogue import load_catalogue

    database = Database(config.database)
    catalogue = load_catalogue(config.catalogue_file)
    return runner(
        config,
        database,
        catalogue,
        instance_opener(config, database, catalogue, clock),
        clock,
    )
