"""The record: every quote and appraisal served, and the sales the marketplace reports back.

SQLAlchemy Core over the embedded SQLite file (WAL) or any database named by
`VALUATION_DATABASE_URL` (PostgreSQL is tested). A handler waits for the commit that holds its
rows before it answers, so an answer the client saw is on record; one commit serves every request
that arrived meanwhile (group commit), so waiting costs little.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import operator
import sqlite3
from contextlib import suppress
from dataclasses import dataclass

import pandas as pd
import sqlalchemy.exc
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    select,
    update,
)

from valuation.schema import FEATURES, LISTING_ID, MAX_LISTING_ID_LENGTH, PRICE, SOLD_AT

log = logging.getLogger("valuation.storage.records")

_COLUMN_TYPES = {"count": BigInteger, "flag": Boolean, "text": Text}
CHECKPOINT_COMMITS = 1_000
"""A passive WAL checkpoint in a thread after this many commits on the event loop."""
MAX_GROUP_WRITES = 1_000
"""A commit takes what is waiting, up to this many requests' rows."""
INLINE_ROWS = 200
"""SQLite groups up to this many rows are committed on the event loop itself (~3 ms at most)."""
GATHER_SECONDS = 0.001
"""A group waits for more writes while they keep coming, a turn of the event loop at a time, for
at most this long after its first write."""


def feature_column(field) -> Column:
    """A listing field's column, typed by its kind (nullable: a record that gains a field keeps
    its earlier rows)."""
    return Column(field.name, _COLUMN_TYPES[field.kind]())


def _features() -> list[Column]:
    return [feature_column(field) for field in FEATURES]


ACCEPTED, SUSPECT, CONFIRMED, REJECTED = "accepted", "suspect", "confirmed", "rejected"
"""A reported sale's status: only accepted and confirmed sales are trained on."""
TRAINED_ON = (ACCEPTED, CONFIRMED)
HISTORY_QUOTES = 1_000
"""A listing's history holds at most its latest this-many quotes."""
SUSPECT_COLUMNS = ("id", "listing_id", "price", "sold_at", "reported_at", "reported_by", "status")

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
    Column(LISTING_ID.name, String(MAX_LISTING_ID_LENGTH)),
    *_features(),
    Column("model_name", Text),
    Column("model_version", String(32)),
    Column("price_estimate", Float),
    Column("request", Text, doc="The listing as the client sent it, and the query's options."),
    Column("query", Text, doc="The query string: range level, explain, comparables."),
    Column("answer", Text, doc="The answer for this listing, as JSON."),
)
# A seller's instant quote has no listing id, and nothing looks quotes up by a missing one: they
# stay out of the index (one b-tree fewer to write in their commit). `listing_id = ?` implies
# NOT NULL, so both databases use it for `Record.last_quote`.
_known_listing = quotes.c.listing_id.is_not(None)
Index(
    "ix_quotes_listing_id",
    quotes.c.listing_id,
    sqlite_where=_known_listing,
    postgresql_where=_known_listing,
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
    Column("reported_by", String(64), doc="The name of the API key that reported it."),
    Column(
        "status",
        String(16),
        nullable=False,
        default=ACCEPTED,
        server_default=ACCEPTED,
        doc="accepted; suspect (far outside its listing's price distribution: kept out of "
        "training until confirmed); confirmed or rejected by an operator.",
    ),
)
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("key_sha256", String(64), nullable=False, unique=True, doc="Never the key itself."),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
)


class RecordUnavailable(RuntimeError):
    """The record could not be written: the answer it belongs to must not be given."""


@dataclass(frozen=True)
class LiveSale:
    model_version: str
    price: float
    price_estimate: float


def engine_for(url: str):
    """The record's engine, without preparing its tables (`valuation record upgrade`)."""
    return _engine(url)


