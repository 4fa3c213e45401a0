"""Pricing many listings at once: a file of any size for `valuation batch` (streamed in chunks, the
same chunk function a Dask cluster runs per partition), and raw rows for the MLflow pyfunc."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from valuation.appraisal import deal_rating
from valuation.loading import (
    ExportError,
    LineNumbers,
    TableWriter,
    parse_column,
    parse_listings,
    read_export_chunks,
    rejects_path,
)
from valuation.parsing import parse_price
from valuation.schema import CATEGORY
from valuation.valuer import DEFAULT_LEVEL, Valuer

PRICE_COLUMNS = ["price_estimate", "price_low", "price_high"]
CHUNK_ROWS = 200_000


@dataclass
class BatchOutcome:
    rows: int
    priced: int
    rejected: int
    output: Path
    rejects: Path | None


def price_chunk(
    valuer: Valuer,
    raw: pd.DataFrame,
    first_line: int | LineNumbers,
    level: float = DEFAULT_LEVEL,
    as_of: dt.date | None = None,
    asking_column: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The readable rows as exported plus price_estimate, price_low, price_high, model_version
    (and as_of, the date valued at, for a model trained on dated sales); and the rejects with
    their line and reason. Every input row is in exactly one of the two. With `asking_column`,
    each row's asking price is rated too (`rate_asking_prices`)."""
    loaded = parse_listings(raw, require_price=False, first_line=first_line)
    priced = raw.iloc[loaded.listings.index].reset_index(drop=True)
    # The model's input and the dates' shifts, once: for the prices and the asking prices alike.
    moved = valuer.level_as_of(loaded.listings[CATEGORY.name].to_numpy(), as_of, loaded.listings)
    matrix = valuer.encoder.matrix(loaded.listings)
    for column, values in zip(
        PRICE_COLUMNS, valuer.value_matrix(matrix, level, moved), strict=True
    ):
        priced[column] = values
    priced["model_version"] = valuer.version
    if valuer.market_date:
        priced["as_of"] = (as_of or valuer.market_date).isoformat()
    if asking_column is not None:
        rate_asking_prices(valuer, priced, priced[asking_column].to_numpy(), matrix, moved)
    return priced, loaded.rejects


def rate_asking_prices(valuer: Valuer, priced: pd.DataFrame, asked, matrix, moved) -> None:
    """Adds asking_percentile, deal_rating and asking_price_error: an asking price that cannot be
    read leaves the listing priced, its rating empty and the reason beside it (nothing dropped)."""
    parsed, errors = parse_column(pd.Series(asked, dtype=object), parse_price)
    readable = errors == None  # noqa: E711 - elementwise on an object array
    prices = np.where(readable, parsed, np.nan).astype(float)
    percentiles = np.full(len(asked), np.nan)
    if readable.any():
        shifted = moved[readable] if np.ndim(moved) else moved
        percentiles[readable] = valuer.percentile_matrix(
            matrix[readable], prices[readable], shifted
        )
    priced["asking_percentile"] = percentiles
    priced["deal_rating"] = [deal_rating(p) if p == p else None for p in percentiles]
    priced["asking_price_error"] = errors


def price_file(
    valuer: Valuer,
    source: str | Path,
    output: str | Path,
    level: float = DEFAULT_LEVEL,
    chunk_rows: int = CHUNK_ROWS,
    as_of: dt.date | None = None,
    asking_column: str | None = None,
) -> BatchOutcome:
    """Streams `source` through the model into `output` (CSV or Parquet), chunk by chunk, so memory
    stays bounded whatever the file's size; rejects go to `<output>.rejects.csv`. A date outside
    the model's market (DateOutsideMarket) is refused before a row is read."""
    valuer.level_as_of([], as_of)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    rejected_path = rejects_path(output)
    rows = 0
    with TableWriter(output) as priced_out, TableWriter(rejected_path) as rejects_out:
        progress = tqdm(desc="pricing", unit=" rows", unit_scale=True, disable=None)
        empty = None
        for raw, first_line in read_export_chunks(source, chunk_rows):
            if asking_column is not None and asking_column not in raw:
                raise ExportError(f"{source}: no column {asking_column!r} of asking prices")
            priced, rejects = price_chunk(valuer, raw, first_line, level, as_of, asking_column)
            priced_out.write(priced)
            if len(rejects):
                rejects_out.write(rejects)
            rows += len(raw)
            progress.update(len(raw))
            empty = priced.iloc[:0]
        progress.close()
        if not priced_out.rows and empty is not None:  # still a file, with the expected columns
            priced_out.write(empty)
    if not rejects_out.rows and rejected_path.exists():
        rejected_path.unlink()  # a stale rejects file from an earlier run would mislead
    return BatchOutcome(
        rows=rows,
        priced=priced_out.rows,
        rejected=rejects_out.rows,
        output=output,
        rejects=rejected_path if rejects_out.rows else None,
    )


def price_rows(valuer: Valuer, rows: pd.DataFrame) -> pd.DataFrame:
    """One answer per input row, in order; a row that cannot be read gets its reason in `error`."""
    rows = rows.reset_index(drop=True)
    loaded = parse_listings(rows, require_price=False, first_line=1)
    priced = valuer.value_frame(loaded.listings).reindex(rows.index)
    priced["known_category"] = loaded.listings["category"].map(valuer.encoder.knows)
    priced["error"] = None
    rejected = loaded.rejects["line"].to_numpy() - 1
    priced.loc[rejected, "error"] = (
        loaded.rejects["column"] + ": " + loaded.rejects["reason"]
    ).to_numpy()
    answer = priced[[*PRICE_COLUMNS, "known_category", "error"]]
    return answer.astype(object).where(answer.notna(), None)  # JSON has no NaN: unpriced is null
