"""`dingpass robots list | test NAME`: the configured group robots, and a message to one now."""

import math

import click

from backend.clock import utc_now
from backend.config import Config
from backend.robots import budget
from backend.robots.errors import RobotError, RobotRefused
from backend.robots.messages import test_message
from backend.storage.database import Database
from backend.work import robot_context
from cli.context import pass_config


@click.group("robots", help="The group robots told of applications, deliveries and failures.")
def group() -> None:
    """The `robots` command group."""


@group.command("list")
@pass_config
def list_robots(config: Config) -> None:
    """List the robots in ROBOTS_FILE and what each is told of."""
    if not config.robots:
        click.echo("No robots (set ROBOTS_FILE; see robots.example.toml).")
        return
    for robot in config.robots:
        events = ", ".join(sorted(robot.events))
        click.echo(f"{robot.name:<16} {robot.kind:<9} {robot.language}  {events}")


@group.command("test")
@click.argument("name")
@pass_config
def test(config: Config, name: str) -> None:
    """Send NAME a test message now and print its answer; exit 1 with the fix if it refuses.

    The message takes a place in the robot's budget, as a job's does: one more than 20 a minute
    and a DingTalk robot refuses everything for ten minutes.
    """
    context = robot_context(config, utc_now)
    try:
        robot = context.robot(name)
    except RobotError as err:
        raise click.ClickException(str(err)) from None
    database = Database(config.database)
    try:
        wait = database.run(
            lambda c: budget.take(c, robot.name, utc_now(), context.per_minute, context.window)
        )
    finally:
        database.dispose()
    if wait is not None:
        raise click.ClickException(
            f"robot {robot.name} has taken its {context.per_minute} messages of the last "
            f"minute; try again in {math.ceil(wait.total_seconds())} s"
        )
    try:
        answer = context.sender().send(robot, test_message(robot))
    except RobotRefused as err:
        click.echo(f"robot {robot.name} refused: errcode {err.errcode} ({err.errmsg})", err=True)
        click.echo(f"fix: {err.fix}", err=True)
        raise SystemExit(1) from None
    except RobotError as err:
        click.echo(f"dingpass: {err}", err=True)
        raise SystemExit(1) from None
    click.echo(f"robot {robot} answered errcode {answer['errcode']} ({answer.get('errmsg', '')})")
