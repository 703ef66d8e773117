"""`dingpass approvals retry` and `dingpass reconcile`: nothing is lost, nothing is made twice."""

from collections.abc import Callable
from datetime import datetime, timedelta

import click
from flask.cli import ScriptInfo
from sqlalchemy import Connection

from backend.approvals.dispatcher import dispatcher_for
from backend.approvals.reconciler import Reconciler
from backend.approvals.wiring import dingtalk_client, missing_dingtalk_settings
from backend.clock import utc_now
from backend.config import Config
from backend.exceptions import ConfigError
from backend.fulfillment.names import OPEN_INSTANCE
from backend.jobs import queue
from backend.storage.applications import waiting_for_instance
from backend.storage.database import Database
from backend.subjects import Subject
from backend.work import standalone_runner
from cli.context import pass_config


def command_clock() -> Callable[[], datetime]:
    """The clock a command runs on: the one its caller put in the context (a test sets the
    time that way), else the real one. One clock for everything a command does."""
    info = click.get_current_context().find_object(ScriptInfo)
    clock: Callable[[], datetime] = info.data.get("clock", utc_now) if info else utc_now
    return clock


@click.group("approvals", help="DingTalk approval instances.")
def group() -> None:
    """The `approvals` command group."""


@group.command("retry")
@pass_config
def retry(config: Config) -> None:
    """Open the approval instances that could not be opened when the application arrived.

    It runs their open_instance jobs now, through the runner and under their lease, so it
    can never race a runner that is opening the same instance.
    """
    if missing_dingtalk_settings(config):
        raise click.ClickException("DingTalk is not configured: see `dingpass config check`")
    clock = command_clock()
    runner = standalone_runner(config, clock)

    def due_now(connection: Connection) -> list[int | None]:
        return [
            queue.due_now(connection, OPEN_INSTANCE, Subject.application(app), clock())
            for app in waiting_for_instance(connection)
        ]

    # Run again if a runner's attempt at one of them came between the listing and the update
    # (MariaDB's snapshot isolation refuses the update: 1020).
    jobs = runner.database.run(due_now)
    for job_id in filter(None, jobs):
        runner.run_one(only=job_id)
    with runner.database.transaction() as connection:
        waiting = len(waiting_for_instance(connection))
    click.echo(f"Opened {len(jobs) - waiting} approval instance(s); {waiting} still waiting.")
    if waiting:
        raise SystemExit(1)


@click.command("reconcile")
@pass_config
def reconcile(config: Config) -> None:
    """Recover lost approval events from DingTalk: stale pending instances, failed pushes."""
    database, clock = Database(config.database), command_clock()
    try:
        client = dingtalk_client(config, database, clock)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    reconciler = Reconciler(
        database,
        client,
        dispatcher_for(config, database, clock),
        timedelta(seconds=config.reconcile_after),
        clock,
        [form.process_code for form in config.change_forms.requests],
    )
    report = reconciler.run()
    click.echo(
        f"Checked {report.checked} pending approval(s), drained {report.drained} failed push(es), "
        f"recovered {len(report.recovered)}: {', '.join(report.recovered) or '-'}"
    )
    for error in report.errors:
        click.echo(f"  could not reach DingTalk: {error}", err=True)
    if report.errors:
        raise SystemExit(1)
