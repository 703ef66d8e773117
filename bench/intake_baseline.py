"""The intake benchmark's baseline: a bare Flask app that stores each POSTed form with one
INSERT through SQLAlchemy, in a table of its own. gunicorn serves ``create_app()``."""

import os

from flask import Flask, request
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, create_engine, insert

metadata = MetaData()
forms = Table(
    "bench_baseline_forms",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("company", String(200), nullable=False),
    Column("form", Text, nullable=False),
)
DATABASE_VARIABLE = "BASELINE_DATABASE_URL"


def create_app(url: str | None = None) -> Flask:
    """The app on ``url``, by default the one in BASELINE_DATABASE_URL (utf8mb4 on MySQL)."""
    engine = create_engine(url or os.environ[DATABASE_VARIABLE])
    app = Flask("baseline")
    app.extensions["engine"] = engine

    @app.post("/applications")
    def submit() -> tuple[dict[str, int], int]:
        form = request.get_json()
        row = {"email": form["email"], "company": form["company"]}
        row["form"] = request.get_data(as_text=True)
        with engine.begin() as connection:
            stored = connection.execute(insert(forms).values(row)).inserted_primary_key
        assert stored is not None
        return {"id": stored[0]}, 201

    @app.get("/healthz")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
