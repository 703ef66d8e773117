"""`dingpass config check`: what is set, what production still needs, and no secrets."""

import dataclasses
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from backend import defaults, license_keys
from backend.approvals.wiring import dingtalk_client, missing_dingtalk_settings
from backend.catalogue import load_catalogue
from backend.clock import utc_now
from backend.config import Config
from backend.exceptions import ConfigError, DingTalkError
from backend.storage import migrate
from backend.storage.database import Database, make_engine
from backend.storage.schema import metadata
from cli.context import pass_config


@click.group("config", help="Inspect the configuration.")
def group() -> None:
    """The `config` command group."""


@group.command("check")
@pass_config
def check(config: Config) -> None:
    """Print each setting (secrets hidden), check what can be checked, list what is missing."""
    click.echo(f"dingpass configuration ({config.environment})")
    for item in dataclasses.fields(config):
        click.echo(f"  {item.metadata['env']:<32} {_shown(config, item)}")
    failures = _run_checks(config)
    missing = [item for item in dataclasses.fields(config) if _missing_for_production(config, item)]
    if missing:
        click.echo("\nMissing for production:")
        for item in missing:
            click.echo(f"  {item.metadata['env']:<32} {item.metadata['doc']}")
    if failures or (config.production and missing):
        raise SystemExit(1)


def _shown(config: Config, item: dataclasses.Field[object]) -> str:
    value = getattr(config, item.name)
    if value is None or value == ():
        return "not set"
    if item.metadata["secret"]:
        return "set (hidden)"
    shown = ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)
    return f"{shown} (default)" if value == item.default else shown


def _missing_for_production(config: Config, item: dataclasses.Field[object]) -> bool:
    # A production setting left at its development default (None, or a loopback URL) is unset.
    value = getattr(config, item.name)
    return bool(item.metadata["production"]) and value in (None, (), item.default)


@dataclasses.dataclass(frozen=True)
class _Warning:
    """A check's finding that works but is likely a mistake: shown, without failing the check."""

    detail: str


def _run_checks(config: Config) -> int:
    click.echo("\nChecks:")
    failures = 0
    for name, probe in _checks(config):
        try:
            detail = probe()
        except ConfigError as err:
            click.echo(f"  FAIL  {name}: {err}")
            failures += 1
        else:
            if isinstance(detail, _Warning):
                click.echo(f"  WARN  {name}: {detail.detail}")
            else:
                click.echo(f"  ok    {name}: {detail}")
    return failures


def _checks(config: Config) -> list[tuple[str, Callable[[], str | _Warning]]]:
    return [
        ("signing key", lambda: _signing_key(config)),
        ("public key ring", lambda: _ring(config)),
        ("catalogue", lambda: _catalogue(config)),
        ("dingtalk", lambda: _dingtalk(config)),
        ("dingtalk events", lambda: _events(config)),
        ("database", lambda: _database(config)),
        ("client addresses", lambda: _proxy_hops(config)),
        ("robots", lambda: _robots(config)),
        ("change forms", lambda: _change_forms(config)),
    ]


PROXY_HOPS_NEEDED = (
    "1 behind Function Compute's HTTP trigger (it appends the caller's address to"
    " X-Forwarded-For), 0 when clients reach the frontend directly (`make run`, `dingpass dev`)"
)


def _proxy_hops(config: Config) -> str | _Warning:
    """Whether TRUSTED_PROXY_HOPS fits where the frontend runs: the per-IP limit depends on it."""
    hops = config.trusted_proxy_hops
    if hops and not config.production:
        return _Warning(
            f"TRUSTED_PROXY_HOPS={hops} in development, where no proxy stands in front of the"
            " frontend (`dingpass dev`): any client can write its own X-Forwarded-For, choose its"
            " address and so escape the per-IP limit. Set 0 unless a proxy of yours appends to"
            f" X-Forwarded-For. It needs {PROXY_HOPS_NEEDED}."
        )
    if not hops and config.production:
        return _Warning(
            "TRUSTED_PROXY_HOPS=0: behind Function Compute every client would have the trigger's"
            f" address and share one per-IP limit. It needs {PROXY_HOPS_NEEDED}."
        )
    source = f"X-Forwarded-For's entry {hops} from the end" if hops else "the connection's own"
    return (
        f"TRUSTED_PROXY_HOPS={hops}: a client's address is {source}. It needs {PROXY_HOPS_NEEDED}"
    )


def _catalogue(config: Config) -> str:
    products = load_catalogue(config.catalogue_file)
    return f"{config.catalogue_file}: {len(products)} products ({', '.join(products)})"


def _database(config: Config) -> str:
    url = make_url(config.database)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():
        return f"{url.database} is made by `dingpass db upgrade` (or `make run`)"
    engine = make_engine(config.database)
    try:
        revision, transport = migrate.current(engine), _transport(engine)
    except SQLAlchemyError as err:
        raise ConfigError(
            f"DATABASE_URL: cannot connect ({err.__class__.__name__}: {err.args[0]})"
        ) from None
    finally:
        engine.dispose()
    if revision is None:
        raise ConfigError("the database has no schema: run `dingpass db upgrade`")
    return f"reachable{transport}, schema revision {revision}"