def _engine(url: str):
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(connection, _):
            # WAL lets readers (metrics, sales lookups) work beside the writer. NORMAL: a commit
            # is in the WAL file, in the OS's hands, when it returns, so it survives the process
            # (kill -9, a crash) but not a power cut; FULL's fsync would cost ~0.5 ms a commit
            # on the event loop. A record that must survive power cuts belongs on a server.
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # A server that stops answering must cost a request a 503, not a wait without end.
    timeouts = {"connect_timeout": 5, "options": "-c statement_timeout=10000"}
    return create_engine(
        url, pool_pre_ping=True, connect_args=timeouts if url.startswith("postgresql") else {}
    )


class Busy(Exception):
    """The SQLite file is locked by another writer right now."""


def _bind(column: Column, dialect):
    return column.type.dialect_impl(dialect).bind_processor(dialect)


class _Values:
    """A row (dict) as the tuple of its table's columns, a missing one as NULL, each value through
    its column type's bind processor where the dialect has one (dates): what Core binds. Only
    those few columns are converted one by one; the rest are taken at once. Flags are left as
    they are: sqlite3 binds True and False as 1 and 0 itself, which is what Core stores."""

    def __init__(self, columns: list[Column], dialect):
        self.names = [column.name for column in columns]
        self.take = operator.itemgetter(*self.names)
        # A missing value of a column with a Python-side default is that default, as in Core.
        self.defaults = {
            column.name: column.default.arg
            for column in columns
            if column.default is not None and column.default.is_scalar
        }
        self.converted = [
            (position, convert)
            for position, column in enumerate(columns)
            if not isinstance(column.type, Boolean)
            and (convert := _bind(column, dialect)) is not None
        ]

    def __call__(self, row: dict) -> list:
        try:
            values = list(self.take(row))
        except KeyError:
            values = [row.get(name, self.defaults.get(name)) for name in self.names]
        for position, convert in self.converted:
            if values[position] is not None:
                values[position] = convert(values[position])
        return values


class _SqliteInserts:
    """A SQLite connection of the record's own: a plain `executemany` per table, values converted
    by the dialect's own bind processors (so rows are stored exactly as Core stores them), which
    costs a fraction of a Core `execute` (10,000 rows: 0.13 s through Core). Two of them: the
    event loop's never waits (`waits=False`): a locked file (another process writing) is `Busy`,
    and the group goes to the thread's, which waits for the lock like any connection of the
    engine. Nor does it checkpoint the WAL (`Record._checkpoint`, in a thread, does); the
    thread's checkpoints as SQLite does by default, off the loop already."""

    def __init__(self, engine, waits: bool):
        self.connection = engine.raw_connection()
        self.waits = waits
        if not waits:
            self.connection.execute("PRAGMA busy_timeout=0")
            self.connection.execute("PRAGMA wal_autocheckpoint=0")
        preparer = engine.dialect.identifier_preparer
        self.statements = {}
        for table in metadata.sorted_tables:
            columns = [column for column in table.columns if not column.primary_key]
            names = ", ".join(preparer.format_column(column) for column in columns)
            marks = ", ".join("?" for _ in columns)
            self.statements[table] = (
                f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({marks})",
                _Values(columns, engine.dialect),
            )

    def commit(self, by_table: dict[Table, list[dict]]) -> None:
        cursor = self.connection.cursor()
        try:
            for table, rows in by_table.items():
                sql, values = self.statements[table]
                cursor.executemany(sql, map(values, rows))
            self.connection.commit()
        except sqlite3.OperationalError as error:
            self.connection.rollback()
            if not self.waits and ("locked" in str(error) or "busy" in str(error)):
                raise Busy from error
            raise
        except Exception:
            self.connection.rollback()
            raise
        finally:
            cursor.close()

    def close(self) -> None:
        self.connection.close()


