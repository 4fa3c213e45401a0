"""Comparable past sales, as a broker would show them next to a valuation.

The training sales are kept with the model (as Parquet, data not code) and searched by nearest
neighbours on what a buyer compares first: the audience (log fans), the flags and the category.
Distance: one decade of fans counts 2, a differing flag 1, a differing category 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from valuation.listing import Listing
from valuation.schema import FEATURES, LISTING_ID, PRICE, SOLD_AT

FILE = "comparables.parquet"
MAX_KEPT = 200_000  # the most recent sales are kept: comps are about today's market
MAX_K = 20


@dataclass(frozen=True)
class Comparable:
    listing_id: str | None
    listing: Listing
    price: float
    sold_at: str | None
    similarity: float
    """1 for an identical listing, falling towards 0 with distance: 1 / (1 + distance)."""


class Comparables:
    def __init__(self, sales: pd.DataFrame):
        self.sales = sales.reset_index(drop=True)
        self.vocabularies = {
            f.name: sorted(self.sales[f.name].unique()) for f in FEATURES if f.kind == "text"
        }

    @cached_property
    def _index(self):
        """Built on the first search: a quote without comparables never pays for it."""
        from sklearn.neighbors import NearestNeighbors

        return NearestNeighbors().fit(self._design(self.sales))

    @classmethod
    def from_sales(cls, sales: pd.DataFrame) -> Comparables:
        columns = [f.name for f in (LISTING_ID, *FEATURES, PRICE, SOLD_AT) if f.name in sales]
        kept = sales[columns]
        if SOLD_AT.name in kept and len(kept) > MAX_KEPT:
            kept = kept.sort_values(SOLD_AT.name, na_position="first").tail(MAX_KEPT)
        return cls(kept.tail(MAX_KEPT))

    def _design(self, frame: pd.DataFrame) -> np.ndarray:
        """Each feature's columns, weighted by its `similarity_weight`: counts per decade,
        flags as 0/1, the category one-hot."""
        columns = []
        for field in FEATURES:
            values = frame[field.name]
            if field.kind == "count":
                columns.append(
                    np.log10(values.to_numpy(dtype=float) + 1.0) * field.similarity_weight
                )
            elif field.kind == "flag":
                columns.append(values.to_numpy(dtype=float) * field.similarity_weight)
            else:
                columns.append(
                    self._onehot(values, self.vocabularies[field.name]) * field.similarity_weight
                )
        return np.column_stack(columns)

    @staticmethod
    def _onehot(values: pd.Series, vocabulary: list[str]) -> np.ndarray:
        """One-hot scaled so that two different values lie exactly 1 apart."""
        codes = pd.Categorical(values, categories=vocabulary).codes
        onehot = np.zeros((len(values), len(vocabulary)))
        known = codes >= 0
        onehot[np.flatnonzero(known), codes[known]] = np.sqrt(0.5)
        return onehot

    def find(self, listing: Listing, k: int) -> list[Comparable]:
        k = max(0, min(k, MAX_K, len(self.sales)))
        if k == 0:
            return []
        query = pd.DataFrame([{name: getattr(listing, name) for name in Listing.__slots__}])
        distances, rows = self._index.kneighbors(self._design(query), n_neighbors=k)
        found = []
        for distance, row in zip(distances[0], rows[0], strict=True):
            sale = self.sales.iloc[row]
            sold_at = sale.get(SOLD_AT.name, None)
            listing_id = sale.get(LISTING_ID.name, None)
            found.append(
                Comparable(
                    listing_id=None if pd.isna(listing_id) else str(listing_id),
                    listing=Listing(**{name: _plain(sale[name]) for name in Listing.__slots__}),
                    price=float(sale[PRICE.name]),
                    sold_at=None if pd.isna(sold_at) else str(pd.Timestamp(sold_at).date()),
                    similarity=round(1.0 / (1.0 + float(distance)), 4),
                )
            )
        return found

    def save(self, directory: Path) -> None:
        self.sales.to_parquet(directory / FILE, index=False)

    @classmethod
    def load(cls, directory: Path) -> Comparables | None:
        path = directory / FILE
        return cls(pd.read_parquet(path)) if path.is_file() else None


def _plain(value):
    """numpy scalars -> Python ones (int, bool, str)."""
    return value.item() if hasattr(value, "item") else value
