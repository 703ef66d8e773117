"""`dingpass approvals retry` and `dingpass reconcile`: nothing is lost, nothing is made twice."""

from datetime import timedelta

import click

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
    runner = standalone_runner(config, utc_now)
    with runner.database.transaction() as connection:
        jobs = [
            queue.due_now(connection, OPEN_INSTANCE, Subject.application(app), utc_now())
            for app in waiting_for_instance(connection)
        ]
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
    database = Database(config.database)
    try:
        client = dingtalk_client(config, database, utc_now)
    except ConfigError as err:
        raise click.ClickException(str(err)) from None
    reconciler = Reconciler(
        database,
        client,
        dispatcher_for(config, database, utc_now),
        timedelta(seconds=config.reconcile_after),
        utc_now,
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