def _transport(engine: Engine) -> str:
    """How a MySQL server is reached, as it reports it: over TLS (its version), or plain TCP;
    nothing for SQLite, or a server that will not say (the check is about reaching it)."""
    if engine.dialect.name != "mysql":
        return ""
    try:
        with engine.connect() as connection:
            status = connection.exec_driver_sql("SHOW SESSION STATUS LIKE 'Ssl_version'")
            found = status.first()
    except SQLAlchemyError:
        return ""
    if found is not None and found[1]:
        return f" over {found[1]}"
    return " over plain TCP (?ssl_ca= in DATABASE_URL for TLS)"


def _signing_key(config: Config) -> str:
    if not config.license_signing_key and not config.production:
        path = license_keys.dev_key_path(config)
        state = "exists" if path.exists() else "made on first use"
        return f"development key {path} ({state})"
    return f"loads, key id {license_keys.issuer(config).key_id}"


def _ring(config: Config) -> str:
    uses_dev_key = not (config.license_signing_key or config.production)
    if uses_dev_key and not license_keys.dev_key_path(config).exists():
        return "the development key's, once it is made on first use"
    return "key ids " + ", ".join(license_keys.public_keys(config))


def _dingtalk(config: Config) -> str:
    missing = missing_dingtalk_settings(config)
    if missing and not config.production:
        return f"not configured ({', '.join(missing)}): `dingpass dev` runs the sandbox instead"
    if missing:
        raise ConfigError(f"set {', '.join(missing)} to open approval instances")
    scratch = Database(
        "sqlite://"
    )  # a token cache of its own: checking must not touch the real database
    metadata.create_all(scratch.engine)
    try:
        dingtalk_client(config, scratch, utc_now).access_token()
    except DingTalkError as err:
        raise ConfigError(
            f"DingTalk refused the app key and secret at {config.dingtalk_api}: {err}"
        ) from None
    finally:
        scratch.dispose()
    return f"app {config.dingtalk_app_key} gets an access token from {config.dingtalk_api}"


def _events(config: Config) -> str:
    if config.dingtalk_event_mode == "stream":
        return "Stream mode: run `dingpass stream`"
    key = config.dingtalk_callback_aes_key
    if not (config.dingtalk_callback_token and key):
        if config.production:
            raise ConfigError(
                "HTTP callback mode needs DINGTALK_CALLBACK_TOKEN and DINGTALK_CALLBACK_AES_KEY"
            )
        return "HTTP callback: not configured (`dingpass dev` makes sandbox values)"
    if len(key) != 43:
        raise ConfigError(f"DINGTALK_CALLBACK_AES_KEY has {len(key)} characters; DingTalk's has 43")
    return f"HTTP callback at {defaults.CALLBACK_PATH}, encrypted for {config.callback_owner_key}"


def _change_forms(config: Config) -> str:
    """Whether CHANGE_FORMS_FILE names change types and spec parameters that exist: a typo
    there would refuse every employee's request, or gate nothing."""
    from backend.changes.types import change_types
    from backend.cloud.plugins import all_plugins

    forms, types = config.change_forms, change_types(all_plugins())
    if not forms.process_codes:
        return "none (set CHANGE_FORMS_FILE to have changes approved in DingTalk)"
    if config.dingtalk_process_code in forms.process_codes:
        raise ConfigError(
            f"{config.dingtalk_process_code} is both DINGTALK_PROCESS_CODE (licenses) and a form "
            "of CHANGE_FORMS_FILE: give each its own form"
        )
    for approval in forms.approvals:
        unknown = sorted(approval.types - set(types) - {"*"})
        if unknown:
            raise ConfigError(f"[[approvals]] {approval.process_code}: no change type {unknown[0]}")
    for request in forms.requests:
        kind = types.get(request.type)
        if kind is None:
            raise ConfigError(f"[[requests]] {request.process_code}: no change type {request.type}")
        names = [name for name, _ in request.spec] + list(request.fixed)
        unknown = sorted(set(names) - set(kind.parameters))
        if unknown:
            raise ConfigError(
                f"[[requests]] {request.process_code}: {request.type} has no parameter "
                f"{unknown[0]}; it has {', '.join(sorted(kind.parameters))}"
            )
    waiting = [f"{', '.join(sorted(a.types))} on {a.process_code}" for a in forms.approvals]
    asked = [f"{r.type} from {r.process_code}" for r in forms.requests]
    return "; ".join(
        part
        for part in (
            f"approved in DingTalk: {'; '.join(waiting)}" if waiting else "",
            f"asked for on: {'; '.join(asked)}" if asked else "",
        )
        if part
    )


def _robots(config: Config) -> str | _Warning:
    """What ROBOTS_FILE configured (its mistakes stop the configuration loading, by robot and
    key); a robot that will likely be refused is a warning."""
    if not config.robots:
        return "none (set ROBOTS_FILE to tell DingTalk or WeCom groups of events)"
    for robot in config.robots:
        if robot.kind == "dingtalk" and not (robot.secret or robot.keyword):
            return _Warning(
                f"robot {robot.name}: neither secret_env (加签) nor keyword: DingTalk then needs "
                "the robot's IP setting to list this deployment's egress address"
            )
        if robot.kind == "wecom" and robot.mention.mobiles:
            return _Warning(
                f"robot {robot.name}: WeCom markdown cannot mention by mobile; "
                "give mention.user_ids instead"
            )
    return ", ".join(f"{r} told of {', '.join(sorted(r.events))}" for r in config.robots)
