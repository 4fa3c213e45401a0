"""Reading marketplace exports (CSV, Excel workbooks, Parquet) into typed listings, every row
accounted for.

A row with a value that cannot be read is never dropped silently nor guessed: it goes to the
rejects with its line number, the column and the reason, and it can be written next to the output.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import itertools
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from valuation.parsing import BULK_PARSERS, PARSERS, SpellingError, with_unit
from valuation.schema import (
    BY_NAME,
    FEATURES,
    LISTING_ID,
    OPTIONAL,
    SOLD_AT,
    TARGET,
    header_lookup,
    read_header,
)

log = logging.getLogger("valuation.loading")

SUFFIXES = (".csv", ".parquet")
"""What a table is written as, and read from."""
WORKBOOKS = (".xlsx", ".xls")
READABLE = (*SUFFIXES, *WORKBOOKS)
"""What an export is read from: an Excel workbook too, as marketplaces' back offices export them
(`.xlsx`, or Excel 97-2003's `.xls`)."""
REJECT_COLUMNS = ["line", "column", "reason"]
REPEAT_COLUMNS = ["line", "repeats"]
"""A repeated sale's line, and the line of the earlier row it repeats (`repeated_rows`)."""
UNITS_SAID = "元, 万, 万元, 千, 亿, CNY, k, w"
"""The header units named in the error that refuses one (HEADER_UNITS has them all)."""
LineNumbers = Callable[[np.ndarray], np.ndarray]
"""Row positions in a table read from a file -> the file lines those rows start on."""


class ExportError(ValueError):
    """The file as a whole cannot be read as listings (missing file, columns, unknown format)."""


@dataclass
class LoadedListings:
    listings: pd.DataFrame
    """Canonical, typed columns; the index is each row's position in the raw table."""
    rejects: pd.DataFrame
    """One row per rejected input row: line, column(s), reason(s), then the raw values."""
    raw: pd.DataFrame
    """The table as read, original headers and spellings (empty for several files: `rows`)."""
    repeats: pd.DataFrame = field(default_factory=lambda: no_repeats())
    """Rows left out of `listings` as the same sale as an earlier row (`sale_keys`): line, the
    earlier row's line, then its id, date and price as parsed. Found only when asked (training)."""
    line_of: LineNumbers = field(default_factory=lambda: _consecutive(2))
    """The file line of rows of `raw` (`listings`' index), ascending: what training finds later
    about a sale (a price typo) is reported on its line, as a reject is."""
    file_of: Callable[[np.ndarray], np.ndarray] | None = None
    """An export of several files (`load_exports`): the file of rows of `raw`, as `line_of`."""
    rows: int | None = None
    """The rows read, where `raw` does not hold them (several files)."""

    @property
    def total(self) -> int:
        return len(self.raw) if self.rows is None else self.rows

    @property
    def reject_share(self) -> float:
        return len(self.rejects) / self.total if self.total else 0.0

    def place(self, rows: np.ndarray) -> pd.DataFrame:
        """Where rows of `raw` (ascending) stand: their line, after their file in an export of
        several files."""
        lines = {"line": self.line_of(rows)}
        return pd.DataFrame(
            lines if self.file_of is None else {"file": self.file_of(rows), **lines}
        )


def read_export(path: str | Path) -> pd.DataFrame:
    """The raw table, whole: CSV as text (UTF-8 with or without BOM, or GB18030 as Excel writes
    it), an Excel workbook's first sheet as the text its CSV would hold, Parquet as typed."""
    return next(read_export_chunks(path, rows=None))[0]


def read_export_chunks(
    path: str | Path, rows: int | None
) -> Iterator[tuple[pd.DataFrame, LineNumbers]]:
    """The raw table in chunks of `rows` (None: whole), each with the file lines of its rows, so
    a file of any size is read in bounded memory and rejects keep their true line numbers."""
    path = Path(path)
    if path.suffix.lower() not in READABLE:
        raise ExportError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; use CSV, Excel (.xlsx, .xls) "
            "or Parquet"
        )
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        yield from _parquet_chunks(path, rows)
    elif path.suffix.lower() in WORKBOOKS:
        yield from _workbook_chunks(path, rows)
    else:
        yield from _csv_chunks(path, rows)


