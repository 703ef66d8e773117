"""The proxy hop's floor: the least a Flask function that forwards a status read does.

GET /api/applications/<token> goes on to BACKEND_URL's /applications/<token>, signed with
PROXY_SECRET as the frontend signs it, over one kept-alive http.client connection per thread;
the answer's status and body come back. Nothing else: no pool, no FC credentials, no checks of
the token or the client's address, no error pages. bench/proxy_hop.py serves it with
bootstrap's own gunicorn command line in place of the frontend's app, beside the frontend, so
its figures say how much of the hop is the stack any proxy on it pays (gunicorn's worker,
Flask, the standard library's HTTP client, one more loopback crossing), and how much is
dingpass's own.
"""

import http.client
import os
import threading
import time
from urllib.parse import urlsplit

from flask import Flask, Response, request

from frontend.signed_requests import signed_headers

BACKEND = urlsplit(os.environ["BACKEND_URL"])
SECRET = os.environ["PROXY_SECRET"].encode()
connections = threading.local()
app = Flask("proxy_floor")


@app.get("/healthz")
def health() -> dict[str, str]:
    """Up: what bench/served.py waits for."""
    return {"status": "ok"}


@app.get("/api/applications/<token>")
def status(token: str) -> Response:
    """The backend's answer to the signed status read."""
    path = f"/applications/{token}"
    ip = request.remote_addr or ""
    headers = signed_headers(SECRET, "GET", path, int(time.time()), ip, None, b"")
    connection = _connection()
    connection.request("GET", path, headers=headers)
    answer = connection.getresponse()
    return Response(answer.read(), answer.status, mimetype="application/json")


def _connection() -> http.client.HTTPConnection:
    if not hasattr(connections, "backend"):
        connections.backend = http.client.HTTPConnection(BACKEND.hostname, BACKEND.port)
    connection: http.client.HTTPConnection = connections.backend
    return connection
