"""The record on the embedded SQLite file and on the machine's real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from valuation.records import MAX_GROUP_ROWS, Record, RecordUnavailable, now, quotes, sales


@pytest.fixture(params=["sqlite", "postgresql"])
def record(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'records.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    opened = Record(url)
    with opened.engine.begin() as connection:  # the PostgreSQL database lives for the session
        connection.execute(sales.delete())
        connection.execute(quotes.delete())
    yield opened
    opened.close()


def quote_row(request_id: str, listing_id: str | None = "L1", fans: int = 10_000, **extra) -> dict:
    return {
        "request_id": request_id,
        "item": 0,
        "endpoint": "quote",
        "served_at": now(),
        "listing_id": listing_id,
        "fans": fans,
        "violations": False,
        "live_permission": True,
        "verified": False,
        "category": "美食",
        "model_name": "m",
        "model_version": "1",
        "price_estimate": 1000.0,
        "request": '{"fans": "1W"}',
        "query": None,
        "answer": "{}",
        **extra,
    }


def sale_row(listing_id: str, price: float, **extra) -> dict:
    return {
        "request_id": "s",
        "reported_at": now(),
        "listing_id": listing_id,
        "price": price,
        "sold_at": dt.date(2026, 11, 24),
        "fans": 10_000,
        "violations": False,
        "live_permission": True,
        "verified": False,
        "category": "美食",
        "quote_id": None,
        "model_version": None,
        "price_estimate": None,
        **extra,
    }


def test_a_write_is_committed_when_its_future_is_done(record):
    record.write(quotes, [quote_row("a"), quote_row("b", fans=2**40)]).result(timeout=10)
    # A separate connection sees it: committed, not merely buffered.
    with record.engine.connect() as connection:
        stored = connection.execute(select(quotes.c.request_id, quotes.c.fans)).all()
    assert sorted(stored) == [("a", 10_000), ("b", 2**40)]
    assert record.last_quote("L1")["request_id"] == "b"
    assert record.last_quote("nobody") is None


def test_concurrent_writers_share_commits_and_lose_nothing(record):
    def write_many(prefix: str):
        for i in range(50):
            record.write(quotes, [quote_row(f"{prefix}{i}")]).result(timeout=30)

    threads = [threading.Thread(target=write_many, args=(f"t{n}-",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert record.counts()["quotes"] == 200


def test_a_group_is_capped_and_everything_still_lands(record):
    futures = [record.write(quotes, [quote_row(f"r{i}")] * 7_000) for i in range(4)]
    for future in futures:
        future.result(timeout=60)
    assert record.counts()["quotes"] == 28_000 > MAX_GROUP_ROWS


def test_a_failed_commit_fails_every_waiting_write_and_the_record_goes_on(record):
    bad = quote_row("bad")
    del bad["request_id"]  # NOT NULL: the database refuses the whole group
    with pytest.raises(RecordUnavailable, match="could not be written"):
        record.write(quotes, [quote_row("good"), bad]).result(timeout=10)
    assert record.counts()["quotes"] == 0  # the group is all or nothing
    record.write(quotes, [quote_row("after")]).result(timeout=10)
    assert record.counts()["quotes"] == 1


@contextmanager
def writer_blocked(record):
    """Holds the table locked, so that writes queue up behind the writer's first commit."""
    if record.engine.dialect.name == "sqlite":
        raw = sqlite3.connect(record.engine.url.database, isolation_level=None)
        raw.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            raw.execute("COMMIT")
            raw.close()
    else:
        with record.engine.connect() as connection, connection.begin():
            connection.exec_driver_sql("LOCK TABLE quotes IN EXCLUSIVE MODE")
            yield


def test_one_bad_write_does_not_sink_the_others_of_its_group(record):
    bad = quote_row("bad")
    del bad["request_id"]
    with writer_blocked(record):
        writes = [record.write(quotes, [quote_row("first")])]
        time.sleep(0.3)  # the writer is now waiting on the lock with the first write alone
        writes += [record.write(quotes, [quote_row(f"ok{i}")]) for i in range(19)]
        writes.insert(10, record.write(quotes, [bad]))  # grouped with the 19
    for i, write in enumerate(writes):
        if i == 10:
            with pytest.raises(RecordUnavailable):
                write.result(timeout=10)
        else:
            assert write.result(timeout=10) is None
    assert record.counts()["quotes"] == 20


def test_close_commits_what_is_waiting_and_then_refuses(record):
    pending = [record.write(quotes, [quote_row(f"p{i}")]) for i in range(100)]
    record.close()
    assert all(future.done() and future.exception() is None for future in pending)
    with pytest.raises(RecordUnavailable, match="closed"):
        record.write(quotes, [quote_row("late")]).result(timeout=1)


def test_live_sales_are_the_latest_scored_ones(record):
    rows = [sale_row(f"L{i}", 100.0 + i, model_version="1", price_estimate=110.0) for i in range(5)]
    rows.append(sale_row("unquoted", 50.0))
    record.write(sales, rows).result(timeout=10)
    live = record.recent_sales(3)
    assert [sale.price for sale in live] == [104.0, 103.0, 102.0]
    assert all(sale.model_version == "1" for sale in live)


def test_sales_frame_keeps_the_latest_report_of_each_listing(record):
    record.write(sales, [sale_row("A", 100.0), sale_row("B", 200.0)]).result(timeout=10)
    record.write(sales, [sale_row("A", 150.0)]).result(timeout=10)  # a correction
    frame = record.sales_frame()
    assert sorted(zip(frame["listing_id"], frame["price"], strict=True)) == [
        ("A", 150.0),
        ("B", 200.0),
    ]
    assert list(frame.columns) == [
        "listing_id",
        "fans",
        "violations",
        "live_permission",
        "verified",
        "category",
        "price",
        "sold_at",
    ]
    assert frame["sold_at"].iloc[0] == dt.date(2026, 11, 24)


def test_sqlite_record_is_wal_and_fully_synchronous(tmp_path):
    record = Record(f"sqlite:///{tmp_path / 'r.db'}")
    with record.engine.connect() as connection:
        cursor = connection.connection.cursor()
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    record.close()
    assert sqlite3.connect(tmp_path / "r.db").execute("select count(*) from quotes").fetchone() == (
        0,
    )