def unread_columns(files: list[Path]) -> list[str]:
    """The files' columns training does not read (`标题`, `链接`; a sale date under a header no
    field has, or a header whose part in brackets is no unit, beside the field's own column):
    training says them, since a column left unread is otherwise lost without a word. Blank names
    (a spreadsheet's empty cells past the table) are none; a file whose header is refused is left
    to the loading, which says why, by file."""
    unread = []
    for path in files:
        chunks = read_export_chunks(path, rows=1)
        try:
            columns = [str(column) for column in next(chunks)[0].columns]
        finally:
            chunks.close()
        try:
            read = canonical_headers(columns, require_price=True)
        except ExportError:
            continue
        for column in columns:
            named = column.strip() and not column.startswith("Unnamed: ")
            if named and column not in read and column not in unread:
                unread.append(column)
    return unread


def _consecutive(first_line: int) -> LineNumbers:
    return lambda positions: positions + first_line


def _parquet_chunks(path: Path, rows: int | None):
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
        if rows is None or file.metadata.num_rows == 0:
            yield file.read().to_pandas(), _consecutive(1)
            return
        first = 1  # Parquet has no header line: rows are numbered from 1
        for batch in file.iter_batches(batch_size=rows):
            chunk = batch.to_pandas()
            yield chunk, _consecutive(first)
            first += len(chunk)
    except (OSError, ValueError) as error:  # pyarrow's errors for a corrupt file derive from these
        raise ExportError(f"{path}: not a readable Parquet file ({error})") from error


def _workbook_chunks(path: Path, rows: int | None):
    """An Excel workbook's first sheet, by what the file holds, whatever its suffix says (a
    `.xls` is often an `.xlsx` renamed): Office Open XML (a zip) or Excel 97-2003's binary."""
    with open(path, "rb") as file:
        head = file.read(8)
    if head.startswith(b"PK"):
        yield from _sheet_chunks(path, _xlsx_rows(path), rows)
    elif head.startswith(b"\xd0\xcf\x11\xe0"):
        yield from _sheet_chunks(path, _xls_rows(path), rows)
    else:  # a web page or text saved under a workbook's name, as some back offices export
        raise ExportError(
            f"{path}: not an Excel workbook (its content is no .xlsx nor .xls; a web page or text "
            "saved as .xls?): open it and save it as .xlsx or CSV"
        )


