"""The record on the embedded SQLite file and on the machine's real PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import threading
import time

import pytest
from sqlalchemy import select

from valuation.storage.records import INLINE_ROWS, Record, RecordUnavailable, now, quotes, sales


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


def gather(*writes):
    """Runs the writes concurrently on one event loop, as a server's requests are; each write's
    exception or None."""

    async def run():
        return await asyncio.gather(*writes, return_exceptions=True)

    return asyncio.run(run())


def counting_commits(record) -> list[int]:
    """Records the size (in writes) of every group the record commits."""
    sizes = []
    commit = record._commit

    def counted(group, *args):
        sizes.append(len(group))
        return commit(group, *args)

    record._commit = counted
    return sizes


def test_a_write_returns_once_committed(record):
    assert gather(record.write(quotes, [quote_row("a"), quote_row("b", fans=2**40)])) == [None]
    # A separate connection sees it: committed, not merely buffered.
    with record.engine.connect() as connection:
        stored = connection.execute(select(quotes.c.request_id, quotes.c.fans)).all()
    assert sorted(stored) == [("a", 10_000), ("b", 2**40)]
    last = record.last_quote("L1")
    assert last["request_id"] == "b"
    # Written by the event loop's fast path on SQLite: read back with the same types as Core's.
    assert isinstance(last["served_at"], dt.datetime)
    assert (last["violations"], last["live_permission"]) == (False, True)
    assert last["query"] is None and last["price_estimate"] == 1000.0
    assert record.last_quote("nobody") is None


def test_concurrent_writes_share_commits_and_lose_nothing(record):
    sizes = counting_commits(record)
    outcomes = gather(*(record.write(quotes, [quote_row(f"r{i}")]) for i in range(200)))
    assert outcomes == [None] * 200
    assert record.counts()["quotes"] == 200
    assert sum(sizes) == 200 and len(sizes) < 10  # grouped: not one commit per write


def test_writes_arriving_turn_after_turn_join_one_group(record):
    """Requests are read one turn of the event loop after another: a group waits for them while
    they keep coming (up to `GATHER_SECONDS`), and a lone write is still committed."""
    sizes = counting_commits(record)

    async def staggered(n: int):
        writes = []
        for i in range(n):
            writes.append(asyncio.ensure_future(record.write(quotes, [quote_row(f"t{i}")])))
            await asyncio.sleep(0)  # the next write comes a turn later
        return await asyncio.gather(*writes)

    assert asyncio.run(staggered(4)) == [None] * 4
    assert sizes == [4]
    assert asyncio.run(staggered(1)) == [None]
    assert sizes == [4, 1]


def test_a_group_stops_gathering_when_it_is_old_enough(record):
    sizes = counting_commits(record)

    async def steady_stream():
        writes = []
        for _ in range(300):  # a write every turn for at least 15 ms: 15 x GATHER_SECONDS
            time.sleep(0.00005)  # the request's own work
            writes.append(asyncio.ensure_future(record.write(quotes, [quote_row("s")])))
            await asyncio.sleep(0)
        return await asyncio.gather(*writes)

    assert asyncio.run(steady_stream()) == [None] * 300
    assert sum(sizes) == 300
    assert len(sizes) > 1  # a write in every turn did not hold the first one back for good


def test_big_groups_and_many_writes_all_land(record):
    outcomes = gather(
        *(record.write(quotes, [quote_row(f"b{i}")] * 5_000) for i in range(3)),
        *(record.write(quotes, [quote_row(f"s{i}")]) for i in range(2_500)),
    )
    assert outcomes == [None] * 2_503
    assert record.counts()["quotes"] == 17_500


def test_a_failed_commit_fails_its_write_and_the_record_goes_on(record):
    bad = quote_row("bad")
    del bad["request_id"]  # NOT NULL: the database refuses it
    [failure] = gather(record.write(quotes, [quote_row("good"), bad]))
    assert isinstance(failure, RecordUnavailable) and "refused" in str(failure)
    assert record.counts()["quotes"] == 0  # a write is all or nothing
    assert gather(record.write(quotes, [quote_row("after")])) == [None]
    assert record.counts()["quotes"] == 1


def test_one_bad_write_does_not_sink_the_others_of_its_group(record):
    bad = quote_row("bad")
    del bad["request_id"]
    sizes = counting_commits(record)
    writes = [record.write(quotes, [quote_row(f"ok{i}")]) for i in range(20)]
    writes.insert(10, record.write(quotes, [bad]))
    outcomes = gather(*writes)
    assert sizes[0] == 21  # they were one group
    assert isinstance(outcomes.pop(10), RecordUnavailable)
    assert outcomes == [None] * 20
    assert record.counts()["quotes"] == 20


def test_closing_commits_what_is_waiting_and_then_refuses(record):
    async def run():
        pending = [
            asyncio.ensure_future(record.write(quotes, [quote_row(f"p{i}")])) for i in range(100)
        ]
        await asyncio.sleep(0)  # they are waiting on their commit
        await record.aclose()
        assert record.counts()["quotes"] == 100  # committed before the close
        assert await asyncio.gather(*pending) == [None] * 100
        with pytest.raises(RecordUnavailable, match="closed"):
            await record.write(quotes, [quote_row("late")])

    asyncio.run(run())
    with pytest.raises(RecordUnavailable, match="closed"):
        record.write_now(quotes, [quote_row("late")])


def test_live_sales_are_the_latest_scored_ones(record):
    rows = [sale_row(f"L{i}", 100.0 + i, model_version="1", price_estimate=110.0) for i in range(5)]
    rows.append(sale_row("unquoted", 50.0))
    record.write_now(sales, rows)
    live = record.recent_sales(3)
    assert [sale.price for sale in live] == [104.0, 103.0, 102.0]
    assert all(sale.model_version == "1" for sale in live)


def test_sales_frame_keeps_the_latest_report_of_each_listing(record):
    record.write_now(sales, [sale_row("A", 100.0), sale_row("B", 200.0)])
    record.write_now(sales, [sale_row("A", 150.0)])  # a correction
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


def test_last_quote_of_a_listing_is_found_through_the_index(tmp_path):
    # Quotes without a listing id stay out of the index; a lookup by id must still use it.
    record = Record(f"sqlite:///{tmp_path / 'r.db'}")
    query = select(quotes).where(quotes.c.listing_id == "L1").order_by(quotes.c.id.desc()).limit(1)
    with record.engine.connect() as connection:
        compiled = query.compile(connection)  # `?` marks: the plan of a bound listing id
        values = tuple(compiled.params[name] for name in compiled.positiontup)
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)
        assert "USING INDEX ix_quotes_listing_id" in " ".join(row[-1] for row in plan)
    record.close()


def test_sqlite_record_is_wal(tmp_path):
    record = Record(f"sqlite:///{tmp_path / 'r.db'}")
    with record.engine.connect() as connection:
        cursor = connection.connection.cursor()
        assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert cursor.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    record.close()
    assert sqlite3.connect(tmp_path / "r.db").execute("select count(*) from quotes").fetchone() == (
        0,
    )


@pytest.mark.parametrize("rows", [1, INLINE_ROWS + 1], ids=["on the loop", "in a thread"])
@pytest.mark.parametrize(
    "table, row",
    [
        (sales, sale_row("same", 1234.5, reported_at=dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC))),
        (quotes, quote_row("same", violations=True, served_at=dt.datetime(2026, 3, 1, 12))),
        (quotes, {"request_id": "few", "item": 0, "endpoint": "quote", "served_at": now()}),
    ],
)
def test_the_fast_paths_store_exactly_what_core_stores(tmp_path, table, row, rows):
    # A small group goes through the event loop's raw connection, a big one through the thread's.
    record = Record(f"sqlite:///{tmp_path / 'r.db'}")
    assert gather(record.write(table, [row] * rows)) == [None]
    record.write_now(table, [row])  # SQLAlchemy Core
    record.close()
    columns = ", ".join(f"{c.name}, typeof({c.name})" for c in table.columns if c.name != "id")
    *fast, core = sqlite3.connect(tmp_path / "r.db").execute(f"SELECT {columns} FROM {table.name}")
    assert fast == [core] * rows


def test_big_groups_in_a_thread_keep_the_wal_checkpointed(tmp_path):
    # The event loop's connection leaves checkpoints to a thread every 1,000 of its commits; a
    # stream of big batches, committed in a thread, must not grow the WAL without end meanwhile.
    path = tmp_path / "r.db"
    record = Record(f"sqlite:///{path}")
    batch = [quote_row("big", answer="x" * 2_000) for _ in range(1_000)]  # ~2 MB a commit
    for _ in range(20):
        assert gather(record.write(quotes, batch)) == [None]
    wal = path.with_name("r.db-wal").stat().st_size
    record.close()
    assert wal < 12e6, f"the WAL holds {wal / 1e6:.0f} MB after 40 MB of batches"


def hold_lock(path, seconds: float) -> threading.Thread:
    """Another process's writer: holds the SQLite file locked for `seconds`."""
    locked = threading.Event()

    def hold():
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    holder = threading.Thread(target=hold)
    holder.start()
    locked.wait(5)
    return holder


