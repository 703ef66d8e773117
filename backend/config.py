"""The one configuration object, built once from the environment and passed down.

Each setting is a field whose metadata names its environment variable, says whether
it is secret (never printed) and whether production needs it set. Variables in the
process environment win over those in an optional ``.env`` file.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from backend import defaults
from backend.changes.forms import ChangeForms, load_change_forms
from backend.exceptions import ConfigError
from backend.robots.config import Robot, load_robots


def setting(
    env: str,
    doc: str,
    default: Any = None,
    *,
    secret: bool = False,
    production: bool = False,
    parse: Callable[..., Any] = str,
    environ: bool = False,
) -> Any:
    """Declare a Config field read from the environment variable ``env``.

    With ``environ``, ``parse`` is also given the whole environment (a file that names the
    variables holding its secrets: the robots).
    """
    meta = {
        "env": env,
        "doc": doc,
        "secret": secret,
        "production": production,
        "parse": parse,
        "environ": environ,
    }
    # A secret stays out of the repr, so a Config in a log line or a traceback shows none.
    return field(default=default, metadata=meta, repr=not secret)


def _environment(value: str) -> str:
    if value not in defaults.ENVIRONMENTS:
        raise ValueError(f"must be one of {', '.join(defaults.ENVIRONMENTS)}")
    return value


def _url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


def _hour(value: str) -> int:
    number = int(value)
    if not 0 <= number <= 23:
        raise ValueError("must be an hour of the day, 0 to 23")
    return number


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError("must be a whole number of 1 or more")
    return number


def _positive_float(value: str) -> float:
    number = float(value)
    if not number > 0 or number == float("inf"):
        raise ValueError("must be a number above 0")
    return number


def _smtp_security(value: str) -> str:
    if value not in ("none", "starttls", "ssl"):
        raise ValueError("must be none, starttls or ssl")
    return value


def _event_mode(value: str) -> str:
    if value not in ("http", "stream"):
        raise ValueError("must be http or stream")
    return value


def _form_fields(value: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, source = item.partition("=")
        if not sep or source.strip() not in defaults.FORM_SOURCES:
            raise ValueError(
                f"{item!r} is not name=field, field one of {', '.join(defaults.FORM_SOURCES)}"
            )
        pairs.append((name.strip(), source.strip()))
    return tuple(pairs)


def _robots(value: str, environ: Mapping[str, str]) -> tuple[Robot, ...]:
    return load_robots(Path(value), environ)


def _flag(value: str) -> bool:
    if value not in ("0", "1"):
        raise ValueError("must be 1 or 0")
    return value == "1"


def _change_forms(value: str) -> ChangeForms:
    return load_change_forms(Path(value))


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(part.strip()) for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Config:
    """Every setting of every dingpass function."""

    environment: str = setting(
        "DINGPASS_ENV",
        "development (local defaults) or production",
        defaults.ENVIRONMENT,
        parse=_environment,
    )
    var_dir: Path = setting(
        "DINGPASS_VAR_DIR", "folder for local state", Path(defaults.VAR_DIR), parse=Path
    )
    database_url: str | None = setting(
        "DATABASE_URL",
        "SQLAlchemy URL; default SQLite in DINGPASS_VAR_DIR, "
        "production: mysql+pymysql://user:password@host/db",
        secret=True,
        production=True,
    )
    public_base_url: str = setting(
        "PUBLIC_BASE_URL",
        "the address customers open (QR codes and status links point here)",
        defaults.PUBLIC_BASE_URL,
        production=True,
        parse=_url,
    )
    backend_url: str = setting(
        "BACKEND_URL",
        "where the frontend reaches the backend",
        defaults.BACKEND_URL,
        parse=_url,
    )
    proxy_secret: str | None = setting(
        "PROXY_SECRET",
        "shared secret the frontend signs backend requests with (`dingpass dev` makes one per run)",
        secret=True,
        production=True,
    )
    proxy_secret_previous: str | None = setting(
        "PROXY_SECRET_PREVIOUS",
        "the PROXY_SECRET before a rotation, which the backend still takes until it is removed",
        secret=True,
    )
    catalogue_file: Path = setting(
        "CATALOGUE_FILE",
        "the product catalogue (TOML) a vendor edits",
        Path(defaults.CATALOGUE_FILE),
        parse=Path,
    )
    rate_limit_per_ip: int = setting(
        "RATE_LIMIT_PER_IP",
        "applications one client IP may send per window",
        defaults.RATE_LIMIT_PER_IP,
        parse=_positive,
    )
    rate_limit_per_email: int = setting(
        "RATE_LIMIT_PER_EMAIL",
        "applications one email address may send per window",
        defaults.RATE_LIMIT_PER_EMAIL,
        parse=_positive,
    )
    rate_limit_window: int = setting(
        "RATE_LIMIT_WINDOW",
        "rate limit window, seconds",
        defaults.RATE_LIMIT_WINDOW,
        parse=_positive,
    )
    trusted_proxy_hops: int = setting(
        "TRUSTED_PROXY_HOPS",
        "proxies in front of the frontend whose X-Forwarded-For is trusted (1 on Function Compute)",
        0,
        parse=int,
    )
    backend_timeout: int = setting(
        "BACKEND_TIMEOUT",
        "seconds the frontend waits for the backend",
        defaults.BACKEND_TIMEOUT,
        parse=_positive,
    )
    dingtalk_app_key: str | None = setting(
        "DINGTALK_APP_KEY",
        "the DingTalk app's Client ID (AppKey)",
        production=True,
    )
    dingtalk_app_secret: str | None = setting(
        "DINGTALK_APP_SECRET",
        "the DingTalk app's Client Secret",
        secret=True,
        production=True,
    )
    dingtalk_api_base: str | None = setting(
        "DINGTALK_API_BASE",
        "DingTalk's open API address; default https://api.dingtalk.com in "
        "production, the local sandbox in development",
        parse=_url,
    )
    dingtalk_oapi_base: str | None = setting(
        "DINGTALK_OAPI_BASE",
        "DingTalk's old API address (failed-callback list); default "
        "https://oapi.dingtalk.com in production, the local sandbox in development",
        parse=_url,
    )
    dingtalk_calls_per_second: float = setting(
        "DINGTALK_CALLS_PER_SECOND",
        "calls per second each DingTalk API is sent, all function instances together: "
        "DingTalk refuses an app more than 20 per API (raise it if your edition allows more)",
        defaults.DINGTALK_CALLS_PER_SECOND,
        parse=_positive_float,
    )
    reconcile_after: int = setting(
        "RECONCILE_AFTER",
        "seconds an approval may stay pending before the reconciler asks DingTalk",
        defaults.RECONCILE_AFTER,
        parse=_positive,
    )
    dingtalk_process_code: str | None = setting(
        "DINGTALK_PROCESS_CODE",
        "the approval form's process code (PROC-...)",
        production=True,
    )
    dingtalk_originator_user_id: str | None = setting(
        "DINGTALK_ORIGINATOR_USER_ID",
        "the DingTalk userId approval instances are started as",
        production=True,
    )
    dingtalk_dept_id: int = setting(
        "DINGTALK_DEPT_ID",
        "the originator's department id; DingTalk needs it to start an instance "
        "(-1, the default: the root department)",
        defaults.DINGTALK_DEPT_ID,
        parse=int,
    )
    dingtalk_form_fields: tuple[tuple[str, str], ...] = setting(
        "DINGTALK_FORM_FIELDS",
        "the approval form's component names and what fills them: "
        "名称=field pairs separated by commas",
        defaults.FORM_FIELDS,
        parse=_form_fields,
    )
    dingtalk_agent_id: int | None = setting(
        "DINGTALK_AGENT_ID",
        "the DingTalk app's AgentId (its details page in the developer console): work "
        "notifications to the employees whose changes ran are sent as it; unset: none are sent",
        parse=int,
    )
    change_forms: ChangeForms = setting(
        "CHANGE_FORMS_FILE",
        "which change types wait for an approval in DingTalk, and which forms employees start "
        "changes on (TOML, see change-forms.example.toml); unset: every change runs at once",
        ChangeForms(),
        parse=_change_forms,
    )
    callback_private: bool | None = setting(
        "CHANGE_CALLBACK_PRIVATE",
        "1: change callbacks may go to loopback and private addresses (default outside "
        "production); 0: only to public ones, so a caller cannot aim the runner at the VPC",
        parse=_flag,
    )
    dingtalk_event_mode: str = setting(
        "DINGTALK_EVENT_MODE",
        "how approval events arrive: http (the callback function) or stream (`dingpass stream`)",
        "http",
        parse=_event_mode,
    )
    dingtalk_callback_token: str | None = setting(
        "DINGTALK_CALLBACK_TOKEN",
        "the event subscription's token (HTTP callback mode)",
        secret=True,
    )
    dingtalk_callback_aes_key: str | None = setting(
        "DINGTALK_CALLBACK_AES_KEY",
        "the event subscription's 43-character aes_key (HTTP callback mode)",
        secret=True,
    )
    dingtalk_callback_owner_key: str | None = setting(
        "DINGTALK_CALLBACK_OWNER_KEY",
        "what callbacks are encrypted for: the app key (default), "
        "or the corp id for the legacy register-callback API",
    )
    callback_tolerance: int = setting(
        "CALLBACK_TOLERANCE",
        "seconds a callback's timestamp may be off",
        defaults.CALLBACK_TOLERANCE,
        parse=_positive,
    )
    smtp_host: str = setting(
        "SMTP_HOST",
        "the mail server (development: the mail sandbox)",
        "127.0.0.1",
        production=True,
    )
    smtp_port: int = setting(
        "SMTP_PORT",
        "its port (25, 465 for ssl, 587 for starttls)",
        defaults.SMTP_PORT,
        parse=_positive,
    )
    smtp_security: str = setting(
        "SMTP_SECURITY", "none, starttls or ssl", "none", parse=_smtp_security
    )
    smtp_user: str | None = setting("SMTP_USER", "login for the mail server, if it wants one")
    smtp_password: str | None = setting("SMTP_PASSWORD", "its password", secret=True)
    smtp_ca_file: str | None = setting(
        "SMTP_CA_FILE",
        "CA bundle to trust for the mail server's certificate (default: the system's)",
    )
    mail_from: str = setting(
        "MAIL_FROM", "the sender of license mails", defaults.MAIL_FROM, production=True
    )
    job_attempts: int = setting(
        "JOB_ATTEMPTS", "runs a job gets before it is marked failed", 5, parse=_positive
    )
    runner_budget: int = setting(
        "RUNNER_BUDGET",
        "seconds one runner invocation may run jobs (below the function's timeout)",
        50,
        parse=_positive,
    )
    job_lease: int = setting(
        "JOB_LEASE",
        "seconds a runner holds a job before another may take it: longer than any job runs, "
        "since it is how long the work of a runner that died waits",
        300,
        parse=_positive,
    )
    runner_interval: int = setting(
        "RUNNER_INTERVAL",
        "seconds between runner passes when nothing kicks it",
        60,
        parse=_positive,
    )
    pending_reminder_hours: int = setting(
        "PENDING_REMINDER_HOURS",
        "hours an approval may stay pending before the approvers' robot is reminded, and again "
        "every as many hours",
        defaults.PENDING_REMINDER_HOURS,
        parse=_positive,
    )
    digest_hour: int = setting(
        "DIGEST_HOUR",
        "hour of the day (UTC, 0-23) from which the daily digest of failed jobs is sent",
        defaults.DIGEST_HOUR,
        parse=_hour,
    )
    fc_runner_function: str | None = setting(
        "FC_RUNNER_FUNCTION",
        "on Function Compute: the runner function to invoke asynchronously when work is "
        "recorded, as FC 3.0's function name (dingpass-runner, s.yaml) or FC 2.0's "
        "service/function (dingpass/runner, template.yml); unset: the timer alone runs it",
    )
    fc_endpoint: str | None = setting(
        "FC_ENDPOINT",
        "Function Compute's API address; default https://<account>.<region>.fc.aliyuncs.com "
        "from the request's x-fc-* headers",
        parse=_url,
    )
    license_signing_key: str | None = setting(
        "LICENSE_SIGNING_KEY",
        "Ed25519 private key that signs licenses: PEM text or a file path "
        "(make one with `dingpass license keygen`)",
        secret=True,
        production=True,
    )
    license_signing_key_passphrase: str | None = setting(
        "LICENSE_SIGNING_KEY_PASSPHRASE",
        "passphrase of the signing key, if it has one",
        secret=True,
    )
    license_public_keys: tuple[Path, ...] = setting(
        "LICENSE_PUBLIC_KEYS",
        "comma-separated public key files of earlier signing keys, "
        "so licenses they signed still verify",
        (),
        parse=_paths,
    )
    code_hash_key: str | None = setting(
        "CODE_HASH_KEY",
        "secret that activation codes are stored hashed with (at least 32 characters; "
        "`python -c 'import secrets; print(secrets.token_hex(32))'`); development: one made "
        "in DINGPASS_VAR_DIR. Changing it makes every stored code unknown",
        secret=True,
        production=True,
    )
    cloud_region: str = setting(
        "CLOUD_REGION",
        "Alibaba Cloud region the resource plugins create in",
        defaults.CLOUD_REGION,
    )
    cloud_endpoint: str | None = setting(
        "CLOUD_ENDPOINT",
        "one address for the VPC, ECS and RAM APIs; default in production each SDK's own "
        "endpoint for CLOUD_REGION, else the cloud sandbox (http://127.0.0.1:8005)",
        parse=_url,
    )
    cloud_access_key_id: str | None = setting(
        "CLOUD_ACCESS_KEY_ID",
        "access key of the resource plugins where Function Compute gives none (the sandbox's); "
        "unset: the standard Alibaba Cloud credential chain (ALIBABA_CLOUD_* variables, profile)",
    )
    cloud_access_key_secret: str | None = setting(
        "CLOUD_ACCESS_KEY_SECRET", "secret of CLOUD_ACCESS_KEY_ID", secret=True
    )
    robots: tuple[Robot, ...] = setting(
        "ROBOTS_FILE",
        "the group robots (TOML, see robots.example.toml) told of applications, deliveries, "
        "refusals and failed jobs; unset: none",
        (),
        parse=_robots,
        environ=True,
    )

    @property
    def database(self) -> str:
        """The database URL to use: the configured one, or SQLite under the var folder."""
        return self.database_url or f"sqlite:///{self.var_dir / defaults.SQLITE_FILE}"

    @property
    def dingtalk_api(self) -> str:
        """DingTalk's open API: as configured, or DingTalk's in production, else the sandbox."""
        if self.dingtalk_api_base:
            return self.dingtalk_api_base
        return defaults.DINGTALK_API if self.production else defaults.SANDBOX_URL

    @property
    def dingtalk_oapi(self) -> str:
        """DingTalk's old API: as configured, or DingTalk's in production, else the sandbox."""
        if self.dingtalk_oapi_base:
            return self.dingtalk_oapi_base
        return defaults.DINGTALK_OAPI if self.production else defaults.SANDBOX_URL

    @property
    def cloud_api(self) -> str | None:
        """The cloud's APIs: as configured, or the SDKs' own (None) in production, else the
        cloud sandbox, so that development never reaches a real account by default."""
        if self.cloud_endpoint:
            return self.cloud_endpoint
        return None if self.production else defaults.CLOUD_SANDBOX_URL

    @property
    def callbacks_may_reach_private(self) -> bool:
        """Whether change callbacks may go to loopback and private addresses."""
        if self.callback_private is not None:
            return self.callback_private
        return not self.production

    @property
    def callback_owner_key(self) -> str | None:
        """The key callbacks are encrypted for."""
        return self.dingtalk_callback_owner_key or self.dingtalk_app_key

    @property
    def production(self) -> bool:
        """Whether this deployment must not fall back on development defaults."""
        return self.environment == "production"

    @classmethod
    def from_env(cls, environ: Mapping[str, str], dotenv: Path | None = None) -> "Config":
        """Read every setting from ``environ``, over the values in the ``dotenv`` file."""
        source = {**_read_dotenv(dotenv), **environ}
        values = {}
        for item in fields(cls):
            raw = source.get(item.metadata["env"], "")
            if raw.strip():
                values[item.name] = _parse(item.metadata, raw.strip(), source)
        return cls(**values)


def _read_dotenv(path: Path | None) -> dict[str, str]:
    if path is None or not path.is_file():
        return {}
    from dotenv import dotenv_values  # only with a file: on FC the environment has it all

    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def _parse(meta: Mapping[str, Any], raw: str, environ: Mapping[str, str]) -> Any:
    try:
        return meta["parse"](raw, environ) if meta["environ"] else meta["parse"](raw)
    except ConfigError:
        raise  # says which file, robot and key already
    except ValueError as err:
        shown = "(hidden)" if meta["secret"] else repr(raw)
        raise ConfigError(f"{meta['env']}={shown} is not usable: {err}") from None
