"""How commands receive the configuration main() built: through click's context object."""

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar

import click
from flask.cli import ScriptInfo

from backend.app import create_app
from backend.config import Config

F = TypeVar("F", bound=Callable[..., Any])


def script_info(config: Config) -> ScriptInfo:
    """The click context object that carries ``config`` to every command."""
    info = ScriptInfo(create_app=lambda: create_app(config), set_debug_flag=False)
    info.data["config"] = config
    return info


def pass_config(command: F) -> F:
    """Give a command the Config that main() built, as its first argument."""

    @click.pass_context
    def with_config(ctx: click.Context, /, *args: Any, **kwargs: Any) -> Any:
        config = ctx.ensure_object(ScriptInfo).data["config"]
        return ctx.invoke(command, config, *args, **kwargs)

    return update_wrapper(with_config, command)  # type: ignore[return-value]
