"""`dingpass runner` and `dingpass jobs list | retry`: the job queue from the command line."""

import threading

import click
from sqlalchemy import Connection

from backend.checks.run import CheckSettings, check_every_minute, check_now
from backend.clock import utc_now
from backend.config import Config
from backend.jobs import queue
from backend.jobs.model import JobStatus
from backend.storage.database import Database
from backend.work import default_retry, job_kinds, standalone_runner
from cli.context import pass_config
from cli.stopping import stop_event

RETRY_HINT = (
    "Once the cause is fixed: `dingpass jobs retry ID` runs one again, "
    "`dingpass jobs retry --failed` every one."
)


@click.command("runner")
@click.option("--once", is_flag=True, help="Run what is due now, then exit.")
@pass_config
def runner(config: Config, once: bool) -> None:
    """Run due jobs and the scheduled checks: in a loop every RUNNER_INTERVAL seconds (SIGTERM
    stops), or --once (a pass of each, as a cron job would run it)."""
    jobs = standalone_runner(config, utc_now)
    if once:
        check_now(jobs.context, CheckSettings.from_config(config), utc_now)
        click.echo(f"Ran {jobs.run_due()} job(s).")
        return
    stop = stop_event(then=jobs.kick)
    click.echo(f"Running jobs every {config.runner_interval} s (SIGTERM stops)")
    # The scheduled checks beside the loop, once a minute; a pass that records work kicks it.
    checks = (jobs.context, CheckSettings.from_config(config), stop, jobs.kick)
    threading.Thread(target=check_every_minute, args=checks, name="checks", daemon=True).start()
    jobs.loop(config.runner_interval, stop)
    click.echo("Stopped.")


@click.group("jobs", help="Inspect and retry jobs.")
def group() -> None:
    """The `jobs` command group."""


@group.command("list")
@click.option("--failed", is_flag=True, help="Only the failed jobs, with their last error.")
@pass_config
def list_jobs(config: Config, failed: bool) -> None:
    """List jobs, newest first."""
    with Database(config.database).transaction() as connection:
        found = queue.listing(connection, JobStatus.FAILED if failed else None)
    if not found:
        click.echo("No failed jobs." if failed else "No jobs.")
        return
    kinds, default = job_kinds(), default_retry(config)
    for job in found:
        policy = kinds.retry_of(job.kind, default).describe()
        click.echo(
            f"{job.id:>6}  {job.kind:<18} {job.subject or '-'!s:<18} {job.status:<9} "
            f"attempt {job.attempts} {policy}  {job.last_error or ''}".rstrip()
        )
    if failed:
        click.echo(RETRY_HINT)


@group.command("retry")
@click.argument("job_id", type=int, required=False)
@click.option("--failed", "every_failed", is_flag=True, help="Every failed job.")
@pass_config
def retry(config: Config, job_id: int | None, every_failed: bool) -> None:
    """Give a failed job (or every one) a fresh set of attempts; the runner takes it next."""
    if (job_id is None) == (not every_failed):
        raise click.UsageError("name one JOB_ID, or give --failed for every failed job")

    def requeue(connection: Connection) -> list[int]:
        chosen = [job_id or 0]
        if every_failed:
            chosen = [job.id for job in queue.listing(connection, JobStatus.FAILED)]
        return [one for one in chosen if queue.requeue(connection, one, utc_now())]

    # In Database.run: another operator's retry, and a runner's attempt at the job since,
    # make MariaDB under snapshot isolation refuse the update (1020); a second look is right.
    queued = Database(config.database).run(requeue)
    if job_id is not None and not queued:
        raise click.ClickException(
            f"job {job_id} is not a failed job (see `dingpass jobs list --failed`)"
        )
    click.echo(f"Queued again: {', '.join(map(str, queued)) or 'nothing (no failed jobs)'}.")
