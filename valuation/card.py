"""The model card: what a bundle says about its model, typed, beside LightGBM's text models.

Written as `bundle.json` by `Valuer.save`, read back by `Valuer.load`; versioned with the bundle
format (`BUNDLE_FORMAT`). Data only: loading a card executes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from valuation.curve import PriceCurve
from valuation.market import MarketIndex

BUNDLE_FORMAT = 5
"""3: the point model may start from a price curve (`price_curve` on the card); code that reads
format 2 only would price without it, so it refuses a 3. 4: the curve may hold each flag's part
(`PriceCurve.flags`), which code that reads format 3 would price without, so it refuses a 4.
5: the curve may give each category a slope in fans (`PriceCurve.category_slope`), which code
that reads format 4 would price without, so it refuses a 5. Format 2 bundles (no curve), 3 (a
curve without flags) and 4 (without slopes) still load."""
READS_FORMATS = (2, 3, 4, 5)


@dataclass(frozen=True)
class ModelCard:
    residual_p: tuple[float, ...]
    """The probabilities of the standardized residual's calibrated quantiles."""
    residual_z_by_band: tuple[tuple[float, ...], ...]
    """Those quantiles, per fans band (valuer.FANS_BANDS): the ranges and percentiles."""
    params: dict[str, Any]
    """The point model's LightGBM parameters and its boosting `rounds`."""
    trained_at: str
    """UTC, ISO 8601, to the second."""
    training_rows: int
    """Sales the served model learned from."""
    calibration_rows: int
    """Sales the residual quantiles were measured on (the typo-shaped ones screened out)."""
    screened_typos: int = 0
    """Training sales set aside as having a price typo's shape."""
    center_shift: float = 0.0
    """Log price added to every estimate: the median of the out-of-sample residuals."""
    price_curve: PriceCurve | None = None
    """The point model's smooth start (None: the booster alone, as in format 2)."""
    market: MarketIndex | None = None
    """Prices over time, for a model trained on dated sales."""
    profile: dict[str, dict] | None = None
    """The training listings' bins and shares per feature, for drift monitoring."""
    holdout_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """Errors on the holdout of the model and of each baseline (the fit that did not see it)."""
    holdout_by: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    """The model's holdout MdAPE and sales by fans band and by category (training.evaluation
    .accuracy_by): where it is less sure."""
    data_sha256: str | None = None
    data_rows: int | None = None
    split_by: str | None = None
    """How the holdout was drawn: "time" (the latest sales) or "random"."""
    split_seed: int | None = None
    holdout_share: float | None = None
    price_span: tuple[float, float] | None = None
    """The lowest and highest training sale price, CNY (the smoke check's bounds)."""
    engine: str = "local"
    """"local" or "dask": where the point model was fitted."""

    def as_json(self) -> dict[str, Any]:
        """The card as bundle.json holds it (without what `Valuer.save` adds: format, features,
        categories, versions)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["residual_p"] = list(self.residual_p)
        data["residual_z_by_band"] = [list(z) for z in self.residual_z_by_band]
        data["price_curve"] = self.price_curve.as_card() if self.price_curve else None
        data["market"] = self.market.as_card() if self.market else None
        data["price_span"] = list(self.price_span) if self.price_span else None
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelCard:
        """From bundle.json; the keys `Valuer.save` adds, and any this code does not know, are
        left aside."""
        known = {f.name for f in fields(cls)}
        values = {name: value for name, value in data.items() if name in known}
        values["residual_p"] = tuple(data["residual_p"])
        values["residual_z_by_band"] = tuple(tuple(z) for z in data["residual_z_by_band"])
        values["price_curve"] = PriceCurve.from_card(data.get("price_curve"))
        values["market"] = MarketIndex.from_card(data.get("market"))
        span = data.get("price_span")
        values["price_span"] = tuple(span) if span else None
        return cls(**values)
