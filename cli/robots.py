"""`dingpass robots list | test NAME`: the configured group robots, and a message to one now."""

import click

from backend.clock import utc_now
from backend.config import Config
from backend.robots.clients import RobotClient
from backend.robots.errors import RobotError, RobotRefused
from backend.robots.messages import test_message
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
    """Send NAME a test message now and print its answer; exit 1 with the fix if it refuses."""
    context = robot_context(config, utc_now)
    try:
        robot = context.robot(name)
    except RobotError as err:
        raise click.ClickException(str(err)) from None
    client = context.client or RobotClient(utc_now)
    try:
        answer = client.send(robot, test_message(robot))
    except RobotRefused as err:
        click.echo(f"robot {robot.name} refused: errcode {err.errcode} ({err.errmsg})", err=True)
        click.echo(f"fix: {err.fix}", err=True)
        raise SystemExit(1) from None
    except RobotError as err:
        click.echo(f"dingpass: {err}", err=True)
        raise SystemExit(1) from None
    click.echo(f"robot {robot} answered errcode {answer['errcode']} ({answer.get('errmsg', '')})")
