"""The type of a composed mail, with its header types stated rather than left as Any."""

from email.message import EmailMessage
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypeAlias

    # With the default policy, headers are read as str subclasses and set from str.
    Message: TypeAlias = EmailMessage[str, str]
else:
    Message = EmailMessage  # the stdlib class is not subscriptable at run time

__all__ = ["Message"]
