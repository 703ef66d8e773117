"""Function Compute's lifecycle hooks for a custom runtime: POST /initialize, GET /pre-stop."""

from flask import Flask
from sqlalchemy import text

from backend.storage.database import Database

HOOKS = {"/initialize", "/pre-stop"}


def register(app: Flask, database: Database) -> None:
    """Warm the connection pool when an instance starts; release it before the instance stops."""

    @app.post("/initialize")
    def initialize() -> dict[str, str]:
        with database.transaction() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "initialized"}

    @app.get("/pre-stop")
    def pre_stop() -> dict[str, str]:
        database.dispose()  # FC freezes, then kills, instances: leave no connection half-open
        return {"status": "stopped"}
