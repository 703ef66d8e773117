"""The project's work: every kind of job, and the runner that does them.

A new kind of work is a module with its own ``kinds`` registry, included here once;
the runner never changes for it.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection

from backend import license_keys
from backend.approvals import reconcile_job
from backend.approvals.opener import InstanceOpener
from backend.catalogue import Catalogue
from backend.changes import approval_jobs, callbacks
from backend.changes import steps as change_steps
from backend.changes.approval import ApprovalSettings, ChangeApprovals
from backend.changes.context import ChangeContext
from backend.checks import mails as reminder_mails
from backend.config import Config
from backend.fulfillment import instances, licenses, mails
from backend.jobs.model import Job, Retry
from backend.jobs.registry import Registry
from backend.jobs.runner import FailureHook, Runner
from backend.mail.smtp import SmtpSender
from backend.robots import jobs as robot_jobs
from backend.robots.clients import RobotClient
from backend.robots.context import RobotContext
from backend.services import Services
from backend.storage.database import Database

KIND_MODULES = (
    instances.kinds,
    licenses.kinds,
    mails.kinds,
    robot_jobs.kinds,
    reminder_mails.kinds,
    change_steps.kinds,
    approval_jobs.kinds,
    callbacks.kinds,
    reconcile_job.kinds,
)


def job_kinds() -> Registry[Services]:
    """A registry of every kind of job the project runs."""
    registry: Registry[Services] = Registry()
    for module_kinds in KIND_MODULES:
        registry.include(module_kinds)
    return registry


def services(
    config: Config,
    database: Database,
    catalogue: Catalogue,
    opener: InstanceOpener | None,
    clock: Callable[[], datetime],
    kick: Callable[[], None] = lambda: None,
) -> Services:
    """What the job handlers use, built from the configuration."""
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
    return Services(
        database,
        catalogue,
        lambda: license_keys.issuer(config),
        sender,
        config.mail_from,
        opener,
        clock,
        kick,
        robot_context(config, clock),
        change_context(config),
        change_approvals(config, database, opener, clock),
        config.callbacks_may_reach_private,
    )


def change_approvals(
    config: Config,
    database: Database,
    opener: InstanceOpener | None,
    clock: Callable[[], datetime],
) -> ChangeApprovals | None:
    """What changes approved in DingTalk use: DingTalk's client (the opener's), the forms,
    and as whom; None while DingTalk is not configured (changes then wait for it)."""
    if opener is None:
        return None
    settings = ApprovalSettings(
        config.dingtalk_originator_user_id or "",
        config.dingtalk_dept_id,
        config.cloud_region,
        config.dingtalk_agent_id,
    )
    return ChangeApprovals(database, opener.client, config.change_forms, settings, clock)


def robot_context(config: Config, clock: Callable[[], datetime]) -> RobotContext:
    """The configured robots and the client that posts to them."""
    client = RobotClient(clock) if config.robots else None
    return RobotContext(config.robots, client, config.public_base_url)


def change_context(config: Config) -> ChangeContext:
    """The resource plugins and the clients of the cloud they call (built on first use)."""
    from backend.cloud.clients import cloud_clients
    from backend.cloud.plugins import all_plugins

    return ChangeContext(all_plugins(), cloud_clients(config))


def runner(
    config: Config, context: Services, kinds: Registry[Services] | None = None
) -> Runner[Services]:
    """A runner of every kind of job (or of ``kinds``)."""
    return Runner(
        context.database,
        kinds or job_kinds(),
        context,
        context.clock,
        lease=timedelta(seconds=config.job_lease),
        retry=default_retry(config),
        on_failed=_all(
            change_steps.on_step_failed,
            approval_jobs.on_open_failed,
            robot_jobs.failed_job_notifier(context),
        ),
    )


def _all(*hooks: FailureHook) -> FailureHook:
    def hook(connection: Connection, job: Job, error: str, now: datetime) -> None:
        for each in hooks:
            each(connection, job, error, now)

    return hook


def default_retry(config: Config) -> Retry:
    """How kinds that declare no retry policy of their own are retried: JOB_ATTEMPTS runs."""
    return Retry(max_attempts=config.job_attempts)


def standalone_runner(config: Config, clock: Callable[[], datetime]) -> Runner[Services]:
    """A runner with its own connection pool, catalogue and DingTalk opener: the runner function,
    `dingpass runner` and `dingpass dev` each run one."""
    from backend.approvals.wiring import instance_opener
    from backend.catalogue import load_catalogue

    database = Database(config.database)
    catalogue = load_catalogue(config.catalogue_file)
    opener = instance_opener(config, database, catalogue, clock)
    return runner(config, services(config, database, catalogue, opener, clock))
