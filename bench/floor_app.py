"""The cold-start floor: the least a function that touches the database does before its first
good answer. Flask, a SQLAlchemy engine on DATABASE_URL and its driver, answering POST
/initialize (FC's lifecycle hook) with one query, as each dingpass function's /initialize does.
bench/cold_start.py serves it with bootstrap's own gunicorn command line in place of a
function's app, beside bench/hello_app.py, so its figures say how much of a function's start
is the stack every database function needs, and how much is dingpass's own."""

import os

from flask import Flask
from sqlalchemy import create_engine, text

# Plain TCP, as dingpass connects when its URL (the bench's, too) asks for no TLS: PyMySQL's own
# default loads the system's CA list for every connection (backend/storage/database.py).
engine = create_engine(os.environ["DATABASE_URL"], connect_args={"ssl_disabled": True})
app = Flask("floor")


@app.post("/initialize")
def initialize() -> dict[str, str]:
    """One query, on a connection the pool opens for it."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    return {"status": "initialized"}