def _xlsx_rows(path: Path) -> Iterator[tuple[int, tuple]]:
    """An .xlsx's first sheet, streamed (openpyxl, read-only): each row with its number. Formulas
    give the values Excel last computed (a workbook never opened in Excel has none)."""
    from openpyxl import load_workbook

    with open(path, "rb") as file:  # a file, not its name: openpyxl refuses a name ending .xls
        try:
            book = load_workbook(file, read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises zipfile's, KeyError, its own, ...
            raise ExportError(f"{path}: not a readable Excel workbook ({error})") from error
        try:
            sheet = book.worksheets[0]
            yield from enumerate(sheet.iter_rows(values_only=True), start=sheet.min_row)
        finally:
            book.close()


def _xls_rows(path: Path) -> Iterator[tuple[int, tuple]]:
    """An Excel 97-2003 workbook's first sheet (xlrd): each row with its number, its cells as
    Python values (a date cell as its datetime, a boolean as a bool, an error as empty)."""
    import xlrd

    try:
        book = xlrd.open_workbook(path, on_demand=True)
        sheet = book.sheet_by_index(0)
    except Exception as error:  # xlrd raises its own, struct's, ... on a bad file
        raise ExportError(f"{path}: not a readable Excel 97-2003 workbook ({error})") from error
    try:
        for row in range(sheet.nrows):
            yield row + 1, tuple(_xls_value(cell, book.datemode) for cell in sheet.row(row))
    finally:
        book.release_resources()


def _xls_value(cell, datemode: int):
    import xlrd

    if cell.ctype == xlrd.XL_CELL_DATE:
        return xlrd.xldate_as_datetime(cell.value, datemode)
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return None
    return cell.value


def _sheet_chunks(path: Path, numbered_rows: Iterator[tuple[int, tuple]], rows: int | None):
    """A sheet's table in chunks of `rows`: its header is the first row that names two of the
    listing's fields, as a CSV's (`csv_layout`), so that a title above it (快手账号成交记录 alone,
    or beside an export time, or a row grouping the columns: 账号信息, 成交信息) is not taken for
    it; with none among the first TITLE_ROWS rows of two values or more, the first such row. Each
    cell reads as a CSV saved from it would hold it (`_cell_text`). Rows keep the sheet's own
    numbers; a row with nothing in it is skipped, as pandas skips a CSV's blank line."""
    header, chunk, lines, yielded = None, [], [], False
    waiting: list[tuple[int, tuple]] = []  # rows from the first of two values, before the header
    lookup = header_lookup()

    def table_rows():
        nonlocal header
        for line, values in numbered_rows:
            filled = sum(value is not None and value != "" for value in values)
            if filled == 0 or (header is None and filled == 1 and not waiting):
                continue  # a blank row, or a title of one value above any row of two
            if header is not None:
                yield line, values
                continue
            names = [_cell_text(value) for value in values]
            if _names_two_fields(names, lookup):
                header = _sheet_header(path, names)
                waiting.clear()  # titles above it
                continue
            waiting.append((line, values))
            if len(waiting) > TITLE_ROWS:  # no header near the top: the first row of two values
                yield from _first_as_header()
        if header is None and waiting:
            yield from _first_as_header()

    def _first_as_header():
        nonlocal header
        (_, first), *rest = waiting
        header = _sheet_header(path, [_cell_text(value) for value in first])
        yield from rest

    with closing(numbered_rows):
        for line, values in table_rows():
            cells = [_cell_text(value) for value in values[: len(header)]]
            chunk.append(cells + [""] * (len(header) - len(cells)))
            lines.append(line)
            if rows is not None and len(chunk) == rows:
                yield _sheet_table(chunk, header), _numbered(lines)
                chunk, lines, yielded = [], [], True
    if header is None:
        raise ExportError(
            f"{path}: the workbook's first sheet holds no table (no row of two values)"
        )
    if chunk or not yielded:  # a header alone is an empty table, as a CSV's would be
        yield _sheet_table(chunk, header), _numbered(lines)


def _sheet_header(path: Path, names: list[str]) -> list[str]:
    while names and not names[-1]:  # formatted but empty cells past the last column
        names.pop()
    names = [name or f"Unnamed: {i}" for i, name in enumerate(names)]
    _refuse_repeats(path, names)
    return names


def _sheet_table(chunk: list[list[str]], header: list[str]) -> pd.DataFrame:
    return pd.DataFrame(chunk, columns=header, dtype=str)


def _numbered(lines: list[int]) -> LineNumbers:
    numbers = np.array(lines, dtype=np.int64)
    return lambda positions: numbers[positions]


def _cell_text(value) -> str:
    """A cell as a CSV saved from the workbook writes it: a whole number without a decimal point
    (131300, not 131300.0), a date as its ISO day, with its time if it has one."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    return str(value)


def _csv_chunks(path: Path, rows: int | None):
    layout = csv_layout(path)
    header, encoding = layout.header, layout.encoding
    options = {
        "dtype": str,
        "keep_default_na": False,
        "encoding": encoding,
        "skiprows": layout.above,
    }
    lines = CsvLines(path, encoding, layout.line)
    try:
        if rows is None:
            yield pd.read_csv(path, **options), lines.of_then_close
            return
        first = 0  # the chunk's first row, counted over the whole file
        with pd.read_csv(path, chunksize=rows, **options) as reader:
            for chunk in reader:
                yield chunk.reset_index(drop=True), lines.after(first)
                first += len(chunk)
    except pd.errors.EmptyDataError as error:
        raise ExportError(f"{path}: the file is empty") from error
    except pd.errors.ParserError as error:
        title = f"; {_header_read(header)}" if len(header) == 1 else ""
        raise ExportError(
            f"{path}: not a readable CSV file ({str(error).strip()}){title}"
        ) from error
    except UnicodeDecodeError as error:
        raise ExportError(f"{path}: text is not {encoding} throughout ({error.reason})") from error
    finally:
        lines.close()


class CsvLines:
    """The file line each row of a CSV export starts on. Row n is on line n + 2 only while every
    row is one line: a quoted value may hold line breaks (a seller's note pasted with its
    newlines), and pandas skips blank lines. This reads the file as pandas does: a line without a
    quote is one row, or blank; from a line with one, Python's csv reader (which quotes as pandas
    does) reads the row, over as many lines as it takes. It runs only when a reject asks for a
    line, forward (chunks come in order; a row before the last one asked for is read from the
    file's top again): a file without rejects is never read twice. The header is on
    `header_line` (a title may stand above it: `csv_layout`)."""

    def __init__(self, path: Path, encoding: str, header_line: int = 1):
        self.path, self.encoding, self.header_line = path, encoding, header_line
        self._file = None
        self._starts: Iterator[int] | None = None  # the line each row starts on, header first
        self._row = -1  # the last row read (0: the first after the header)
        self._line = 1  # the line it starts on

    def after(self, first: int) -> LineNumbers:
        """The numbering of a chunk whose first row is the file's row `first`."""
        return lambda positions: self.of(positions + first)

    def of_then_close(self, rows: np.ndarray) -> np.ndarray:
        """`of`, the file closed after: a whole file's rows are numbered in one call (the
        load's, then training's later ones), each a pass from the top."""
        try:
            return self.of(rows)
        finally:
            self.close()

    def of(self, rows: np.ndarray) -> np.ndarray:
        """The lines of `rows` (ascending; quickest past any asked for before)."""
        return np.array([self._line_of(int(row)) for row in rows], dtype=np.int64)

    def _line_of(self, row: int) -> int:
        if row < self._row:  # asked again from an earlier row: read from the top again
            self.close()
        if self._file is None:
            self._file = open(self.path, encoding=self.encoding, newline="")
            self._starts = _row_starts(self._file)
            for start in self._starts:  # the title lines above the header, and the header
                if start >= self.header_line:
                    break
        while self._row < row:
            self._row += 1
            start = next(self._starts, None)
            # Past the end of what the file holds (never seen: pandas and the csv module split
            # rows alike); a line number must not stop a whole file's pricing: one line a row.
            if start is None:
                log.warning("%s: rows after line %d numbered one line a row", self.path, self._line)
                self._starts = itertools.count(self._line + 1)
                start = next(self._starts)
            self._line = start
        return self._line

    def close(self) -> None:
        """Closes the file; rows asked for after are numbered from its top again."""
        if self._file is not None:
            self._file.close()
        self._file, self._starts, self._row, self._line = None, None, -1, 1


def _row_starts(file) -> Iterator[int]:
    """The line each row of `file` (opened with newline="") starts on, as pandas reads rows."""
    # A value of any length is a value (pandas reads it); the csv module's default limit of
    # 128 KiB would end the count there.
    _read_long_fields()
    line_number = 0
    for line in file:
        line_number += 1
        if '"' not in line:
            if line.strip():  # unquoted spaces alone are a blank line, which pandas skips
                yield line_number
            continue
        reader = csv.reader(itertools.chain((line,), file))  # reads no further than its row
        try:
            next(reader)
        except csv.Error as error:
            log.warning("%s: line %d cannot be read as CSV (%s)", file.name, line_number, error)
            return
        yield line_number
        line_number += reader.line_num - 1


def _read_long_fields() -> None:
    """The csv module reads a field as long as pandas does (a seller's long note), not only
    its default 128 KiB."""
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


def _text_encoding(path: Path, probe: int = 4 << 20) -> str:
    """UTF-8 (with or without BOM) when the first megabytes read as UTF-8, else GB18030."""
    with open(path, "rb") as file:
        head = file.read(probe)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            codecs.getincrementaldecoder(encoding)().decode(head, final=len(head) < probe)
            return encoding
        except UnicodeDecodeError:
            continue
    raise ExportError(f"{path}: text is neither UTF-8 nor GB18030")


TITLE_ROWS = 20
"""How many lines (a title such as 快手账号成交记录, an export time, a blank line) may stand
above a CSV's header; past them, the first line is taken as the header, as pandas takes it."""


@dataclass(frozen=True)
class CsvLayout:
    encoding: str
    header: list[str]
    above: int
    """Rows above the header, as pandas counts them (`skiprows`): title and blank lines."""
    line: int
    """The file line the header is on; the table's first row starts on the next one."""


def csv_layout(path: str | Path) -> CsvLayout:
    """A CSV export's encoding and header: its first row that names two of the listing's fields
    (`粉丝数量`, `成交价`, ...), so that a title above the table (alone on its line, or followed
    by the empty cells a spreadsheet writes, `快手账号成交记录,,,,,`) is not taken for it; a row
    of values is never a header, whatever its commas. A repeated header is refused (pandas
    would rename a second `成交价` to `成交价.1` and quietly read the first one)."""
    path = Path(path)
    encoding = _text_encoding(path)
    lookup = header_lookup()
    _read_long_fields()
    with open(path, encoding=encoding, newline="") as file:
        reader = csv.reader(file)
        rows, starts, end = [], [], 0  # each row, the line it starts on, the last line read
        try:
            for row in itertools.islice(reader, TITLE_ROWS + 1):
                rows.append(row)
                starts.append(end + 1)
                end = reader.line_num
                if _names_two_fields(row, lookup):
                    break
            else:  # no header near the top: the first row, as pandas would take it
                rows, starts = rows[:1], starts[:1]
        except csv.Error:  # a row the csv module cannot read: pandas' reading will say more
            rows, starts = rows[:1], starts[:1]
    header, above = (rows[-1], len(rows) - 1) if rows else ([], 0)
    _refuse_repeats(path, header)
    return CsvLayout(encoding, header, above, starts[-1] if starts else 1)


def _names_two_fields(cells: list[str], lookup: dict[str, str]) -> bool:
    """A row is a table's header when it names two of the listing's fields (`粉丝数量`, `成交价`,
    ...): a title, an export time or a row grouping the columns names none."""
    return sum(read_header(cell, lookup)[0] is not None for cell in cells) >= 2


def _refuse_repeats(path: Path, header: list[str]) -> None:
    """Blank names are no column's (the empty cells a spreadsheet writes past the table)."""
    repeated = sorted({name for name in header if name.strip() and header.count(name) > 1})
    if repeated:
        raise ExportError(
            f"{path}: column(s) {', '.join(repeated)} appear more than once; keep one"
        )


def canonical_headers(columns, require_price: bool) -> dict[str, str]:
    """Maps the export's headers to canonical field names; unknown headers are left alone. A
    header may carry its column's unit (`粉丝数量(万)`: `read_header`)."""
    lookup = header_lookup()
    mapping: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for column in columns:
        name, unit = read_header(column, lookup)
        if name is None:
            continue
        if unit is None:  # left alone unless the field has no other column
            unreadable.setdefault(name, column)
            continue
        if name in mapping.values():
            first = next(c for c, n in mapping.items() if n == name)
            raise ExportError(f"columns {first!r} and {column!r} both mean {name}; keep one")
        mapping[column] = name
    needed = [*FEATURES, TARGET] if require_price else list(FEATURES)
    missing = [f for f in needed if f.name not in mapping.values() and f.default is None]
    for absent in missing:
        if absent.name in unreadable:
            raise ExportError(
                f"column {unreadable[absent.name]!r} names {absent.name} with a part in brackets "
                f"or after a slash that is no unit this reader takes ({UNITS_SAID}, on a "
                "count's or a price's column only): rename it"
            )
    if missing:
        wanted = "; ".join(f"{f.name} (or {' / '.join(f.headers)})" for f in missing)
        raise ExportError(f"missing column(s): {wanted}; {_header_read(list(columns))}")
    return mapping


def _header_read(columns: list) -> str:
    """What the header held, for a missing column's message: a file whose values are not
    separated by commas reads as a header of one column."""
    shown = ", ".join(repr(str(column))[:40] for column in columns[:12])
    more = f" and {len(columns) - 12} more" if len(columns) > 12 else ""
    title = " (one column: are its values separated by commas?)" if len(columns) == 1 else ""
    return f"the header read: {shown}{more}{title}"


def parse_listings(
    raw: pd.DataFrame,
    require_price: bool,
    first_line: int | LineNumbers = 2,
    drop_repeats: bool = False,
) -> LoadedListings:
    """Parses a raw table; `first_line` is the file line of its first row (2 after a CSV header),
    or the numbering of its rows as `read_export_chunks` gives it. With `drop_repeats`, a row
    that is the same sale as an earlier one (`sale_keys`) is left out and listed in `repeats`."""
    mapping = canonical_headers(raw.columns, require_price)
    # Training reads everything it learns from; pricing reads the features only, and ids and
    # dates pass through untouched (a catalogue's own ids are not ours to judge).
    wanted = {f.name for f in ((*FEATURES, TARGET, *OPTIONAL) if require_price else FEATURES)}
    parsed: dict[str, np.ndarray] = {}
    problems: dict[str, np.ndarray] = {}
    lookup = header_lookup()
    for column, name in mapping.items():
        if name not in wanted:
            continue
        values = raw[column]
        unit = read_header(column, lookup)[1]
        parsed[name], problems[name] = parse_column(
            with_unit(values, unit) if unit else values, PARSERS[name], BULK_PARSERS.get(name)
        )

    bad = np.zeros(len(raw), dtype=bool)
    for reasons in problems.values():
        bad |= reasons != None  # noqa: E711 - elementwise on an object array
    listings = pd.DataFrame({name: values[~bad] for name, values in parsed.items()})
    listings.index = np.flatnonzero(~bad)
    for feature in FEATURES:  # a column the export leaves out, read with the field's default
        if feature.name not in listings and feature.default is not None:
            listings[feature.name] = feature.default
    listings = _typed(listings)
    lines = _consecutive(first_line) if isinstance(first_line, int) else first_line
    found = repeated_rows(sale_keys(listings)) if drop_repeats else no_repeats()
    rows = np.flatnonzero(bad)
    line_of = _numbered_once(
        lines, np.concatenate([rows, found[REPEAT_COLUMNS].to_numpy().ravel()])
    )
    rejects = _rejects(raw, mapping, problems, rows, line_of(rows))
    repeats = repeats_table(listings, found, line_of)
    listings = listings.drop(index=found["line"].to_numpy())
    return LoadedListings(listings, rejects, raw, repeats, lines)


def _numbered_once(line_of: LineNumbers, rows: np.ndarray) -> LineNumbers:
    """Every row of `rows` numbered at once, in order (a CSV's lines are read forward only, a
    pass a call), then looked up: the numbering of any of them."""
    asked = np.unique(rows).astype(np.int64)
    numbered = line_of(asked)
    return lambda positions: numbered[np.searchsorted(asked, positions)]


def sale_keys(listings: pd.DataFrame) -> pd.Series:
    """Each listing with an id, keyed by everything read of it (a 64-bit hash of its columns,
    its index kept): two rows of one key are one sale written twice, as an export appended to
    another, or two exports of overlapping months, leave it. Rows without an id are not keyed:
    two accounts of the same fans, flags, category and price may well both have sold; nor are
    rows whose id is masked (`KS****1234`, as listing pages show them): it names no one account."""
    if LISTING_ID.name not in listings:
        return pd.Series([], dtype=np.uint64)
    ids = listings[LISTING_ID.name]
    known = listings[ids.notna() & ~ids.astype(str).str.contains("*", regex=False)]
    return pd.util.hash_pandas_object(known[sorted(known.columns)], index=False)


def repeated_rows(keys: pd.Series) -> pd.DataFrame:
    """The rows (the index: a position or a line) whose key an earlier row has, each with that
    earlier row (`REPEAT_COLUMNS`); the first of each key is kept."""
    keys = keys.sort_index(kind="stable")
    repeat = keys.duplicated(keep="first").to_numpy()
    first = pd.Series(keys.index[~repeat], index=keys.to_numpy()[~repeat])
    return pd.DataFrame(
        {
            "line": keys.index[repeat].to_numpy(dtype=np.int64),
            "repeats": first.loc[keys.to_numpy()[repeat]].to_numpy(dtype=np.int64),
        }
    )


def repeats_table(
    listings: pd.DataFrame, found: pd.DataFrame, line_of=None, file_of=None
) -> pd.DataFrame:
    """`found` (`repeated_rows` of `listings`' rows) as the user reads it: lines (`line_of` the
    rows; the rows themselves where they are lines), each after its file where `file_of` tells
    (an export of several files), then the id, date and price read."""
    line_of = line_of or (lambda rows: rows)
    shown = [c for c in (LISTING_ID.name, SOLD_AT.name, TARGET.name) if c in listings]
    rows = found["line"].to_numpy()
    table = {}
    for column, file_column in zip(REPEAT_COLUMNS, ("file", "repeats_file"), strict=True):
        at = found[column].to_numpy()
        if file_of is not None:
            table[file_column] = file_of(at)
        table[column] = line_of(at)
    return pd.concat(
        [pd.DataFrame(table), listings.loc[rows, shown].reset_index(drop=True)], axis=1
    )


def no_repeats() -> pd.DataFrame:
    """No repeated rows: `repeated_rows`' table, empty."""
    return pd.DataFrame({c: np.zeros(0, dtype=np.int64) for c in REPEAT_COLUMNS})


LISTS = (".rejects.csv", ".repeats.csv", ".typos.csv")
"""The lists training and `valuation batch` write beside what they read: never an export."""


def export_files(data: str | Path | list[str | Path]) -> list[Path]:
    """The files an export is read from: a file; a folder's CSV, workbook and Parquet files, by
    name, numbers in it as numbers (`2月` before `10月`: a month's export each, say); or several
    of either, in the order given. A file named twice is read once."""
    given = [data] if isinstance(data, str | Path) else list(data)
    files: list[Path] = []
    for path in map(Path, given):
        if path.is_dir():
            found = sorted(filter(_is_export, path.iterdir()), key=_natural)
            if not found:
                raise ExportError(f"{path}: a folder without a CSV, Excel or Parquet file")
            files.extend(found)
        elif len(given) > 1 and not path.is_file():  # found before the others are read
            raise ExportError(f"{path}: no such file")
        else:
            files.append(path)
    unique = list(dict.fromkeys(f.resolve() for f in files))
    return [next(f for f in files if f.resolve() == u) for u in unique]


def _is_export(path: Path) -> bool:
    name = path.name.lower()
    hidden = name.startswith((".", "~$"))  # Excel's lock file of an open workbook: ~$name.xlsx
    return (
        path.is_file()
        and path.suffix.lower() in READABLE
        and not hidden
        and not name.endswith(LISTS)
    )


def _natural(path: Path) -> list:
    return [
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", path.name)
    ]


def export_name(data: str | Path | list[str | Path], files: list[Path]) -> str:
    """What the lists of an export read from `files` (`export_files` of `data`) are named
    after: its one file's stem, a folder's name, or the first file's stem and how many more
    (`2026-01+9`)."""
    given = [data] if isinstance(data, str | Path) else list(data)
    if len(given) == 1 and Path(given[0]).is_dir():
        return Path(given[0]).resolve().name
    return files[0].stem if len(files) == 1 else f"{files[0].stem}+{len(files) - 1}"


def file_names(files: list[Path]) -> list[str]:
    """How lists name the files of an export: by name, or by path where two share a name."""
    names = [f.name for f in files]
    return names if len(set(names)) == len(names) else [str(f) for f in files]


def load_exports(
    files: list[Path], require_price: bool, drop_repeats: bool = False
) -> LoadedListings:
    """Several files read as one export, each by `load_listings` with its own header and lines
    (an error names its file): rejects and repeats name their file, and a sale one file repeats
    from another (two exports of overlapping months) is found across them. `listings`' index
    counts the rows of all files, one file after the other; `raw` is left empty (`rows` counts
    them)."""
    if len(files) == 1:
        return load_listings(files[0], require_price, drop_repeats)
    parts = []
    for file in files:
        try:
            parts.append(load_listings(file, require_price))
        except ExportError as error:
            said = str(error)
            raise ExportError(said if str(file) in said else f"{file}: {said}") from error
    names = np.array(file_names(files))
    starts = np.cumsum([0] + [part.total for part in parts[:-1]])

    def which(rows: np.ndarray) -> np.ndarray:
        return np.searchsorted(starts, rows, side="right") - 1

    def line_of(rows: np.ndarray) -> np.ndarray:  # each file's rows asked for in order, once
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        ordered, part = rows[order], which(rows[order])
        lines = np.zeros(len(rows), dtype=np.int64)
        for i in np.unique(part):
            lines[order[part == i]] = parts[i].line_of(ordered[part == i] - starts[i])
        return lines

    def file_of(rows: np.ndarray) -> np.ndarray:
        return names[which(np.asarray(rows, dtype=np.int64))]

    listings = pd.concat(
        [part.listings.set_axis(part.listings.index + start) for part, start in zip(parts, starts)]
    )
    rejects = pd.concat(
        [
            part.rejects.assign(file=name)[["file", *part.rejects.columns]]
            for part, name in zip(parts, names)
        ],
        ignore_index=True,
    )
    repeats = no_repeats()
    if drop_repeats:
        found = repeated_rows(sale_keys(listings))
        lines = _numbered_once(line_of, found[REPEAT_COLUMNS].to_numpy().ravel())
        repeats = repeats_table(listings, found, lines, file_of)
        listings = listings.drop(index=found["line"].to_numpy())
    total = sum(part.total for part in parts)
    return LoadedListings(listings, rejects, pd.DataFrame(), repeats, line_of, file_of, total)


def load_listings(
    path: str | Path, require_price: bool, drop_repeats: bool = False
) -> LoadedListings:
    """The whole export, parsed; for files too large for memory, see `read_export_chunks`."""
    chunks = read_export_chunks(path, rows=None)
    with closing(chunks):  # parsed before the file its line numbers are read from is closed
        raw, lines = next(chunks)
        return parse_listings(raw, require_price, lines, drop_repeats)


def parse_column(values: pd.Series, parse, bulk=None) -> tuple[np.ndarray, np.ndarray]:
    """Parses each distinct value once: exports repeat the same spellings many times over."""
    if isinstance(values.dtype, pd.StringDtype):  # text as read from CSV: factorized natively
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
        if bulk is not None:
            parsed, reasons = bulk(np.asarray(uniques, dtype=object), parse)
            return parsed[codes], reasons[codes]
        return _parse_uniques(codes, uniques, parse)
    values = values.astype(object)
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        # Mixed Python values: True == 1 == 1.0 would share one parse, so key by type as well.
        keys = pd.Series([(type(v), v) for v in values], dtype=object)
        codes, unique_keys = pd.factorize(keys, use_na_sentinel=False)
        uniques = [value for _, value in unique_keys]
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
    return _parse_uniques(codes, uniques, parse)


def _parse_uniques(codes, uniques, parse) -> tuple[np.ndarray, np.ndarray]:
    parsed = np.empty(len(uniques), dtype=object)
    reasons = np.full(len(uniques), None, dtype=object)
    for i, value in enumerate(uniques):
        try:
            parsed[i] = parse(value)
        except SpellingError as error:
            reasons[i] = error.reason
    return parsed[codes], reasons[codes]


def _typed(listings: pd.DataFrame) -> pd.DataFrame:
    dtypes = {"count": "int64", "flag": "bool", "price": "float64"}
    for name in listings.columns:
        kind = BY_NAME[name].kind
        if kind in dtypes:
            listings[name] = listings[name].astype(dtypes[kind])
        elif kind == "date":
            listings[name] = pd.to_datetime(listings[name])
        else:
            listings[name] = listings[name].astype(object)
    return listings


def _rejects(raw, mapping, problems, rows: np.ndarray, lines: np.ndarray) -> pd.DataFrame:
    header_of = {name: column for column, name in mapping.items()}
    columns, reasons = [], []
    for row in rows:
        failed = [name for name, why in problems.items() if why[row] is not None]
        columns.append(", ".join(header_of[name] for name in failed))
        reasons.append("; ".join(problems[name][row] for name in failed))
    rejects = pd.DataFrame(
        {
            "line": lines,
            "column": pd.Series(columns, dtype=object),
            "reason": pd.Series(reasons, dtype=object),
        }
    )
    original = raw.iloc[rows].reset_index(drop=True)
    return pd.concat([rejects, original], axis=1)


def rejects_path(output: str | Path) -> Path:
    """`out/prices.parquet` -> `out/prices.rejects.csv`: the rejects lie next to the output."""
    output = Path(output)
    return output.with_name(f"{output.stem}.rejects.csv")


def write_table(frame: pd.DataFrame, path: str | Path) -> Path:
    """CSV (UTF-8 with BOM, so spreadsheet tools read the Chinese headers) or Parquet by suffix."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def write_rejects(rejects: pd.DataFrame, path: str | Path) -> Path:
    return write_table(rejects, path)


class TableWriter:
    """Appends chunks to one CSV or Parquet file, so output never has to fit in memory.

    Nothing is created until the first chunk arrives; `close` is safe to call either way.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.rows = 0
        self._parquet = None
        self._schema = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.path.suffix.lower() == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self.path, self._schema)
            self._parquet.write_table(table.cast(self._schema))
        else:
            frame.to_csv(
                self.path,
                mode="a" if self.rows else "w",
                header=not self.rows,
                index=False,
                encoding="utf-8" if self.rows else "utf-8-sig",
            )
        self.rows += len(frame)

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
