"""Is the model still right? Live accuracy on the sales reported back, and input drift: the
population stability index (PSI) of each feature between the training data and recent quotes.

A training run stores a `profile` of its data in the bundle (bins and shares per feature); the
service compares recent listings with it. PSI reads, by the usual rule of thumb: < 0.1 stable,
0.1-0.25 shifting, > 0.25 a different population.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np
import pandas as pd

from valuation.schema import FEATURES

FANS_BINS = 10
OTHER = "(other)"
_FLOOR = 1e-4
"""An empty bin counts as this share, so that PSI stays finite (the usual convention)."""


def profile(listings: pd.DataFrame) -> dict[str, dict]:
    """Bins and their shares for every feature: fans by deciles of log fans, flags by value,
    categories by the training vocabulary (the rare tail pooled as `(other)`)."""
    result = {}
    for field in FEATURES:
        values = listings[field.name]
        if field.kind == "count":
            logs = np.log1p(values.to_numpy(dtype=float))
            inner = np.unique(np.quantile(logs, np.linspace(0, 1, FANS_BINS + 1)[1:-1]))
            result[field.name] = {"edges": inner.tolist(), "shares": _shares_binned(logs, inner)}
        elif field.kind == "flag":
            result[field.name] = {
                "values": [False, True],
                "shares": _shares_of(values, [False, True]),
            }
        else:
            shares = values.value_counts(normalize=True)
            kept = [str(name) for name, share in shares.items() if share >= 0.01]
            result[field.name] = {
                "values": [*kept, OTHER],
                "shares": _shares_of(values.where(values.isin(kept), OTHER), [*kept, OTHER]),
            }
    return result


def stability(reference: dict[str, dict], listings: pd.DataFrame) -> dict[str, float]:
    """PSI of each profiled feature of `listings` against the training `reference`."""
    result = {}
    for name, bins in reference.items():
        values = listings[name]
        if "edges" in bins:
            observed = _shares_binned(np.log1p(values.to_numpy(dtype=float)), bins["edges"])
        else:
            known = bins["values"]
            if OTHER in known:
                values = values.where(values.isin(known), OTHER)
            observed = _shares_of(values, known)
        result[name] = psi(bins["shares"], observed)
    return result


def psi(expected: Iterable[float], observed: Iterable[float]) -> float:
    e = np.maximum(np.asarray(list(expected), dtype=float), _FLOOR)
    o = np.maximum(np.asarray(list(observed), dtype=float), _FLOOR)
    return float(np.sum((o - e) * np.log(o / e)))


def live_accuracy(sales) -> dict[str, tuple[float, int]]:
    """Median absolute percentage error and count of sales, by the model version that quoted
    them. `sales` are records with `model_version`, `price` and `price_estimate`."""
    errors: dict[str, list[float]] = defaultdict(list)
    for sale in sales:
        errors[sale.model_version].append(abs(sale.price_estimate - sale.price) / sale.price)
    return {version: (float(np.median(e)) * 100, len(e)) for version, e in errors.items()}


def _shares_binned(values: np.ndarray, edges) -> list[float]:
    counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
    return (counts / max(len(values), 1)).tolist()


def _shares_of(values: pd.Series, known: list) -> list[float]:
    counts = values.value_counts()
    return [float(counts.get(value, 0)) / max(len(values), 1) for value in known]
