"""Reading marketplace exports (CSV or Parquet) into typed listings, with every reject accounted for.

A row with a value that cannot be read is never dropped silently nor guessed: it goes to the
rejects with its line number, the column and the reason, and it can be written next to the output.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from valuation.parsing import PARSERS, SpellingError
from valuation.schema import BY_NAME, FEATURES, OPTIONAL, TARGET, header_lookup, normalise_header

SUFFIXES = (".csv", ".parquet")
REJECT_COLUMNS = ["line", "column", "reason"]


class ExportError(ValueError):
    """The file as a whole cannot be read as listings (missing file, columns, unknown format)."""


@dataclass
class LoadedListings:
    listings: pd.DataFrame
    """Canonical, typed columns; the index is each row's position in the raw table."""
    rejects: pd.DataFrame
    """One row per rejected input row: line, column(s), reason(s), then the raw values."""
    raw: pd.DataFrame
    """The table as read, original headers and spellings."""

    @property
    def total(self) -> int:
        return len(self.raw)

    @property
    def reject_share(self) -> float:
        return len(self.rejects) / self.total if self.total else 0.0


def read_export(path: str | Path) -> pd.DataFrame:
    """The raw table: CSV as text (UTF-8 with or without BOM, or GB18030 as Excel writes it)."""
    path = Path(path)
    if path.suffix.lower() not in SUFFIXES:
        raise ExportError(
            f"{path}: unsupported file type {path.suffix or '(none)'!r}; use CSV or Parquet"
        )
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    if path.suffix.lower() == ".parquet":
        try:
            return pd.read_parquet(path)
        except Exception as error:  # pyarrow raises many types for a corrupt file
            raise ExportError(f"{path}: not a readable Parquet file ({error})") from error
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            _refuse_repeated_headers(path, encoding)
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
        except pd.errors.EmptyDataError as error:
            raise ExportError(f"{path}: the file is empty") from error
        except pd.errors.ParserError as error:
            raise ExportError(f"{path}: not a readable CSV file ({error})") from error
    raise ExportError(f"{path}: text is neither UTF-8 nor GB18030")


def _refuse_repeated_headers(path: Path, encoding: str) -> None:
    """pandas would rename a second `成交价` to `成交价.1` and quietly read the first one."""
    with open(path, encoding=encoding, newline="") as file:
        header = next(csv.reader(file), [])
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ExportError(
            f"{path}: column(s) {', '.join(repeated)} appear more than once; keep one"
        )


def canonical_headers(columns, require_price: bool) -> dict[str, str]:
    """Maps the export's headers to canonical field names; unknown headers are left alone."""
    lookup = header_lookup()
    mapping: dict[str, str] = {}
    for column in columns:
        name = lookup.get(normalise_header(column))
        if name is None:
            continue
        if name in mapping.values():
            first = next(c for c, n in mapping.items() if n == name)
            raise ExportError(f"columns {first!r} and {column!r} both mean {name}; keep one")
        mapping[column] = name
    needed = [*FEATURES, TARGET] if require_price else list(FEATURES)
    missing = [f for f in needed if f.name not in mapping.values()]
    if missing:
        wanted = "; ".join(f"{f.name} (or {' / '.join(f.headers)})" for f in missing)
        raise ExportError(f"missing column(s): {wanted}")
    return mapping


def parse_listings(raw: pd.DataFrame, require_price: bool, first_line: int = 2) -> LoadedListings:
    """Parses a raw table; `first_line` is the file line of its first row (2 after a CSV header)."""
    mapping = canonical_headers(raw.columns, require_price)
    wanted = {f.name for f in (*FEATURES, *OPTIONAL, *([TARGET] if require_price else []))}
    parsed: dict[str, np.ndarray] = {}
    problems: dict[str, np.ndarray] = {}
    for column, name in mapping.items():
        if name not in wanted:
            continue
        parsed[name], problems[name] = _parse_column(raw[column], PARSERS[name])

    bad = np.zeros(len(raw), dtype=bool)
    for reasons in problems.values():
        bad |= reasons != None  # noqa: E711 - elementwise on an object array
    listings = pd.DataFrame({name: values[~bad] for name, values in parsed.items()})
    listings.index = np.flatnonzero(~bad)
    listings = _typed(listings)
    rejects = _rejects(raw, mapping, problems, bad, first_line)
    return LoadedListings(listings=listings, rejects=rejects, raw=raw)


def load_listings(path: str | Path, require_price: bool) -> LoadedListings:
    raw = read_export(path)
    # Parquet has no header line: its rows are numbered from 1.
    first_line = 1 if Path(path).suffix.lower() == ".parquet" else 2
    return parse_listings(raw, require_price, first_line)


def _parse_column(values: pd.Series, parse) -> tuple[np.ndarray, np.ndarray]:
    """Parses each distinct value once: exports repeat the same spellings many times over."""
    values = values.astype(object)
    if pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        # Mixed Python values: True == 1 == 1.0 would share one parse, so key by type as well.
        keys = pd.Series([(type(v), v) for v in values], dtype=object)
        codes, unique_keys = pd.factorize(keys, use_na_sentinel=False)
        uniques = [value for _, value in unique_keys]
    else:
        codes, uniques = pd.factorize(values, use_na_sentinel=False)
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


def _rejects(raw, mapping, problems, bad, first_line) -> pd.DataFrame:
    rows = np.flatnonzero(bad)
    header_of = {name: column for column, name in mapping.items()}
    columns, reasons = [], []
    for row in rows:
        failed = [name for name, why in problems.items() if why[row] is not None]
        columns.append(", ".join(header_of[name] for name in failed))
        reasons.append("; ".join(problems[name][row] for name in failed))
    rejects = pd.DataFrame(
        {
            "line": rows + first_line,
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
