"""The record's schema under Alembic: `valuation record upgrade` brings a record written by an
earlier release to this code's tables in place, nothing lost.

- A new, empty database gets this code's tables and is stamped at the latest revision.
- A record from before migrations (tables made by `create_all`, no `alembic_version`) is the
  baseline revision: stamped 0001, then upgraded.
- After the revisions, a feature the schema declares and the tables lack (a field added by
  docs/fields.md's recipe) gets its column: the listing's fields need no migration of their own.

`Record` refuses a database that is behind, naming the command that upgrades it.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Column, inspect
from sqlalchemy.engine import Connection, Engine

from valuation.schema import FEATURES

HERE = Path(__file__).parent


class RecordOutdated(RuntimeError):
    """The record's database is behind this code: `valuation record upgrade` brings it up."""


def _config(connection: Connection):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    from alembic.script import ScriptDirectory

    config = _config(None)
    return ScriptDirectory.from_config(config).get_current_head()


def current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _missing_features(connection: Connection) -> list[tuple[str, Column]]:
    from valuation.storage.records import feature_column

    tables = inspect(connection)
    missing = []
    for table in ("quotes", "sales"):
        have = {column["name"] for column in tables.get_columns(table)}
        missing += [(table, feature_column(f)) for f in FEATURES if f.name not in have]
    return missing


def state(engine: Engine) -> str:
    """ "empty", "current", or "behind"."""
    with engine.connect() as connection:
        tables = set(inspect(connection).get_table_names())
        if not tables & {"quotes", "sales"}:
            return "empty"
        if current(connection) != head() or _missing_features(connection):
            return "behind"
        return "current"


def create(engine: Engine) -> None:
    """This code's tables in an empty database, stamped at the latest revision."""
    from alembic import command

    from valuation.storage.records import metadata

    with engine.begin() as connection:
        metadata.create_all(connection)
        command.stamp(_config(connection), "head")


def upgrade(engine: Engine) -> tuple[str | None, str, list[str]]:
    """(revision before, revision after, columns added for the schema's features)."""
    from alembic import command
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    if state(engine) == "empty":
        create(engine)
        return None, head(), []
    with engine.begin() as connection:
        before = current(connection)
        if before is None:  # tables from before migrations: the baseline
            command.stamp(_config(connection), "0001")
        command.upgrade(_config(connection), "head")
        added = []
        operations = Operations(MigrationContext.configure(connection))
        for table, column in _missing_features(connection):
            operations.add_column(table, column)
            added.append(f"{table}.{column.name}")
        return before, current(connection), added