class Record:
    """The open record. `write` (async) returns once its rows are committed; `write_now` commits
    on the caller's thread; the readers run on the caller's thread."""

    def __init__(self, url: str, timeout: float = 10.0):
        self.timeout = timeout
        """Seconds a write may wait for its commit before its request is answered 503."""
        self.engine = _engine(url)
        _prepare(self.engine)
        # A SQLite commit of a few rows costs ~0.1 ms of CPU: cheaper on the event loop than the
        # hop to a thread and back (measured: the hop alone cost a fifth of the quote rate). A
        # server's commit waits on the network, and a big group on SQLite takes long: a thread.
        sqlite = self.engine.dialect.name == "sqlite"
        self._inserts = _SqliteInserts(self.engine, waits=False) if sqlite else None
        self._thread_inserts = _SqliteInserts(self.engine, waits=True) if sqlite else None
        self._pending: list[tuple[Table, list[dict], asyncio.Future]] = []
        self._flush_due = False
        self._first_write = 0.0  # loop time of the waiting group's first write
        self._seen = 0  # writes waiting when the group last looked
        self._in_thread: asyncio.Task | None = None
        self._stuck: asyncio.Future | None = None
        """A commit that outlived two timeouts, still running in its thread: writes are refused."""
        self._commits = 0
        self._closed = False

    # -- writing -------------------------------------------------------------------------------
    async def write(self, table: Table, rows: list[dict]) -> None:
        """Returns once `rows` are committed, in one transaction with every write that arrived
        meanwhile (group commit); raises RecordUnavailable when they could not be."""
        if self._closed:
            raise RecordUnavailable("the record is closed")
        if self._stuck is not None:
            raise RecordUnavailable("the record's last commit has not ended")
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._pending.append((table, rows, done))
        if not self._flush_due:
            # After the callbacks ready now, and as long as writes keep joining (`_gathering`).
            self._flush_due = True
            self._first_write = loop.time()
            loop.call_soon(self._flush)
        if self._in_thread is None:
            await done  # committed on the loop, or given a deadline once it goes to a thread
            return
        # Behind a commit in a thread (a server, a big batch, a locked file): bounded.
        deadline = loop.call_later(self.timeout, _expire, done, self.timeout)
        try:
            await done
        finally:
            deadline.cancel()

    def write_now(self, table: Table, rows: list[dict]) -> None:
        """The same from a plain thread (tools, tests): a commit of its own."""
        if self._closed:
            raise RecordUnavailable("the record is closed")
        [failure] = self._commit([(table, rows, None)])
        if failure is not None:
            raise failure

    async def aclose(self) -> None:
        """Commits what is waiting, then closes."""
        self._closed = True
        give_up = asyncio.get_running_loop().time() + self.timeout
        while self._pending or self._flush_due or self._in_thread is not None:
            if asyncio.get_running_loop().time() > give_up:
                log.error("closing the record with writes unfinished after %s s", self.timeout)
                break
            await asyncio.sleep(0.001)
        self.close()

    def close(self) -> None:
        """Closes at once, from outside the event loop (nothing can be waiting there)."""
        self._closed = True
        for inserts in (self._inserts, self._thread_inserts):
            if inserts is not None:
                inserts.close()
        self.engine.dispose()

    def _flush(self) -> None:
        """Commits what is pending: small SQLite groups right here on the event loop, anything
        else in a thread, one group at a time (SQLite has one writer; a big group in a thread
        must not have the loop wait on its lock)."""
        loop = asyncio.get_running_loop()
        if self._gathering(loop):
            loop.call_soon(self._flush)
            return
        self._flush_due = False
        while self._pending and self._in_thread is None:
            group = self._pending[:MAX_GROUP_WRITES]
            del self._pending[:MAX_GROUP_WRITES]
            inline = self._inserts is not None
            if inline and sum(len(rows) for _, rows, _ in group) <= INLINE_ROWS:
                try:
                    _settle(group, self._commit(group, self._inserts))
                    self._commits += 1
                    if self._commits % CHECKPOINT_COMMITS == 0:
                        loop.run_in_executor(None, self._checkpoint)
                    continue
                except Busy:
                    pass  # another process is writing: wait for it in a thread
            self._in_thread = loop.create_task(self._commit_apart(group))
        self._seen = len(self._pending)

    def _gathering(self, loop) -> bool:
        """Whether the group should wait one more turn of the loop: writes joined it during the
        last one (more requests are being served right now) and it is young. Under four busy
        clients this makes groups of four instead of one to three (measured over HTTP), and a
        commit of four rows costs under twice one row's. An idle server commits a lone write
        a turn later."""
        joined = len(self._pending) > self._seen
        self._seen = len(self._pending)
        return (
            joined
            and self._in_thread is None
            and self._seen < MAX_GROUP_WRITES
            and loop.time() - self._first_write < GATHER_SECONDS
        )

    async def _commit_apart(self, group) -> None:
        # One group at a time in a thread: its SQLite connection is never used by two at once.
        work = asyncio.ensure_future(asyncio.to_thread(self._commit, group, self._thread_inserts))
        try:
            failures = await asyncio.wait_for(asyncio.shield(work), self.timeout)
        except TimeoutError:
            expired = RecordUnavailable(f"the record did not answer within {self.timeout:g} s")
            # The writes queued behind it too: some were queued with no deadline of their own
            # (while no commit was in a thread) and would otherwise wait for this one to end.
            behind, self._pending = self._pending, []
            _settle(group + behind, [expired] * (len(group) + len(behind)))
            # One commit at a time (SQLite's thread connection is not shared): the next waits for
            # this one, for one more timeout at most; past it the record is stuck, and writes
            # are refused at once until the commit ends.
            with suppress(Exception):
                await asyncio.wait_for(asyncio.shield(work), self.timeout)
            if not work.done():
                log.error("a record commit has hung for %s s: refusing writes", 2 * self.timeout)
                self._stuck = work
                work.add_done_callback(self._unstuck)
        except BaseException:
            _settle(group, [RecordUnavailable("the record could not be written")] * len(group))
            raise
        else:
            _settle(group, failures)
        finally:
            self._in_thread = None
            if self._pending and not self._flush_due:
                self._flush_due = True
                asyncio.get_running_loop().call_soon(self._flush)

    def _unstuck(self, work) -> None:
        self._stuck = None
        with suppress(Exception):  # its outcome was answered already (as a timeout)
            work.result()
        log.warning("the record's hung commit ended: writes resume")

    def _commit_alone(self, write, inserts) -> RecordUnavailable | None:
        try:
            [failure] = self._commit([write], inserts)
        except Busy:  # locked halfway through a split: this one waits for the lock
            [failure] = self._commit([write])
        return failure

    def _checkpoint(self) -> None:
        """Moves the WAL into the database file without blocking writers, off the event loop."""
        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # the next one will do; the WAL only grows meanwhile
            log.exception("WAL checkpoint failed")

    def _commit(
        self, group, inserts: _SqliteInserts | None = None
    ) -> list[RecordUnavailable | None]:
        """One transaction for the group; each write's failure, or None."""
        by_table: dict[Table, list[dict]] = {}
        for table, rows, _ in group:
            by_table.setdefault(table, []).extend(rows)
        try:
            if inserts is not None:
                inserts.commit(by_table)
            else:
                with self.engine.begin() as connection:
                    for table, rows in by_table.items():
                        connection.execute(table.insert(), rows)
        except Busy:
            raise
        except _UNAVAILABLE:
            # The database itself failed (down, locked too long): the whole group, at once.
            log.exception("record unavailable for %d writes", len(group))
            return [RecordUnavailable("the record is unavailable")] * len(group)
        except Exception:
            if len(group) > 1:
                # One request's rows must not sink the others': each is written on its own.
                return [self._commit_alone(write, inserts) for write in group]
            log.exception("record write refused: %s", _request_ids(group))
            return [RecordUnavailable("the record refused this answer's rows")]
        return [None] * len(group)

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
        """The last `n` reported sales that a quote of ours had priced beforehand (a listing's
        latest report only: a correction replaces what it corrects)."""
        query = (
            select(sales.c.model_version, sales.c.price, sales.c.price_estimate)
            .where(sales.c.price_estimate.is_not(None), sales.c.id.in_(_latest_reports()))
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
        latest = _latest_reports()
        columns = [sales.c[f.name] for f in (LISTING_ID, *FEATURES, PRICE, SOLD_AT)]
        query = (
            select(*columns)
            .where(sales.c.id.in_(latest), sales.c.status.in_(TRAINED_ON))
            .order_by(sales.c.id)
        )
        with self.engine.connect() as connection:
            return pd.DataFrame(connection.execute(query).all(), columns=[c.name for c in columns])

    def listing_history(self, listing_id: str) -> tuple[list[dict], dict | None]:
        """The listing's quotes on record (the latest HISTORY_QUOTES, oldest first), each with
        its range read back from the answer given, and its latest reported sale (or None)."""
        columns = [quotes.c[name] for name in ("served_at", "endpoint", "model_name")]
        query = (
            select(*columns, quotes.c.model_version, quotes.c.price_estimate, quotes.c.answer)
            .where(quotes.c.listing_id == listing_id)
            .order_by(quotes.c.id.desc())
            .limit(HISTORY_QUOTES)
        )
        sale = (
            select(sales.c.price, sales.c.sold_at, sales.c.reported_at, sales.c.status)
            .where(sales.c.listing_id == listing_id)
            .order_by(sales.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as connection:
            found = [dict(row) for row in connection.execute(query).mappings()]
            last_sale = connection.execute(sale).mappings().first()
        for row in found:
            answer = json.loads(row.pop("answer") or "{}")
            answer = answer.get("quote", answer)  # an appraisal's answer holds its quote
            row["price_low"], row["price_high"] = answer.get("price_low"), answer.get("price_high")
        return found[::-1], dict(last_sale) if last_sale else None

    def suspect_sales(self) -> list[dict]:
        columns = [sales.c[name] for name in SUSPECT_COLUMNS]
        query = select(*columns).where(sales.c.status == SUSPECT).order_by(sales.c.id)
        with self.engine.connect() as connection:
            return [dict(row) for row in connection.execute(query).mappings()]

    def decide_sale(self, sale_id: int, status: str) -> dict | None:
        """A suspect sale confirmed (trained on) or rejected (never); None if no such suspect."""
        with self.engine.begin() as connection:
            done = connection.execute(
                update(sales)
                .where(sales.c.id == sale_id, sales.c.status == SUSPECT)
                .values(status=status)
            )
            if done.rowcount == 0:
                return None
            columns = [sales.c[name] for name in SUSPECT_COLUMNS]
            row = connection.execute(select(*columns).where(sales.c.id == sale_id)).mappings()
            return dict(row.one())

    def sales_by_status(self) -> dict[str, int]:
        query = select(sales.c.status, func.count()).group_by(sales.c.status)
        with self.engine.connect() as connection:
            return dict(connection.execute(query).all())

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar()
                for table in (quotes, sales)
            }


_UNAVAILABLE = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlite3.OperationalError,
)


def _prepare(engine) -> None:
    """An empty database gets this code's tables; one behind this code is refused, naming the
    command that upgrades it in place (valuation/storage/migrations)."""
    from valuation.storage import migrations

    found = migrations.state(engine)
    if found == "empty":
        migrations.create(engine)
    elif found == "behind":
        raise migrations.RecordOutdated(
            f"the record at {engine.url.render_as_string(hide_password=True)} is behind this "
            "release: run `valuation record upgrade` (nothing is lost)"
        )


def _request_ids(group) -> str:
    return ", ".join(sorted({row.get("request_id", "?") for _, rows, _ in group for row in rows}))


def _latest_reports():
    return select(func.max(sales.c.id)).group_by(sales.c.listing_id)


def _expire(done: asyncio.Future, seconds: float) -> None:
    # Its rows may still be committed later: the record can hold a quote answered 503, never
    # miss one answered 200.
    if not done.done():
        done.set_exception(RecordUnavailable(f"the record did not answer within {seconds:g} s"))


def _settle(group, failures) -> None:
    for (_, _, done), failure in zip(group, failures, strict=True):
        if done.done():  # its request was cancelled (the client left)
            continue
        if failure is None:
            done.set_result(None)
        else:
            done.set_exception(failure)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
