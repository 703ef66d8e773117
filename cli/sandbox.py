"""`dingpass sandbox`: the DingTalk and cloud sandboxes alone, for pointing other tools at them."""

import secrets
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click

from backend import defaults
from backend.config import Config
from cli.context import pass_config
from cli.stopping import stop_event

if TYPE_CHECKING:  # with the dev extra; imported when the command runs
    from sandbox.cloud import CloudSandbox
    from sandbox.forms import FormTemplate

EXAMPLE_CHANGE_FORMS = Path(__file__).parents[1] / "change-forms.example.toml"
SANDBOX_AGENT_ID = 1000001
"""The sandbox's AgentId: work notifications are sent as it."""


def sandbox_forms(config: Config) -> "tuple[FormTemplate, ...]":
    """The sandbox's forms beside the license form: each approval form of CHANGE_FORMS_FILE
    (its components the labels dingpass fills), and the employees' request form."""
    from sandbox.forms import CLOUD_REQUEST_FORM, text_form

    approvals = tuple(
        text_form(form.process_code, "云资源变更审批", tuple(label for label, _ in form.fields))
        for form in config.change_forms.approvals
    )
    return (*approvals, CLOUD_REQUEST_FORM)


@click.command("sandbox")
@click.option("--port", default=8002, show_default=True)
@click.option(
    "--cloud-port",
    default=urlsplit(defaults.CLOUD_SANDBOX_URL).port,
    show_default=True,
    help="Where the cloud sandbox (VPC, ECS and RAM) listens.",
)
@click.option(
    "--callback-url",
    help="Where to push events (the approval function's callback URL).",
)
@pass_config
def sandbox(config: Config, port: int, cloud_port: int, callback_url: str | None) -> None:
    """Serve local stand-ins for DingTalk (API, approver console, event pushes) and for
    Alibaba Cloud's VPC, ECS and RAM APIs."""
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
    settings = SandboxSettings(
        key, secret, code, form_components=form, callback=target, forms=sandbox_forms(config)
    )
    server = Sandbox(settings, port=port).start()
    cloud, made = _cloud_sandbox(config, cloud_port)
    stopped = stop_event()  # before the banner: a signal sent on reading it must find its handler
    click.echo(f"DingTalk sandbox at {server.url}; approver console at {server.url}/")
    click.echo(f"Cloud sandbox at {cloud.url}; its resources at {cloud.url}/")
    click.echo(f"  for the runner: CLOUD_ENDPOINT={cloud.url}{made}\n(Ctrl+C stops)")
    stopped.wait()
    server.stop()
    cloud.stop()


def _cloud_sandbox(config: Config, port: int) -> tuple["CloudSandbox", str]:
    """The cloud sandbox, accepting the configured key or one made now; how to name it."""
    from sandbox.cloud import CloudSandbox

    key, secret = config.cloud_access_key_id, config.cloud_access_key_secret
    made = ""
    if not (key and secret):
        key, secret = f"sandbox-{secrets.token_hex(4)}", secrets.token_urlsafe(24)
        made = f" CLOUD_ACCESS_KEY_ID={key} CLOUD_ACCESS_KEY_SECRET={secret}"
    return CloudSandbox({key: secret}, port=port).start(), made
