"""The `dingpass` command: Flask's click CLI with the project's command groups."""

import logging
import os
import sys
from pathlib import Path

import click
from flask.cli import AppGroup
from sqlalchemy.exc import OperationalError

from backend import defaults, request_log
from backend.config import Config
from backend.exceptions import ConfigError, DingpassError
from cli import approvals as approval_commands
from cli import apps as app_commands
from cli import changes as change_commands
from cli import checks as check_commands
from cli import cloud_sandbox as cloud_sandbox_commands
from cli import codes as code_commands
from cli import config as config_commands
from cli import db as db_commands
from cli import dev as dev_commands
from cli import jobs as job_commands
from cli import license as license_commands
from cli import robots as robot_commands
from cli import sandbox as sandbox_commands
from cli import stream as stream_commands
from cli.context import script_info

COMMANDS = (
    config_commands.group,
    license_commands.group,
    db_commands.group,
    dev_commands.dev,
    approval_commands.group,
    approval_commands.reconcile,
    sandbox_commands.sandbox,
    cloud_sandbox_commands.cloud_sandbox,
    stream_commands.stream,
    job_commands.runner,
    job_commands.group,
    robot_commands.group,
    check_commands.group,
    change_commands.group,
    app_commands.group,
    code_commands.group,
)


def build_cli() -> click.Group:
    """The root group with every command registered.

    Flask's AppGroup rather than FlaskGroup: no command needs a Flask app, so --help
    never builds one, and Flask's run/shell/routes would only mislead (`dingpass dev`
    runs everything).
    """
    group = AppGroup(
        name="dingpass",
        help="dingpass: DingTalk approvals in, signed licenses and changes out.",
    )
    click.version_option(package_name="dingpass")(group)
    click.option(
        "--verbose",
        "-v",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_verbose,
        help="Log at DEBUG, with Alembic's migration steps and the mail sandbox's SMTP dialogue.",
    )(group)
    for command in COMMANDS:
        group.add_command(command)
    return group


def _verbose(ctx: click.Context, param: click.Parameter, verbose: bool) -> None:
    if verbose:
        logging.getLogger().setLevel(logging.DEBUG)
        logging.getLogger("alembic").setLevel(logging.INFO)


cli = build_cli()


def main() -> None:
    """Entry point of the console script: read the environment once, then run."""
    # One format for the CLI, `dingpass dev` (werkzeug's request lines) and `dingpass runner`.
    request_log.configure()
    try:
        config = Config.from_env(os.environ, Path(defaults.DOTENV_FILE))
    except ConfigError as err:
        click.echo(f"dingpass: {err}", err=True)
        sys.exit(2)
    try:
        cli.main(prog_name="dingpass", obj=script_info(config))
    except DingpassError as err:  # ours carry a message that says what to do
        click.echo(f"dingpass: {err}", err=True)
        sys.exit(1)
    except OperationalError as err:
        click.echo(
            f"dingpass: the database cannot be reached ({err.orig}); check DATABASE_URL",
            err=True,
        )
        sys.exit(1)
