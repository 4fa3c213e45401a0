"""The price curve: a smooth start for the point model, a curve in fans, each category's offset and
each flag's effect as a curve in fans.

Trees price fans in steps, and every step is learned from the few sales between two cut points;
the curve gives the booster a smooth start (log price rising with log fans, each category at its
own level, each flag's effect growing or shrinking with the account), so its trees learn what the
curve does not say: the rest of the flags' effects, and where the market bends away from it. The
estimate is curve(row) + the booster's score. Data on the model card, not code: the fans part as
levels on a grid of log10 fans, read by linear interpolation (flat below the grid; past its end,
for up to BEYOND_DECADES of fans, rising by the slope training measured at the top, where the
trees, flat past the last sale, would value a larger account as the largest); one offset per
category code (the code of a category outside the vocabulary: 0, the average sale's category);
and each flag's log effect on the same grid (flat outside it), counted where the flag is set,
with, where training found the flag worth more in some categories than in others, each category's
share of it (the unknown code's 0); and, where training found some categories' prices rising
faster with fans than others', each category's slope, counted from a centre on the grid (flat
outside it; the unknown code's 0).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from valuation.encoding import CATEGORY_COLUMN, FANS_COLUMN, FLAG_COLUMNS

PART_COLUMNS = (FANS_COLUMN, CATEGORY_COLUMN, *FLAG_COLUMNS)
"""The input column each of the curve's parts (`contributions`, `reference`) belongs to."""
BEYOND_DECADES = 1.0
"""How far past the most fans of any training sale the curve keeps rising (in decades of fans):
further, nothing in the data says the slope holds; the price stays where it got to."""


