"""Alembic's environment: always given a live connection by porchlight.hub.schema.

There is no alembic.ini: the schema module builds the Config in code and passes the
connection in `config.attributes["connection"]`, so migrations run inside the caller's
transaction (and, on PostgreSQL, under its advisory lock).
"""

from __future__ import annotations

from alembic import context

from porchlight.hub.schema import render_item, target_metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata(),
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    render_item=render_item,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
