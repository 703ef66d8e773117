"""The frontend's settings: a few of the deployment's variables, read once at start-up.

The names are the backend Config's (one deployment, one set of variables); a test holds
the two lists together. This module reads only the mapping it is given.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from frontend.exceptions import FrontendConfigError
from frontend.fc_signature import FcScheme, scheme_for

STATIC_DIR = Path(__file__).parent / "static"
AUTHORITY = re.compile(
    r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+(?:%25[A-Za-z0-9._~-]+)?\])(?::[0-9]{1,5})?"
)
"""BACKEND_URL's host and port, as frontend/backend_pool.py connects to them: a name or IPv4
address, or an IPv6 address in brackets (with its %25-escaped zone), and an optional port."""


@dataclass(frozen=True)
class FrontendConfig:
    """What the public function needs to know."""

    public_base_url: str = "http://127.0.0.1:8000"
    backend_url: str = "http://127.0.0.1:8001"
    proxy_secret: str = ""
    catalogue_file: Path = Path("catalogue.toml")
    trusted_proxy_hops: int = 0
    backend_timeout: float = 5.0
    static_dir: Path = STATIC_DIR

    @property
    def fc_scheme(self) -> FcScheme:
        """How Function Compute wants calls to the backend's trigger signed, from BACKEND_URL.

        ``template.yml`` names the backend by its FC 2.0 path (``.../2016-08-15/proxy/dingpass/
        backend``): ``fc2``. ``s.yaml`` gives its FC 3.0 trigger URL: ``fc3``. Either is used
        only when FC hands the request credentials; locally the HMAC signature goes alone.
        """
        return scheme_for(self.backend_url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "FrontendConfig":
        """Read the settings from ``environ``; defaults suit one machine."""
        values: dict[str, object] = {}
        for name, env, parse in _VARIABLES:
            if environ.get(env, "").strip():
                try:
                    values[name] = parse(environ[env].strip())
                except ValueError as err:
                    raise FrontendConfigError(f"{env} is not usable: {err}") from None
        return cls(**values)  # type: ignore[arg-type]


def _backend_url(value: str) -> str:
    """BACKEND_URL without its trailing slash; ValueError unless an http(s) URL with a host.

    Checked as strictly as the backend's pool connects (frontend/backend_pool.py): a host with
    a space, say, would otherwise fail every proxied request instead of the start.
    """
    if " " in value or not value.isprintable():
        raise ValueError("it has a space or a control character")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("give the backend's http:// or https:// URL, with its host")
    if not AUTHORITY.fullmatch(parts.netloc):
        raise ValueError(
            f"{parts.netloc!r} is not a host name or an IP address ([...] for IPv6), with an"
            " optional :port"
        )
    parts.port  # noqa: B018 -- raises ValueError for a port that is not a number up to 65535
    try:
        parts.hostname.encode("idna")  # what the resolver is given: no empty or overlong label
    except UnicodeError:
        raise ValueError(f"{parts.hostname!r} is not a host name the resolver takes") from None
    return value.rstrip("/")


_VARIABLES = (
    ("public_base_url", "PUBLIC_BASE_URL", lambda v: v.rstrip("/")),
    ("backend_url", "BACKEND_URL", _backend_url),
    ("proxy_secret", "PROXY_SECRET", str),
    ("catalogue_file", "CATALOGUE_FILE", Path),
    ("trusted_proxy_hops", "TRUSTED_PROXY_HOPS", int),
    ("backend_timeout", "BACKEND_TIMEOUT", float),
)
ENVIRONMENT_VARIABLES = tuple(env for _, env, _ in _VARIABLES)
