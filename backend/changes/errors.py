"""Errors of the changes' own commands (the API's are backend.exceptions.ApiError's).

ChangeError (DingpassError)
 +-- UnknownChange        no change has that id
 +-- CleanupRefused       the change is not in a state whose resources may be deleted
 +-- CleanupIncomplete    some resources could not be deleted; the rest were
"""

from backend.exceptions import DingpassError


class ChangeError(DingpassError):
    """A command about a change could not do what was asked."""


class UnknownChange(ChangeError):
    """No change has the id given."""


class CleanupRefused(ChangeError):
    """The change's resources may not be deleted now (it is running, or it succeeded)."""


class CleanupIncomplete(ChangeError):
    """The cloud kept some of the change's resources; those deleted are recorded."""
