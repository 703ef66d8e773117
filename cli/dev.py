"""`dingpass dev`: every function on this machine, on embedded defaults.

The commands are the composition root, so this one starts the frontend, the approval
callback and the sandboxes beside the backend. Without DingTalk credentials in the
environment it runs the DingTalk sandbox with throwaway credentials made for this run,
and without an SMTP server it runs the mail sandbox: development never reaches out.
"""

import dataclasses
import errno
import secrets
import string
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import click
from flask import Flask
from sqlalchemy.engine import make_url
from werkzeug.serving import BaseWSGIServer, make_server

from approval.app import create_app as create_approval
from backend import defaults
from backend.app import create_app
from backend.clock import utc_now
from backend.config import Config
from backend.storage import migrate
from backend.storage.database import Database, make_engine
from backend.work import standalone_runner
from cli.context import pass_config
from cli.stopping import stop_event

APPROVAL_PORT = 8003
SAMPLE = "product=acme-erp&feature=9F2C-41AB-77D0-E5C3"


def _port(url: str) -> int:
    return urlsplit(url).port or 80


@click.command("dev")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--sandbox-port", default=_port(defaults.SANDBOX_URL), show_default=True)
@click.option("--approval-port", default=APPROVAL_PORT, show_default=True)
@click.option("--inbox-port", default=_port(defaults.MAIL_SANDBOX_URL), show_default=True)
@pass_config
def dev(config: Config, host: str, sandbox_port: int, approval_port: int, inbox_port: int) -> None:
    """Run every function and the DingTalk and mail sandboxes locally; Ctrl+C stops."""
    from frontend.config import STATIC_DIR

    if not (STATIC_DIR / "index.html").exists():
        raise click.ClickException("the page is not built: run `make run` (it builds vue-app)")
    use_dingtalk_sandbox = not config.dingtalk_app_key
    config = _local(config, use_dingtalk_sandbox, f"http://{host}:{sandbox_port}")
    migrate.upgrade(make_engine(config.database))
    inbox = _start_mail_sandbox(config, host, inbox_port) if _uses_mail_sandbox(config) else None
    kick = _start_runner(config)
    stream = config.dingtalk_event_mode == "stream"
    callback = None if stream else f"http://{host}:{approval_port}{defaults.CALLBACK_PATH}"
    servers = [
        _serve(create_app(config, kick=kick), host, _port(config.backend_url)),
        _serve(_frontend(config), host, _port(config.public_base_url)),
        _serve(create_approval(config, kick=kick), host, approval_port),
    ]
    console = (
        _start_dingtalk_sandbox(config, host, sandbox_port, callback)
        if use_dingtalk_sandbox
        else None
    )
    if stream:
        _start_stream_worker(config, kick)
    _announce(
        config,
        console,
        inbox,
        callback or "Stream mode (the worker runs in this process)",
    )
    _wait(servers)


def _local(config: Config, use_sandbox: bool, sandbox_url: str) -> Config:
    """The config with what this run makes up: the proxy secret, and sandbox credentials."""
    made: dict[str, object] = {"proxy_secret": config.proxy_secret or secrets.token_urlsafe(32)}
    if use_sandbox:
        made |= {
            "dingtalk_app_key": f"dingsandbox{secrets.token_hex(4)}",
            "dingtalk_app_secret": secrets.token_urlsafe(24),
            "dingtalk_process_code": "PROC-SANDBOX-LICENSE",
            "dingtalk_originator_user_id": "sandbox-approver",
            "dingtalk_callback_token": secrets.token_urlsafe(12),
            "dingtalk_callback_aes_key": "".join(
                secrets.choice(string.ascii_letters + string.digits) for _ in range(43)
            ),
            "dingtalk_api_base": sandbox_url,
            "dingtalk_oapi_base": sandbox_url,
        }
    return dataclasses.replace(config, **made)  # type: ignore[arg-type]


def _start_runner(config: Config) -> Callable[[], None]:
    """One runner loop for the whole stack; what records work kicks it (the timer is a backstop)."""
    # Work a job records (the mail after the license) is due at once: the same pass runs it.
    runner = standalone_runner(config, utc_now)
    stop = threading.Event()
    threading.Thread(
        target=runner.loop,
        args=(config.runner_interval, stop),
        name="runner",
        daemon=True,
    ).start()
    return runner.kick


