"""Pricing many listings at once: a whole export for `valuation batch`, raw rows for the pyfunc."""

from __future__ import annotations

import pandas as pd
from tqdm import tqdm

from valuation.loading import LoadedListings, parse_listings
from valuation.valuer import Valuer

PRICE_COLUMNS = ["price_estimate", "price_low", "price_high"]
CHUNK = 50_000


def price_export(valuer: Valuer, loaded: LoadedListings) -> pd.DataFrame:
    """The readable rows as exported, plus price_estimate, price_low, price_high, model_version."""
    chunks = []
    starts = range(0, len(loaded.listings), CHUNK)
    for start in tqdm(starts, desc="pricing", unit="chunk", disable=len(starts) < 4 or None):
        chunks.append(valuer.value_frame(loaded.listings.iloc[start : start + CHUNK]))
    prices = pd.concat(chunks) if chunks else pd.DataFrame(columns=PRICE_COLUMNS, dtype=float)
    priced = loaded.raw.iloc[loaded.listings.index].reset_index(drop=True)
    for column in PRICE_COLUMNS:
        priced[column] = prices[column].to_numpy()
    priced["model_version"] = valuer.version
    return priced


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