@dataclass(frozen=True)
class PriceCurve:
    log10_fans: tuple[float, ...]
    """The grid, increasing."""
    level: tuple[float, ...]
    """The curve's log price at each grid point. With any set of flags' parts added it stays
    non-decreasing, so the estimate stays non-decreasing in fans (the booster is, too)."""
    category: tuple[float, ...]
    """Each category code's log offset, in the encoder's order; the unknown code's is 0."""
    reference: tuple[float, ...]
    """The mean over the training sales of the fans part, of the category part and of each
    flag's part (in FLAGS order): the explanation's reference price includes them, and each
    feature's contribution is its part's distance from its mean."""
    beyond_slope: float = 0.0
    """Log price per decade of fans past the grid's end (up to BEYOND_DECADES); 0, flat, in
    bundles written before it."""
    flags: tuple[tuple[float, ...], ...] = ()
    """Each flag's log effect at each grid point (FLAGS order), of the sign the market logic
    gives it (a violation never raises a price); none in bundles written before them."""
    flag_category: tuple[tuple[float, ...], ...] = ()
    """Each flag's log effect added in each category (FLAGS order, then the encoder's category
    order; the unknown code's is 0), where it is set: the flag's whole effect in a category stays
    of the market logic's sign at any fans. Empty unless the search chose the candidate with
    them (and in bundles written before them)."""
    category_slope: tuple[float, ...] = ()
    """Each category code's log price per decade of fans beside the fans part's (encoder's order;
    the unknown code's 0), counted from `slope_centre` on the grid and flat outside it: the fans
    part is raised where needed so that the curve stays non-decreasing in fans in every
    category. Empty unless the search chose the candidate with them (and in bundles written
    before them)."""
    slope_centre: float = 0.0
    """The log10 fans at which a category's slope part is 0 (the training sales' median)."""
    _arrays: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        offsets = np.append(np.asarray(self.category, dtype=float), 0.0)  # then the unknown code
        grid, level = np.asarray(self.log10_fans), np.asarray(self.level)
        flags = np.asarray(self.flags, dtype=float).reshape(len(self.flags), len(grid))
        by_category = np.zeros((len(self.flag_category), len(offsets)))
        for k, added in enumerate(self.flag_category):
            by_category[k, : len(added)] = added
        slopes = np.zeros(len(offsets))
        slopes[: len(self.category_slope)] = self.category_slope
        object.__setattr__(self, "_arrays", (grid, level, offsets, flags, by_category, slopes))

    def _position(self, fans):
        """Where these fans sit on the grid: the segment j, the share t along it (0 below the
        grid, 1 past it) and the decades past its end (up to BEYOND_DECADES)."""
        grid = self._arrays[0]
        x = np.log10(np.maximum(fans, 1.0))
        j = np.clip(np.searchsorted(grid, x, side="right") - 1, 0, len(grid) - 2)
        t = np.clip((x - grid[j]) / (grid[j + 1] - grid[j]), 0.0, 1.0)
        return j, t, np.clip(x - grid[-1], 0.0, BEYOND_DECADES)

    def fans_part(self, fans) -> np.ndarray:
        """Linear interpolation on the grid, flat below it, `beyond_slope` past it (for up to
        BEYOND_DECADES); one formula, written out, for arrays and for `one` alike, so a quote
        and a batch price a listing to the same bit."""
        return self._fans_at(*self._position(fans))

    def _fans_at(self, j, t, past):
        level = self._arrays[1]
        return level[j] + t * (level[j + 1] - level[j]) + self.beyond_slope * past

    def flag_parts(self, fans) -> list[np.ndarray]:
        """Each flag's log effect at these fans, set or not: linear interpolation on the grid,
        flat outside it (the same formula as `one`'s)."""
        j, t, _ = self._position(fans)
        return self._flags_at(j, t)

    def _flags_at(self, j, t):
        return [part[j] + t * (part[j + 1] - part[j]) for part in self._arrays[3]]

    def category_part(self, codes, fans=None) -> np.ndarray:
        """Each category's offset and, where the curve has them, its slope's part at these fans
        (needed then)."""
        offsets = self._arrays[2]
        if not self.category_slope:
            return offsets[self._codes(codes)]
        return self._category_at(self._codes(codes), *self._position(fans)[:2])

    def _category_at(self, codes, j, t):
        grid, _, offsets, *_, slopes = self._arrays
        on_grid = grid[j] + t * (grid[j + 1] - grid[j])  # the fans, held to the grid
        return offsets[codes] + slopes[codes] * (on_grid - self.slope_centre)

    def _codes(self, codes) -> np.ndarray:
        return np.minimum(np.asarray(codes, dtype=int), len(self._arrays[2]) - 1)

    def flag_parts_in(self, fans, codes) -> list[np.ndarray]:
        """Each flag's log effect at these fans in these categories (`flag_parts` plus its
        category's share), set or not."""
        j, t, _ = self._position(fans)
        return self._flags_in(j, t, codes)

    def _flags_in(self, j, t, codes):
        parts = self._flags_at(j, t)
        if not self.flag_category:
            return parts
        added = self._arrays[4][:, self._codes(codes)]
        return [part + added[k] for k, part in enumerate(parts)]

    def __call__(self, matrix: np.ndarray) -> np.ndarray:
        """The curve's log price for each row of the model's input matrix."""
        position = self._position(matrix[:, FANS_COLUMN])  # once for the fans and the flags
        codes = matrix[:, CATEGORY_COLUMN]
        if self.category_slope:
            category = self._category_at(self._codes(codes), *position[:2])
        else:
            category = self.category_part(codes)
        price = self._fans_at(*position) + category
        parts = self._flags_in(*position[:2], codes)
        for part, column in zip(parts, FLAG_COLUMNS, strict=False):
            price = price + part * matrix[:, column]  # one flag at a time, as `one` adds them
        return price

    def one(self, row) -> float:
        """One input row's log price in plain Python (the quote path: no array to build)."""
        grid, level = self.log10_fans, self.level
        x = float(np.log10(max(row[FANS_COLUMN], 1.0)))
        j = min(max(bisect_right(grid, x) - 1, 0), len(grid) - 2)
        t = min(max((x - grid[j]) / (grid[j + 1] - grid[j]), 0.0), 1.0)
        past = min(max(x - grid[-1], 0.0), BEYOND_DECADES)
        code = int(row[CATEGORY_COLUMN])
        known = 0 <= code < len(self.category)
        offset = self.category[code] if known else 0.0
        if self.category_slope and known:
            on_grid = grid[j] + t * (grid[j + 1] - grid[j])
            offset = offset + self.category_slope[code] * (on_grid - self.slope_centre)
        price = level[j] + t * (level[j + 1] - level[j]) + self.beyond_slope * past + offset
        for k, (part, column) in enumerate(zip(self.flags, FLAG_COLUMNS, strict=False)):
            effect = part[j] + t * (part[j + 1] - part[j])
            if self.flag_category and known:
                effect = effect + self.flag_category[k][code]
            price = price + effect * row[column]
        return price

    def contributions(self, row: np.ndarray) -> tuple[float, ...]:
        """One row's fans, category and (where the curve has them) each flag's part, less their
        means (the reference's)."""
        fans, code = row[FANS_COLUMN], row[CATEGORY_COLUMN]
        parts = [float(self.fans_part(fans)), float(self.category_part(code, fans))]
        for part, column in zip(self.flag_parts_in(fans, code), FLAG_COLUMNS, strict=False):
            parts.append(float(part * row[column]))
        return tuple(part - mean for part, mean in zip(parts, self.reference, strict=True))

    def as_card(self) -> dict:
        return {
            "log10_fans": list(self.log10_fans),
            "level": list(self.level),
            "category": list(self.category),
            "reference": list(self.reference),
            "beyond_slope": self.beyond_slope,
            "flags": [list(part) for part in self.flags],
            "flag_category": [list(added) for added in self.flag_category],
            "category_slope": list(self.category_slope),
            "slope_centre": self.slope_centre,
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
            tuple(tuple(part) for part in card.get("flags", ())),
            tuple(tuple(added) for added in card.get("flag_category", ())),
            tuple(card.get("category_slope", ())),
            float(card.get("slope_centre", 0.0)),
        )
