"""Alembic's entry: runs on the connection backend.storage.migrate hands it."""

from alembic import context

from backend.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `dingpass db upgrade`, which passes the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
