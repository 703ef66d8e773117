"""Reading a vendor's TOML file (the catalogue, the robots) with errors that name the setting."""

from pathlib import Path
from typing import Any

from backend.compat import tomllib
from backend.exceptions import ConfigError


def read_toml(setting: str, path: Path) -> dict[str, Any]:
    """The file ``setting`` points at, parsed; ConfigError naming both if it cannot be read."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{setting}: cannot read {path} ({err.strerror})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{setting}: {path} is not valid TOML ({err})") from None
