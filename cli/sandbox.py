"""`dingpass sandbox`: the DingTalk sandbox alone, for pointing other tools at it."""

import click

from backend.config import Config
from cli.context import pass_config
from cli.stopping import stop_event


@click.command("sandbox")
@click.option("--port", default=8002, show_default=True)
@click.option(
    "--callback-url",
    help="Where to push events (the approval function's callback URL).",
)
@pass_config
def sandbox(config: Config, port: int, callback_url: str | None) -> None:
    """Serve a local stand-in for DingTalk's API, approver console and event pushes."""
    from sandbox.delivery import CallbackTarget
    from sandbox.server import Sandbox, SandboxSettings

    key, secret, code = (
        config.dingtalk_app_key,
        config.dingtalk_app_secret,
        config.dingtalk_process_code,
    )
    if not (key and secret and code):
        raise click.ClickException(
            "set DINGTALK_APP_KEY, DINGTALK_APP_SECRET and DINGTALK_PROCESS_CODE "
            "(any values: the sandbox accepts the ones it is given)"
        )
    target = None
    if callback_url and config.dingtalk_callback_token and config.dingtalk_callback_aes_key:
        target = CallbackTarget(
            callback_url,
            config.dingtalk_callback_token,
            config.dingtalk_callback_aes_key,
            config.callback_owner_key or key,
        )
    form = tuple(name for name, _ in config.dingtalk_form_fields)
    settings = SandboxSettings(key, secret, code, form_components=form, callback=target)
    server = Sandbox(settings, port=port).start()
    stopped = stop_event()  # before the banner: a signal sent on reading it must find its handler
    click.echo(
        f"DingTalk sandbox at {server.url}; approver console at {server.url}/  (Ctrl+C stops)"
    )
    stopped.wait()
    server.stop()
