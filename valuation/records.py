"""The record: every quote and appraisal served, and the sales the marketplace reports back.

SQLAlchemy Core over the embedded SQLite file (WAL, `synchronous=FULL`) or any database named by
`VALUATION_DATABASE_URL` (PostgreSQL is tested). One writer thread commits what the request handlers
hand it in groups: a handler waits for the commit that holds its rows before it answers, so an
answer the client saw is on disk, while one commit (one fsync) serves every request that arrived
meanwhile.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
)

from valuation.parsing import MAX_LISTING_ID_LENGTH
from valuation.schema import FEATURES, LISTING_ID, PRICE, SOLD_AT

log = logging.getLogger("valuation.records")

_COLUMN_TYPES = {"count": BigInteger, "flag": Boolean, "text": Text}
MAX_GROUP_ROWS = 20_000
"""A commit takes what is waiting, up to this many rows (two full batches of quotes)."""


def _features() -> list[Column]:
    return [Column(field.name, _COLUMN_TYPES[field.kind]()) for field in FEATURES]


_ROW_ID = BigInteger().with_variant(Integer, "sqlite")
"""64-bit on a server (a busy marketplace outgrows 2^31 quotes); SQLite's rowid is 64-bit already
and autoincrements only as INTEGER."""
metadata = MetaData()
quotes = Table(
    "quotes",
    metadata,
    Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False, index=True),
    Column("item", Integer, nullable=False, doc="Position in a batch; 0 for a single listing."),
    Column("endpoint", String(16), nullable=False),
    Column("served_at", DateTime(timezone=True), nullable=False),
    Column(LISTING_ID.name, String(MAX_LISTING_ID_LENGTH), index=True),
    *_features(),
    Column("model_name", Text),
    Column("model_version", String(32)),
    Column("price_estimate", Float),
    Column("request", Text, doc="The listing as the client sent it, and the query's options."),
    Column("query", Text, doc="The query string: range level, explain, comparables."),
    Column("answer", Text, doc="The answer for this listing, as JSON."),
)
sales = Table(
    "sales",
    metadata,
    Column("id", _ROW_ID, primary_key=True, autoincrement=True),
    Column("request_id", String(32), nullable=False),
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Column(LISTING_ID.name, String(MAX_LISTING_ID_LENGTH), nullable=False, index=True),
    Column(PRICE.name, Float, nullable=False),
    Column(SOLD_AT.name, Date),
    *_features(),
    Column("quote_id", _ROW_ID, doc="The listing's last quote before the sale, if any."),
    Column("model_version", String(32), doc="The model behind that quote."),
    Column("price_estimate", Float, doc="That quote's estimate: live accuracy compares it."),
)


class RecordUnavailable(RuntimeError):
    """The record could not be written: the answer it belongs to must not be given."""


@dataclass(frozen=True)
class LiveSale:
    model_version: str
    price: float
    price_estimate: float


def _engine(url: str):
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection, _):
            # WAL lets readers (metrics, sales lookups) work beside the writer; FULL makes each
            # commit survive a power cut, not only a killed process (measured: ~0.25 ms a commit).
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


class Record:
    """The open record. `write` hands rows to the writer thread and returns a future that is done
    once they are committed; the readers run on the caller's thread."""

    def __init__(self, url: str):
        self.engine = _engine(url)
        metadata.create_all(self.engine)
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(
            target=self._write_groups, name="record-writer", daemon=True
        )
        self._writer.start()

    # -- writing -------------------------------------------------------------------------------
    def write(self, table: Table, rows: list[dict]) -> Future:
        done: Future = Future()
        if not self._writer.is_alive():
            done.set_exception(RecordUnavailable("the record is closed"))
        else:
            self._inbox.put((table, rows, done))
        return done

    def close(self) -> None:
        """Commits what is waiting, then stops the writer."""
        if self._writer.is_alive():
            self._inbox.put(None)
            self._writer.join()
        self.engine.dispose()

    def _write_groups(self) -> None:
        while True:
            first = self._inbox.get()
            if first is None:
                return
            group, size, closing = [first], len(first[1]), False
            while size < MAX_GROUP_ROWS:
                try:
                    waiting = self._inbox.get_nowait()
                except queue.Empty:
                    break
                if waiting is None:
                    closing = True
                    break
                group.append(waiting)
                size += len(waiting[1])
            self._commit(group)
            if closing:
                return

    def _commit(self, group) -> None:
        by_table: dict[Table, list[dict]] = {}
        for table, rows, _ in group:
            by_table.setdefault(table, []).extend(rows)
        try:
            with self.engine.begin() as connection:
                for table, rows in by_table.items():
                    connection.execute(table.insert(), rows)
        except Exception as error:
            if len(group) > 1:
                # One request's rows must not sink the others': each is written on its own.
                for write in group:
                    self._commit([write])
                return
            log.exception("record write failed")
            group[0][2].set_exception(
                RecordUnavailable(f"the record could not be written: {error}")
            )
            return
        for _, _, done in group:
            done.set_result(None)

    # -- reading -------------------------------------------------------------------------------
    def last_quote(self, listing_id: str) -> dict | None:
        query = (
            select(quotes)
            .where(quotes.c.listing_id == listing_id)
            .order_by(quotes.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return dict(row) if row else None

    def recent_sales(self, n: int) -> list[LiveSale]:
        """The last `n` reported sales that a quote of ours had priced beforehand."""
        query = (
            select(sales.c.model_version, sales.c.price, sales.c.price_estimate)
            .where(sales.c.price_estimate.is_not(None))
            .order_by(sales.c.id.desc())
            .limit(n)
        )
        with self.engine.connect() as connection:
            return [LiveSale(*row) for row in connection.execute(query)]

    def recent_listings(self, n: int) -> pd.DataFrame:
        """The features of the last `n` listings quoted, the population the model sees now."""
        query = select(*(quotes.c[f.name] for f in FEATURES)).order_by(quotes.c.id.desc()).limit(n)
        with self.engine.connect() as connection:
            return pd.DataFrame(connection.execute(query).all(), columns=[f.name for f in FEATURES])

    def sales_frame(self) -> pd.DataFrame:
        """Every reported sale with its listing, the latest report per listing winning (a report
        can correct an earlier one): the training table of `valuation train --from-records`."""
        latest = select(func.max(sales.c.id)).group_by(sales.c.listing_id)
        columns = [sales.c[f.name] for f in (LISTING_ID, *FEATURES, PRICE, SOLD_AT)]
        query = select(*columns).where(sales.c.id.in_(latest)).order_by(sales.c.id)
        with self.engine.connect() as connection:
            return pd.DataFrame(connection.execute(query).all(), columns=[c.name for c in columns])

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar()
                for table in (quotes, sales)
            }


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
