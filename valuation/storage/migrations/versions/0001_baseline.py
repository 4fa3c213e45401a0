"""The record as releases before migrations made it (quotes and sales by `create_all`).

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

ROW_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _features() -> list[sa.Column]:
    return [
        sa.Column("fans", sa.BigInteger),
        sa.Column("violations", sa.Boolean),
        sa.Column("live_permission", sa.Boolean),
        sa.Column("verified", sa.Boolean),
        sa.Column("category", sa.Text),
    ]


def upgrade() -> None:
    op.create_table(
        "quotes",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False, index=True),
        sa.Column("item", sa.Integer, nullable=False),
        sa.Column("endpoint", sa.String(16), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("listing_id", sa.String(100)),
        *_features(),
        sa.Column("model_name", sa.Text),
        sa.Column("model_version", sa.String(32)),
        sa.Column("price_estimate", sa.Float),
        sa.Column("request", sa.Text),
        sa.Column("query", sa.Text),
        sa.Column("answer", sa.Text),
    )
    known = sa.text("listing_id IS NOT NULL")
    op.create_index(
        "ix_quotes_listing_id",
        "quotes",
        ["listing_id"],
        sqlite_where=known,
        postgresql_where=known,
    )
    op.create_table(
        "sales",
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(32), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("listing_id", sa.String(100), nullable=False, index=True),
        sa.Column("price", sa.Float, nullable=False),
        sa.Column("sold_at", sa.Date),
        *_features(),
        sa.Column("quote_id", ROW_ID),
        sa.Column("model_version", sa.String(32)),
        sa.Column("price_estimate", sa.Float),
    )
