"""The sales on record as a training file: `valuation train --from-records` names (and hashes) a
file that stays, as it does for an export."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from valuation.infra.settings import Settings
from valuation.loading import write_table
from valuation.storage.records import Record


class NoSalesOnRecord(LookupError):
    """`--from-records` found no reported sales to train on."""


def snapshot_records(settings: Settings) -> Path:
    """The sales reported to the service, written to `<home>/records/` as a Parquet file: the run
    then names (and hashes) a file that stays, as it does for an export."""
    record = Record(settings.records)
    try:
        sales = record.sales_frame()
    finally:
        record.close()
    if sales.empty:
        raise NoSalesOnRecord(
            f"no sales are on record at {_safe_url(settings.records)}: "
            "the marketplace reports them with POST /v1/sales"
        )
    folder = settings.home.resolve() / "records"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return write_table(sales, folder / f"sales-{stamp}.parquet")


def _safe_url(url: str) -> str:
    """A database URL without its password, fit for a message."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
