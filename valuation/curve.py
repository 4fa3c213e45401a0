"""The price curve: a smooth start for the point model, a curve in fans plus each category's offset.

Trees price fans in steps, and every step is learned from the few sales between two cut points;
the curve gives the booster a smooth start (log price rising with log fans, each category at its
own level), so its trees learn what the curve does not say: the flags, and where the market bends
away from it. The estimate is curve(row) + the booster's score. Data on the model card, not code:
the fans part as levels on a grid of log10 fans, read by linear interpolation (flat below the
grid; past its end, for up to BEYOND_DECADES of fans, rising by the slope training measured at
the top, where the trees, flat past the last sale, would value a larger account as the largest),
and one offset per category code (the code of a category outside the vocabulary: 0, the average
sale's category).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from valuation.encoding import CATEGORY_COLUMN, FANS_COLUMN

BEYOND_DECADES = 1.0
"""How far past the most fans of any training sale the curve keeps rising (in decades of fans):
further, nothing in the data says the slope holds; the price stays where it got to."""


@dataclass(frozen=True)
class PriceCurve:
    log10_fans: tuple[float, ...]
    """The grid, increasing."""
    level: tuple[float, ...]
    """The curve's log price at each grid point; non-decreasing, so the estimate stays
    non-decreasing in fans (the booster is, too)."""
    category: tuple[float, ...]
    """Each category code's log offset, in the encoder's order; the unknown code's is 0."""
    reference: tuple[float, float]
    """The mean over the training sales of the fans part and of the category part: the
    explanation's reference price includes them, and fans' and the category's contributions are
    their parts' distances from them."""
    beyond_slope: float = 0.0
    """Log price per decade of fans past the grid's end (up to BEYOND_DECADES); 0, flat, in
    bundles written before it."""
    _arrays: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        offsets = np.append(np.asarray(self.category, dtype=float), 0.0)  # then the unknown code
        grid, level = np.asarray(self.log10_fans), np.asarray(self.level)
        object.__setattr__(self, "_arrays", (grid, level, offsets))

    def fans_part(self, fans) -> np.ndarray:
        """Linear interpolation on the grid, flat below it, `beyond_slope` past it (for up to
        BEYOND_DECADES); one formula, written out, for arrays and for `one` alike, so a quote
        and a batch price a listing to the same bit."""
        grid, level, _ = self._arrays
        x = np.log10(np.maximum(fans, 1.0))
        j = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, len(grid) - 2)
        t = np.clip((x - grid[j]) / (grid[j + 1] - grid[j]), 0.0, 1.0)
        past = np.clip(x - grid[-1], 0.0, BEYOND_DECADES)
        return level[j] + t * (level[j + 1] - level[j]) + self.beyond_slope * past

    def category_part(self, codes) -> np.ndarray:
        offsets = self._arrays[2]
        return offsets[np.minimum(np.asarray(codes, dtype=int), len(offsets) - 1)]

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        """The curve's log price for each row of the model's input matrix."""
        return self.fans_part(matrix[:, FANS_COLUMN]) + self.category_part(
            matrix[:, CATEGORY_COLUMN]
        )

    def one(self, fans: float, code: float) -> float:
        """One row's log price in plain Python (the quote path: no array to build)."""
        grid, level = self.log10_fans, self.level
        x = float(np.log10(max(fans, 1.0)))
        j = min(max(bisect_right(grid, x) - 1, 0), len(grid) - 2)
        t = min(max((x - grid[j]) / (grid[j + 1] - grid[j]), 0.0), 1.0)
        past = min(max(x - grid[-1], 0.0), BEYOND_DECADES)
        code = int(code)
        offset = self.category[code] if 0 <= code < len(self.category) else 0.0
        return level[j] + t * (level[j + 1] - level[j]) + self.beyond_slope * past + offset

    def contributions(self, row: np.ndarray) -> tuple[float, float]:
        """One row's fans and category parts, less their means (the reference's)."""
        fans = float(self.fans_part(row[FANS_COLUMN])) - self.reference[0]
        return fans, float(self.category_part(row[CATEGORY_COLUMN])) - self.reference[1]

    def as_card(self) -> dict:
        return {
            "log10_fans": list(self.log10_fans),
            "level": list(self.level),
            "category": list(self.category),
            "reference": list(self.reference),
            "beyond_slope": self.beyond_slope,
        }

    @classmethod
    def from_card(cls, card: dict | None) -> PriceCurve | None:
        if not card:
            return None
        return cls(
            tuple(card["log10_fans"]),
            tuple(card["level"]),
            tuple(card["category"]),
            tuple(card["reference"]),
            float(card.get("beyond_slope", 0.0)),
        )
