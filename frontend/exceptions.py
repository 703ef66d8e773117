"""Errors of the frontend function, each turned into a clear answer or a start-up message.

FrontendError (Exception)
 +-- FrontendConfigError (ValueError)   a setting is missing or unusable: fix the variable
 +-- BackendError                       forwarding to the backend failed
 |    +-- BackendUnavailable     503    the backend could not be reached
 |    +-- BackendTimeout         504    the backend did not answer in time
 +-- RequestRefused (ValueError)        a public request that is not forwarded, with its reason
      +-- BadRequest             400    an unusable parameter, header, body or forwarded address
      +-- UnsupportedMediaType   415    a body that is not declared as JSON
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


class RequestRefused(FrontendError, ValueError):
    """A public request refused before it reaches the backend, with a message in both languages."""

    status = 400
    code = "bad_request"

    def __init__(self, zh: str, en: str, fields: dict[str, dict[str, str]] | None = None) -> None:
        super().__init__(en)
        self.message = {"zh": zh, "en": en}
        self.fields = fields


class BadRequest(RequestRefused):
    """A parameter, header, body or forwarded address that cannot be used (400)."""


class UnsupportedMediaType(RequestRefused):
    """A body that is not declared as JSON (415)."""

    status, code = 415, "unsupported_media_type"
