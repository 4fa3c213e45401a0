"""The record under Alembic: a record written before migrations (the tables the previous release
made with `create_all`, rows in them) is refused until `valuation record upgrade`, which brings it
to this release's tables in place with nothing lost, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import importlib.util

import pytest
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

import cli
from tests.conftest import throwaway_postgres
from valuation.infra.settings import get_settings
from valuation.storage import migrations
from valuation.storage.records import Record, engine_for


def _previous_release(url: str) -> None:
    """The tables as the release before migrations made them (the baseline revision's DDL,
    which is that release's `create_all`, unstamped), with a quote and a sale in them."""
    spec = importlib.util.spec_from_file_location(
        "baseline", migrations.HERE / "versions" / "0001_baseline.py"
    )
    baseline = importlib.util.module_from_spec(spec)
    engine = engine_for(url)
    with engine.begin() as connection, Operations.context(MigrationContext.configure(connection)):
        spec.loader.exec_module(baseline)
        baseline.upgrade()
        at = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
        connection.execute(
            text(
                "INSERT INTO quotes (request_id, item, endpoint, served_at, listing_id, fans, "
                "violations, live_permission, verified, category, model_name, model_version, "
                "price_estimate) VALUES ('r1', 0, 'quote', :at, 'KS-1', 131300, true, false, "
                "true, '自媒体', 'm', '3', 4100.0)"
            ),
            {"at": at},
        )
        connection.execute(
            text(
                "INSERT INTO sales (request_id, reported_at, listing_id, price, sold_at, fans, "
                "violations, live_permission, verified, category, quote_id, model_version, "
                "price_estimate) VALUES ('r2', :at, 'KS-1', 4200.0, :day, 131300, true, false, "
                "true, '自媒体', 1, '3', 4100.0)"
            ),
            {"at": at, "day": dt.date(2026, 10, 30)},
        )
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_record(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'records.db'}"
        _previous_release(url)
        yield url
    else:
        with throwaway_postgres() as url:
            _previous_release(url)
            yield url


def test_an_old_record_is_refused_then_upgraded_in_place(old_record, monkeypatch, capsys):
    with pytest.raises(migrations.RecordOutdated, match="valuation record upgrade"):
        Record(old_record)
    monkeypatch.setenv("VALUATION_DATABASE_URL", old_record)
    get_settings.cache_clear()
    try:
        assert cli.main(["record", "upgrade"]) == 0
        assert f"revision {migrations.head()} (was none)" in capsys.readouterr().out
        assert cli.main(["record", "upgrade"]) == 0  # again: nothing to do, nothing lost
    finally:
        get_settings.cache_clear()
    record = Record(old_record)
    try:
        assert record.counts() == {"quotes": 1, "sales": 1}
        assert record.last_quote("KS-1")["price_estimate"] == 4100.0
        frame = record.sales_frame()  # an old sale is an accepted one: still trained on
        assert frame[["listing_id", "price", "fans", "category"]].values.tolist() == [
            ["KS-1", 4200.0, 131300, "自媒体"]
        ]
        columns = {c["name"] for c in inspect(record.engine).get_columns("sales")}
        assert {"reported_by", "status"} <= columns
        assert "api_keys" in inspect(record.engine).get_table_names()
    finally:
        record.close()


def test_a_new_record_starts_at_the_latest_revision(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    record = Record(url)
    try:
        with record.engine.connect() as connection:
            assert migrations.current(connection) == migrations.head()
        assert migrations.state(record.engine) == "current"
    finally:
        record.close()
