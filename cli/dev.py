"""`dingpass dev`: every function on this machine, on embedded defaults.

The commands are the composition root, so this one starts the frontend, the approval
callback and the sandboxes beside the backend. Without DingTalk credentials in the
environment it runs the DingTalk sandbox with throwaway credentials made for this run,
and without an SMTP server it runs the mail sandbox: development never reaches out.
With ``--host 0.0.0.0`` it serves the local network, so a phone can scan the QR code.
"""

import dataclasses
import errno
import ipaddress
import os
import secrets
import socket
import string
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import click
from flask import Flask
from sqlalchemy.engine import make_url
from werkzeug.serving import BaseWSGIServer, make_server

from approval.app import create_app as create_approval
from backend import defaults
from backend.app import create_app
from backend.changes.forms import load_change_forms
from backend.checks.run import CheckSettings, check_every_minute
from backend.clock import utc_now
from backend.config import Config
from backend.robots.config import Robot
from backend.robots.events import RobotEvent
from backend.storage import migrate
from backend.storage.database import Database, make_engine
from backend.work import standalone_runner
from cli.context import pass_config
from cli.sandbox import EXAMPLE_CHANGE_FORMS, SANDBOX_AGENT_ID, sandbox_forms
from cli.stopping import stop_event

if TYPE_CHECKING:  # the sandboxes come with the dev extra: imported when `dingpass dev` runs
    from sandbox.mail import MailSandbox

APPROVAL_PORT = 8003
SAMPLE = "product=acme-erp&feature=9F2C-41AB-77D0-E5C3"
CALLBACK_FILE = "dev-callback.env"
"""In the var folder: the callback credentials this run made up, for pushing events by hand."""
EVERY_INTERFACE = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # noqa: S104 -- what --host offers
"""The wildcard addresses --host takes, and the loopback address this process reaches them on."""
BELOW = "\n" + " " * 17
"""A banner entry's second line starts under the first line's value."""
PRIVATE_NETWORKS = ("10.255.255.255", "172.31.255.255", "192.168.255.255")
"""Addresses in each private range: the route to one of them leaves by the LAN's interface."""


def _port(url: str) -> int:
    return urlsplit(url).port or 80


