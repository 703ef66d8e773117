"""The hook that answers a blueprint's routes only to signed applications allowed their scope.

The app factory keeps the database in ``app.extensions["database"]`` and the clock in
``app.extensions["clock"]``; the hook reads both from there.
"""

from collections.abc import Callable, Mapping
from datetime import datetime

from flask import Blueprint, current_app, g, request

from backend import defaults
from backend.apps.auth import authenticate, forget_old_nonces
from backend.apps.errors import NotAllowed
from backend.apps.store import ApiApp, write_scopes
from backend.request_body import whole_body
from backend.storage.database import Database

CLOCK = "clock"
"""The key of the app's clock in app.extensions."""


def require_app(blueprint: Blueprint, scope: str | Mapping[str, str]) -> None:
    """Answer ``blueprint``'s routes only to an enabled app allowed the route's scope.

    ``scope`` is every route's, or each route's by the name of its view function (a route
    left out answers 500: a bug). The app is kept in ``g.api_app``.
    """

    @blueprint.before_request
    def signed_by_an_app() -> None:
        g.api_app = signed_app()
        view = (request.endpoint or "").rsplit(".", 1)[-1]
        check_scope(g.api_app, scope if isinstance(scope, str) else scope[view])


def signed_app() -> ApiApp:
    """The enabled app that signed this request, its nonce now spent (AppAuthError if none)."""
    database: Database = current_app.extensions["database"]
    clock: Callable[[], datetime] = current_app.extensions[CLOCK]
    body, now = whole_body(defaults.MAX_BODY), clock()
    with database.transaction() as connection:
        app = authenticate(
            connection,
            request.method,
            request.path,
            request.query_string,
            request.headers,
            body,
            now,
        )
    # After, and on its own (backend.storage.nonces): only a signed request costs a write.
    with database.transaction() as connection:
        forget_old_nonces(connection, now)
    return app


def check_scope(app: ApiApp, scope: str) -> None:
    """NotAllowed, naming the command that grants it, unless ``app`` may do ``scope``."""
    if not app.may(scope):
        raise NotAllowed(app.name, scope, write_scopes(app.scopes | {scope}))
