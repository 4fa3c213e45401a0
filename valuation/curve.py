"""The fans curve: a smooth, non-decreasing price curve in fans that the point model starts from.

Trees price fans in steps, and every step is learned from the few sales between two cut points;
the curve gives the booster a smooth start (log price rising with log fans), so its trees learn
what the curve does not say: the flags, the category, and where the market bends away from it.
The estimate is curve(fans) + the booster's score. Data on the model card, not code: the levels
on a grid of log10 fans, read by linear interpolation (flat beyond the grid: like trees, the
curve does not extrapolate).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FansCurve:
    log10_fans: tuple[float, ...]
    """The grid, increasing."""
    level: tuple[float, ...]
    """The curve's log price at each grid point; non-decreasing, so the estimate stays
    non-decreasing in fans (the booster is, too)."""
    reference: float
    """The curve's mean over the training sales: the explanation's reference price includes it,
    and fans' contribution is the curve's distance from it."""

    def __call__(self, fans) -> np.ndarray | float:
        return np.interp(np.log10(np.maximum(fans, 1.0)), self.log10_fans, self.level)

    def as_card(self) -> dict:
        return {
            "log10_fans": list(self.log10_fans),
            "level": list(self.level),
            "reference": self.reference,
        }

    @classmethod
    def from_card(cls, card: dict | None) -> FansCurve | None:
        if not card:
            return None
        return cls(tuple(card["log10_fans"]), tuple(card["level"]), float(card["reference"]))