@click.command("dev")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 serves the local network, and the printed links, "
    "QR codes and status links then use this machine's LAN address.",
)
@click.option("--sandbox-port", default=_port(defaults.SANDBOX_URL), show_default=True)
@click.option("--approval-port", default=APPROVAL_PORT, show_default=True)
@click.option("--inbox-port", default=_port(defaults.MAIL_SANDBOX_URL), show_default=True)
@click.option("--cloud-port", default=_port(defaults.CLOUD_SANDBOX_URL), show_default=True)
@pass_config
def dev(
    config: Config,
    host: str,
    sandbox_port: int,
    approval_port: int,
    inbox_port: int,
    cloud_port: int,
) -> None:
    """Run every function and the DingTalk, mail and cloud sandboxes locally; Ctrl+C stops."""
    from frontend.config import STATIC_DIR

    if not (STATIC_DIR / "index.html").exists():
        raise click.ClickException("the page is not built: run `make run` (it builds vue-app)")
    _check_host(host)
    local, public = EVERY_INTERFACE.get(host, host), _public_host(host)
    use_dingtalk_sandbox, use_mail_sandbox = not config.dingtalk_app_key, _uses_mail_sandbox(config)
    given = config
    config = _local(config, use_dingtalk_sandbox, _http(local, sandbox_port))
    config = _addressed(config, local, public)
    migrate.upgrade(make_engine(config.database))
    mail_sandbox = _start_mail_sandbox(config, host, inbox_port) if use_mail_sandbox else None
    inbox = mail_sandbox.url if mail_sandbox else None
    if mail_sandbox is not None and not config.robots:
        config = _sandbox_robots(config, mail_sandbox, _http(local, _port(mail_sandbox.url)))
    cloud = None
    if not config.cloud_endpoint:  # without one, resource changes go to the cloud sandbox
        config = _start_cloud_sandbox(config, host, local, cloud_port)
        cloud = config.cloud_endpoint
    kick = _start_runner(config)
    stream = config.dingtalk_event_mode == "stream"
    callback = None if stream else _http(local, approval_port) + defaults.CALLBACK_PATH
    servers = [
        # Only the frontend calls the backend: it listens where the frontend reaches it.
        _serve(create_app(config, kick=kick), local, _port(config.backend_url)),
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
    shown_callback = "Stream mode (the worker runs in this process)"
    if callback is not None:
        note = _callback_credentials(given, config) if use_dingtalk_sandbox else ""
        shown_callback = _http(public, approval_port) + defaults.CALLBACK_PATH + note
    stopped = stop_event()  # before the banner: a signal sent on reading it must find its handler
    _announce(config, _seen_at(console, public), _seen_at(inbox, public), shown_callback)
    _announce_changes(config, _seen_at(cloud, public))
    click.echo("Ctrl+C stops.")
    _wait(servers, stopped)


def _http(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:  # a name: someone else's address, not this machine's loopback
        return False


def _check_host(host: str) -> None:
    """Refuse an address no server can listen on here, before starting any of them."""
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.bind((host, 0))
    except OSError as err:
        raise click.BadParameter(
            f"{host} is not an address of this machine ({err.strerror or err}): use 127.0.0.1 "
            "for this machine only, or 0.0.0.0 for the local network as well",
            param_hint="--host",
        ) from None


def _public_host(host: str) -> str:
    """The address others reach the servers at: the LAN's, when they listen on every interface."""
    if host not in EVERY_INTERFACE:
        return host
    lan = _lan_address()
    if lan is None:
        click.echo(
            "No LAN address found: a loopback PUBLIC_BASE_URL stays, and only this machine "
            "opens its links. Set PUBLIC_BASE_URL to the address a phone reaches it at.",
            err=True,
        )
    return lan or EVERY_INTERFACE[host]


def _lan_address() -> str | None:
    """This machine's address on its local network, found without sending anything."""
    for probe in PRIVATE_NETWORKS:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            try:  # a UDP "connect" only chooses the route, and so the source address
                udp.connect((probe, 9))
            except OSError:  # no route into that range
                continue
            address: str = udp.getsockname()[0]
        if not _is_loopback(address):
            return address
    return None


def _addressed(config: Config, local: str, public: str) -> Config:
    """The config with what names loopback moved to where the servers listen.

    The public URL goes to ``public``, as no phone reaches loopback; the backend and SMTP go to
    ``local``, where this process reaches them. What names another host (a proxy, a name in DNS,
    a real mail server) is the user's choice and stays.
    """
    return dataclasses.replace(
        config,
        public_base_url=_moved(config.public_base_url, public),
        backend_url=_moved(config.backend_url, local),
        smtp_host=local if _is_loopback(config.smtp_host) else config.smtp_host,
    )


def _moved(url: str, host: str) -> str:
    """``url`` on ``host`` if it names loopback, else as it is."""
    parts = urlsplit(url)
    if not _is_loopback(parts.hostname):
        return url
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    return parts._replace(netloc=netloc).geturl()


def _seen_at(url: str | None, host: str) -> str | None:
    """A sandbox's URL as others open it: on ``host``, not on the address it listens on."""
    return None if url is None else _http(host, _port(url))


def _local(config: Config, use_sandbox: bool, sandbox_url: str) -> Config:
    """The config with what this run makes up: the proxy secret, and sandbox credentials."""
    made: dict[str, object] = {"proxy_secret": config.proxy_secret or secrets.token_urlsafe(32)}
    if use_sandbox:
        made |= {
            "dingtalk_app_key": f"dingsandbox{secrets.token_hex(4)}",
            "dingtalk_app_secret": secrets.token_urlsafe(24),
            "dingtalk_process_code": "PROC-SANDBOX-LICENSE",
            "dingtalk_originator_user_id": "sandbox-approver",
            # Those of the environment stay: a callback sealed with them by hand must be taken.
            "dingtalk_callback_token": config.dingtalk_callback_token or secrets.token_urlsafe(12),
            "dingtalk_callback_aes_key": config.dingtalk_callback_aes_key or _aes_key(),
            "dingtalk_api_base": sandbox_url,
            "dingtalk_oapi_base": sandbox_url,
            "dingtalk_agent_id": config.dingtalk_agent_id or SANDBOX_AGENT_ID,
        }
        if not config.change_forms.process_codes:  # the sandbox's forms, as the example maps them
            made["change_forms"] = load_change_forms(EXAMPLE_CHANGE_FORMS)
    return dataclasses.replace(config, **made)  # type: ignore[arg-type]


def _aes_key() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(43))


def _callback_credentials(given: Config, config: Config) -> str:
    """Where the sandbox's callback credentials are, for the banner; written for every run.

    The owner key is the app key made for the run unless DINGTALK_CALLBACK_OWNER_KEY is set,
    so it is written even when the token and aes_key come from the environment.
    """
    path = config.var_dir / CALLBACK_FILE
    both_given = bool(given.dingtalk_callback_token and given.dingtalk_callback_aes_key)
    origin = "from the environment" if both_given else "made for this run"
    _write_callback_file(path, config, origin)
    return f"{BELOW}its token, aes_key and owner key: {path} ({origin})"


def _write_callback_file(path: Path, config: Config, origin: str) -> None:
    """Write the callback credentials as an env file, readable by its owner only."""
    lines = [
        "# The DingTalk callback credentials of this `dingpass dev` run (token and aes_key",
        f"# {origin}). Set them in the environment (or .env) to keep them for the next run.",
        f"DINGTALK_CALLBACK_TOKEN={config.dingtalk_callback_token}",
        f"DINGTALK_CALLBACK_AES_KEY={config.dingtalk_callback_aes_key}",
        f"DINGTALK_CALLBACK_OWNER_KEY={config.callback_owner_key}",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # the mode above applies only to a file it creates
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


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
    threading.Thread(
        target=check_every_minute,
        args=(runner.context, CheckSettings.from_config(config), stop, runner.kick),
        name="checks",
        daemon=True,
    ).start()
    return runner.kick


def _uses_mail_sandbox(config: Config) -> bool:
    # SMTP on loopback with no login is the mail sandbox's place; a real server is set elsewhere.
    return config.smtp_host in ("127.0.0.1", "localhost") and not config.smtp_user


def _start_mail_sandbox(config: Config, host: str, inbox_port: int) -> "MailSandbox":
    from sandbox.mail import MailSandbox

    try:
        sandbox = MailSandbox(host, smtp_port=config.smtp_port, web_port=inbox_port)
    except OSError as err:
        why = "in use" if err.errno == errno.EADDRINUSE else err.strerror
        raise click.ClickException(
            f"the mail sandbox cannot listen on {host}:{config.smtp_port}: {why}."
            " Is `dingpass dev` running already? Stop it, or set SMTP_PORT to a free port."
        ) from None
    return sandbox.start()


def _sandbox_robots(config: Config, sandbox: "MailSandbox", at: str) -> Config:
    """The config with two robots of the mail sandbox told of every event, as ROBOTS_FILE would
    name real ones: a signed DingTalk robot and a WeCom robot (in English); the inbox shows
    what they get."""
    token, key, secret = secrets.token_hex(16), secrets.token_hex(16), f"SEC{secrets.token_hex(32)}"
    sandbox.robots.add_dingtalk(token, secret=secret, name="approvers")
    sandbox.robots.add_wecom(key, name="ops")
    made, every = "(made by dingpass dev)", frozenset(RobotEvent)
    robots = (
        Robot(
            "approvers",
            "dingtalk",
            every,
            f"{at}/robot/send?access_token={token}",
            made,
            secret,
            made,
        ),
        Robot("ops", "wecom", every, f"{at}/cgi-bin/webhook/send?key={key}", made, language="en"),
    )
    return dataclasses.replace(config, robots=robots)


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


def _start_cloud_sandbox(config: Config, host: str, local: str, port: int) -> Config:
    """The cloud sandbox on ``port``; the config with its address and the key it accepts."""
    from sandbox.cloud import CloudSandbox

    key = config.cloud_access_key_id or f"sandbox-{secrets.token_hex(4)}"
    secret = config.cloud_access_key_secret or secrets.token_urlsafe(24)
    try:
        CloudSandbox({key: secret}, host=host, port=port).start()
    except OSError as err:
        why = "in use" if err.errno == errno.EADDRINUSE else err.strerror
        raise click.ClickException(
            f"the cloud sandbox cannot listen on {host}:{port}: {why}. Is `dingpass dev` "
            "running already? Stop it, or give --cloud-port a free port."
        ) from None
    return dataclasses.replace(
        config,
        cloud_endpoint=_http(local, port),
        cloud_access_key_id=key,
        cloud_access_key_secret=secret,
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
        form_components=tuple(name for name, _ in config.dingtalk_form_fields),
        callback=target,
        forms=sandbox_forms(config),
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
    click.echo(f"  Callback       {callback}")


def _announce_changes(config: Config, cloud: str | None) -> None:
    base = config.public_base_url
    click.echo(f"  Changes API    {base}/api/v1/changes  (callers: `dingpass apps create NAME`)")
    if cloud:
        click.echo(f"  Cloud          {cloud}/  (the cloud sandbox: VPC, ECS and RAM)\n")
    else:
        click.echo(f"  Cloud          {config.cloud_endpoint} ({config.cloud_region})\n")


def _wait(servers: list[BaseWSGIServer], stopped: threading.Event) -> None:
    stopped.wait()
    for server in servers:
        server.shutdown()
