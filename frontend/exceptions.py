"""Errors of the frontend function, each turned into a clear answer or a start-up message.

FrontendError (Exception)
 +-- FrontendConfigError (ValueError)   a setting is missing or unusable: fix the variable
 +-- BackendError                       forwarding to the backend failed
      +-- BackendUnavailable     503    the backend could not be reached
      +-- BackendTimeout         504    the backend did not answer in time
"""


class FrontendError(Exception):
    """Base of every error the frontend raises on purpose."""


class FrontendConfigError(FrontendError, ValueError):
    """A frontend setting is missing or unusable."""


class BackendError(FrontendError):
    """Forwarding a request to the backend failed."""


class BackendUnavailable(BackendError):
    """The backend could not be reached (503)."""


class BackendTimeout(BackendError):
    """The backend did not answer in time (504)."""
