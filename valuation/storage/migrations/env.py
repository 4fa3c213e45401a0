"""Alembic's entry: run on the connection `valuation.storage.migrations` hands it."""

from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
