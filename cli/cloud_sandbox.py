"""`dingpass cloud-sandbox`: Alibaba Cloud's VPC, ECS and RAM APIs alone, on loopback."""

from urllib.parse import urlsplit

import click

from backend import defaults
from backend.config import Config
from cli.context import pass_config
from cli.stopping import stop_event


@click.command("cloud-sandbox")
@click.option("--port", default=urlsplit(defaults.CLOUD_SANDBOX_URL).port, show_default=True)
@click.option(
    "--ready-after",
    type=click.FloatRange(min=0),
    default=2.0,
    show_default=True,
    help="Seconds a new VPC or vSwitch stays Pending, and an instance takes to be Running.",
)
@pass_config
def cloud_sandbox(config: Config, port: int, ready_after: float) -> None:
    """Serve a local stand-in for Alibaba Cloud's VPC, ECS and RAM APIs."""
    from sandbox.cloud import CloudSandbox

    key, secret = config.cloud_access_key_id, config.cloud_access_key_secret
    if not (key and secret):
        raise click.ClickException(
            "set CLOUD_ACCESS_KEY_ID and CLOUD_ACCESS_KEY_SECRET "
            "(any values: the cloud sandbox accepts the key it is given)"
        )
    server = CloudSandbox({key: secret}, ready_after=ready_after, port=port).start()
    stopped = stop_event()  # before the banner: a signal sent on reading it must find its handler
    click.echo(
        f"Cloud sandbox (VPC, ECS, RAM) at {server.url}: set CLOUD_ENDPOINT={server.url}; "
        f"resources at {server.url}/  (Ctrl+C stops)"
    )
    stopped.wait()
    server.stop()