def _uses_mail_sandbox(config: Config) -> bool:
    # SMTP on loopback with no login is the mail sandbox's place; a real server is set elsewhere.
    return config.smtp_host in ("127.0.0.1", "localhost") and not config.smtp_user


def _start_mail_sandbox(config: Config, host: str, inbox_port: int) -> str:
    from sandbox.mail import MailSandbox

    try:
        sandbox = MailSandbox(host, smtp_port=config.smtp_port, web_port=inbox_port)
    except OSError as err:
        why = "in use" if err.errno == errno.EADDRINUSE else err.strerror
        raise click.ClickException(
            f"the mail sandbox cannot listen on {host}:{config.smtp_port}: {why}."
            " Is `dingpass dev` running already? Stop it, or set SMTP_PORT to a free port."
        ) from None
    return sandbox.start().url


def _frontend(config: Config) -> Flask:
    from frontend.app import create_app as create_frontend
    from frontend.config import FrontendConfig

    return create_frontend(
        FrontendConfig(
            public_base_url=config.public_base_url,
            backend_url=config.backend_url,
            proxy_secret=config.proxy_secret or "",
            catalogue_file=config.catalogue_file,
            trusted_proxy_hops=config.trusted_proxy_hops,
            backend_timeout=config.backend_timeout,
        )
    )


def _start_dingtalk_sandbox(config: Config, host: str, port: int, callback: str | None) -> str:
    from sandbox.delivery import CallbackTarget
    from sandbox.server import Sandbox, SandboxSettings

    target = None
    if callback is not None:  # in Stream mode events go to the gateway, not to a callback
        target = CallbackTarget(
            callback,
            config.dingtalk_callback_token or "",
            config.dingtalk_callback_aes_key or "",
            config.callback_owner_key or "",
        )
    settings = SandboxSettings(
        config.dingtalk_app_key or "",
        config.dingtalk_app_secret or "",
        config.dingtalk_process_code or "",
        callback=target,
    )
    return Sandbox(settings, host=host, port=port).start().url


def _start_stream_worker(config: Config, kick: Callable[[], None]) -> None:
    """The Stream-mode client on its own event loop, as `dingpass stream` runs it."""
    import asyncio

    from approval.stream import ApprovalEventHandler, StreamWorker
    from backend.approvals.dispatcher import dispatcher_for
    from cli.stream import OPEN_PATH

    events = dispatcher_for(config, Database(config.database), utc_now, kick)
    worker = StreamWorker(
        config.dingtalk_app_key or "",
        config.dingtalk_app_secret or "",
        config.dingtalk_api + OPEN_PATH,
        ApprovalEventHandler(events.dispatch),
    )
    threading.Thread(target=asyncio.run, args=(worker.start(),), name="stream", daemon=True).start()


def _serve(app: Flask, host: str, port: int) -> BaseWSGIServer:
    server = make_server(host, port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name=app.name, daemon=True).start()
    return server


def _announce(config: Config, console: str | None, inbox: str | None, callback: str) -> None:
    base = config.public_base_url
    database = make_url(config.database).render_as_string(hide_password=True)
    click.echo(f"dingpass is running ({database})\n")
    click.echo(f"  Apply page     {base}/apply?{SAMPLE}")
    click.echo(f"  Its QR code    {base}/qr?{SAMPLE}")
    if console:
        click.echo(f"  Approver       {console}/  (the DingTalk sandbox's console)")
    else:
        click.echo(f"  Approvals      in DingTalk ({config.dingtalk_api})")
    if inbox:
        click.echo(
            f"  Inbox          {inbox}/  (the mail sandbox; SMTP on port {config.smtp_port})"
        )
    else:
        click.echo(f"  Mail           via {config.smtp_host}:{config.smtp_port}")
    click.echo(f"  Backend        {config.backend_url} (signed requests only)")
    click.echo(f"  Callback       {callback}\n")
    click.echo("Ctrl+C stops.")


def _wait(servers: list[BaseWSGIServer]) -> None:
    stop_event().wait()
    for server in servers:
        server.shutdown()
