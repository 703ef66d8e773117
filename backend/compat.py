"""What the backend uses from Python 3.11 that Function Compute's Python 3.10 lacks."""

import sys
from enum import Enum

if sys.version_info >= (3, 11):
    from enum import StrEnum

    import tomllib
else:
    import tomli as tomllib

    class StrEnum(str, Enum):
        """Members that are their values, in f-strings and logs as in SQL."""

        def __str__(self) -> str:
            return str(self.value)


__all__ = ["StrEnum", "tomllib"]