def test_a_locked_file_is_waited_for_off_the_event_loop(tmp_path):
    path = tmp_path / "r.db"
    record = Record(f"sqlite:///{path}")
    holder = hold_lock(path, 0.5)

    async def run():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.ensure_future(ticker())
        await record.write(quotes, [quote_row("waited")])
        ticking.cancel()
        return ticks

    ticks = asyncio.run(run())
    holder.join()
    assert ticks >= 20  # the loop kept serving while the write waited for the lock
    assert record.last_quote("L1")["request_id"] == "waited"
    record.close()


def test_a_write_that_waits_too_long_is_refused(tmp_path):
    path = tmp_path / "r.db"
    record = Record(f"sqlite:///{path}", timeout=0.2)
    holder = hold_lock(path, 1.0)
    [failure] = gather(record.write(quotes, [quote_row("late")]))
    holder.join()
    assert isinstance(failure, RecordUnavailable) and "within 0.2 s" in str(failure)
    record.close()


def test_no_write_waits_without_limit_behind_a_commit_that_hangs(tmp_path):
    """A commit that does not return: its own writes and the writes queued behind it in the same
    flush are answered RecordUnavailable after one timeout, the writes that come while it hangs
    within about two; none waits for it without limit. (Before, the writes behind it waited as
    long as it did.)"""
    record = Record(f"sqlite:///{tmp_path / 'records.db'}", timeout=0.2)
    release = threading.Event()
    commit = record._commit

    def hanging(group, inserts=None):
        if inserts is record._thread_inserts:  # the commits sent to a thread
            release.wait(30)
        return commit(group, inserts)

    record._commit = hanging

    async def scenario():
        # 1,001 one-row writes in one turn of the loop: the first 1,000 go to a thread as one
        # group (more rows than INLINE_ROWS) and hang; the last waits behind them.
        writes = [
            asyncio.ensure_future(record.write(quotes, [quote_row(f"r{i}")])) for i in range(1001)
        ]
        started = time.monotonic()
        outcomes = await asyncio.wait_for(
            asyncio.gather(*writes, return_exceptions=True), timeout=5
        )
        later = await asyncio.wait_for(
            asyncio.gather(record.write(quotes, [quote_row("late")]), return_exceptions=True), 5
        )
        seconds = time.monotonic() - started
        release.set()  # the hung commit ends (asyncio.run waits for its thread)
        return outcomes, later, seconds

    try:
        outcomes, later, seconds = asyncio.run(scenario())
        assert all(isinstance(o, RecordUnavailable) for o in outcomes)
        # A write while it hangs is answered too: committed on the loop (SQLite's other
        # connection; the hung one holds no lock) or refused, never left waiting.
        assert later[0] is None or isinstance(later[0], RecordUnavailable)
        assert seconds < 2.0
    finally:
        release.set()
        time.sleep(0.2)
        record.close()
