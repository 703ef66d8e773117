"""`dingpass stream`: take approval events over DingTalk's Stream mode until told to stop."""

import asyncio
import signal

import click

from backend.approvals.dispatcher import dispatcher_for
from backend.clock import utc_now
from backend.config import Config
from backend.storage.database import Database
from cli.context import pass_config

OPEN_PATH = "/v1.0/gateway/connections/open"


@click.command("stream")
@pass_config
def stream(config: Config) -> None:
    """Run the Stream-mode client: reconnects by itself, stops cleanly on SIGTERM or Ctrl+C."""
    from approval.stream import ApprovalEventHandler, StreamWorker

    if config.dingtalk_event_mode != "stream":
        raise click.ClickException(
            "DINGTALK_EVENT_MODE is http: set it to stream to take events this way"
        )
    if not (config.dingtalk_app_key and config.dingtalk_app_secret):
        raise click.ClickException("Stream mode needs DINGTALK_APP_KEY and DINGTALK_APP_SECRET")
    database = Database(config.database)
    handler = ApprovalEventHandler(dispatcher_for(config, database, utc_now).dispatch)
    worker = StreamWorker(
        config.dingtalk_app_key,
        config.dingtalk_app_secret,
        config.dingtalk_api + OPEN_PATH,
        handler,
    )

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, worker.stop)
        await worker.start()

    click.echo(
        f"Taking approval events over Stream mode from {config.dingtalk_api} (SIGTERM stops)"
    )
    asyncio.run(run())
    database.dispose()
    click.echo("Stopped.")
