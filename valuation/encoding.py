"""Turns listings into the model's numeric input row, the same way at fit time and at quote time.

Categories are coded through an explicit, stored vocabulary (not pandas' category dtype, whose codes
depend on the data at hand). A category outside it gets the code after the vocabulary's last,
`unknown_code`: the point model learns that code from a share of training sales whose category it
is not shown (training.steps.UNKNOWN_CATEGORY_SHARE), so an unseen category is valued as the
average sale's category, not sent down whichever branch LightGBM keeps for unseen values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from valuation.listing import Listing
from valuation.schema import CATEGORY, FANS, FEATURES, FLAGS

FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
CATEGORICAL: tuple[int, ...] = tuple(i for i, f in enumerate(FEATURES) if f.kind == "text")
MONOTONE: tuple[int, ...] = tuple(f.monotone for f in FEATURES)
FANS_COLUMN = FEATURE_NAMES.index(FANS.name)
CATEGORY_COLUMN = FEATURE_NAMES.index(CATEGORY.name)
FLAG_COLUMNS: tuple[int, ...] = tuple(FEATURE_NAMES.index(flag.name) for flag in FLAGS)


@dataclass(frozen=True)
class Encoder:
    categories: tuple[str, ...]
    """The vocabulary: a category's code is its position here."""

    @classmethod
    def fit(cls, categories: Sequence[str] | pd.Series) -> Encoder:
        """Vocabulary of the training data, most frequent first (ties by name) so codes are stable."""
        counts = pd.Series(categories).value_counts()
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        return cls(tuple(name for name, _ in ordered))

    _codes: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "_codes", {name: i for i, name in enumerate(self.categories)})

    @property
    def unknown_code(self) -> int:
        return len(self.categories)

    def knows(self, category: str) -> bool:
        return category in self._codes

    def row(self, listing: Listing) -> np.ndarray:
        """The model's input for one listing, built without pandas."""
        row = np.empty((1, len(FEATURE_NAMES)), dtype=np.float64)
        self.fill(row, listing)
        return row

    def fill(self, row: np.ndarray, listing: Listing) -> None:
        """Writes one listing into a (1, n_features) buffer in place (the quote path)."""
        values = row[0]
        for j, name in enumerate(FEATURE_NAMES):
            values[j] = getattr(listing, name) if j != CATEGORY_COLUMN else 0.0
        values[CATEGORY_COLUMN] = self._codes.get(listing.category, len(self.categories))

    def rows(self, listings: Sequence[Listing]) -> np.ndarray:
        """The model's input for a list of listings, without pandas (the batch quote path)."""
        out = np.empty((len(listings), len(FEATURE_NAMES)), dtype=np.float64)
        for i, listing in enumerate(listings):
            self.fill(out[i : i + 1], listing)
        return out

    def matrix(self, listings: pd.DataFrame) -> np.ndarray:
        """The model's input for many listings with canonical, typed columns."""
        out = np.empty((len(listings), len(FEATURE_NAMES)), dtype=np.float64)
        for j, name in enumerate(FEATURE_NAMES):
            if j == CATEGORY_COLUMN:
                # The vocabulary's positions, vectorised; a category outside it is -1, then
                # the unknown code.
                codes = pd.Categorical(listings[name], categories=self.categories).codes
                out[:, j] = np.where(codes >= 0, codes, self.unknown_code)
            else:
                out[:, j] = listings[name].to_numpy(dtype=np.float64)
        return out
