"""A simulated Kuaishou account market, for sample data, tests and benchmarks.

No public record of account sales exists, so every figure this module produces is SIMULATED. Its
assumptions are stated here and in data/README.md, and they are assumptions, not market facts:

- Fans are log-normally spread: median about 2万, from a few hundred to several million.
- The typical (median) price grows sublinearly with fans: 30 + 520 * (fans / 1万) ** 0.68 CNY,
  so 1万 fans ~ 550 CNY, 10万 ~ 2,500 CNY, 100万 ~ 12,000 CNY.
- A violation on record discounts the price by 40%. Live permission adds a premium that grows
  with the audience (about +12% at 1万 fans, +35% at 100万). Verification adds 18%.
- Categories differ: a fixed premium or discount per category (see CATEGORY_PREMIUM).
- Noise is log-normal and larger for small accounts: sigma 0.42 at 100 fans down to 0.16 from
  10万 fans on.
- Real exports hold bad rows. Priced but wrong: 1.5% of sales carry a price typo (an extra zero,
  or a missing one), 2% are bargain sales at 45% of the going price; the simulator's true
  quantiles include these, because a buyer faces them too. Unreadable: a share of rows
  (`bad_share`) carries a value no parser should accept (面议 as a price, 不详 as a flag...).
- Sales span the 24 months to 2026-10-31 (the market date), and some categories' prices drift:
  each at its own yearly rate (CATEGORY_DRIFT; the others hold still). `typical_price` is the
  price at the market date; a sale's median is moved by its category's level on its day.

Rows are written in the marketplace's own spellings (Chinese headers, `13.13W`, 有违规, ¥1,200...),
and optionally with the true conditional median and quantiles of each row's price.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from valuation.schema import (
    BY_NAME,
    CATEGORY,
    FANS,
    FLAGS,
    LISTING_ID,
    LIVE_PERMISSION,
    PRICE,
    SOLD_AT,
    VERIFIED,
    VIOLATIONS,
)

CATEGORY_PREMIUM = {
    "自媒体": 1.00,
    "美食": 1.15,
    "搞笑": 1.10,
    "游戏": 1.20,
    "情感": 0.90,
    "颜值": 1.05,
    "母婴": 1.30,
    "汽车": 1.40,
    "教育": 1.25,
    "剧情": 1.00,
    "宠物": 1.10,
    "三农": 0.85,
    "穿搭": 1.15,
    "影视": 0.95,
}
CATEGORY_WEIGHT = np.array([14, 10, 10, 8, 8, 8, 5, 4, 5, 8, 6, 6, 5, 3], dtype=float)

VIOLATION_DISCOUNT = 0.60
VERIFIED_PREMIUM = 1.18
TYPO_SHARE = 0.015
BARGAIN_SHARE = 0.02
BARGAIN_RATIO = 0.45
PERIOD_DAYS = 730
PERIOD_END = dt.date(2026, 10, 31)
CATEGORY_DRIFT = {"美食": 0.15, "汽车": 0.20, "母婴": 0.10, "游戏": -0.12, "情感": -0.10}
"""Yearly change of log price (0.15: about +16% a year) of the categories that drift: SIMULATED."""

_BAD_VALUES = {
    FANS.name: ["约10万", "十万", "-300", "n/a"],
    VIOLATIONS.name: ["不详", "maybe"],
    LIVE_PERMISSION.name: ["待定", "2"],
    VERIFIED.name: ["?", "审核中"],
    CATEGORY.name: [""],
    PRICE.name: ["面议", "0", "¥-500", "价格待议"],
}


PRICED_BY = (FANS, VIOLATIONS, LIVE_PERMISSION, VERIFIED, CATEGORY)
"""The fields the simulated market prices by, in `typical_price`'s order (a field added to the
schema and not taught here is left out of the sample data, read with its default)."""


def typical_price(fans, violations, live_permission, verified, category) -> np.ndarray:
    """The clean market's median price (before noise, typos and bargains), vectorised."""
    fans = np.asarray(fans, dtype=float)
    price = 30.0 + 520.0 * (fans / 1e4) ** 0.68
    live_premium = 1.0 + np.clip(0.12 + 0.115 * np.log10(np.maximum(fans, 1.0) / 1e4), 0.02, 0.45)
    price = price * np.where(np.asarray(violations, bool), VIOLATION_DISCOUNT, 1.0)
    price = price * np.where(np.asarray(live_permission, bool), live_premium, 1.0)
    price = price * np.where(np.asarray(verified, bool), VERIFIED_PREMIUM, 1.0)
    premium = pd.Series(np.asarray(category)).map(CATEGORY_PREMIUM).fillna(1.0).to_numpy()
    return price * premium


def market_level(category, sold_at) -> np.ndarray:
    """Log price level of each sale's category on its day relative to PERIOD_END (0 there, and
    0 for a sale without a date: valued at the market date)."""
    rate = pd.Series(np.asarray(category)).map(CATEGORY_DRIFT).fillna(0.0).to_numpy()
    days = (pd.Timestamp(PERIOD_END) - pd.to_datetime(pd.Series(sold_at))).dt.days.to_numpy()
    return np.nan_to_num(-rate * days / 365.0)


def noise_sigma(fans) -> np.ndarray:
    """Log-price noise: wide for small accounts, narrow for established ones."""
    log_fans = np.log10(np.maximum(np.asarray(fans, dtype=float), 1.0))
    return 0.16 + 0.26 * np.clip((5.0 - log_fans) / 3.0, 0.0, 1.0)


def _components(median: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """The price distribution as a mixture: (weight, log-location) of each log-normal part."""
    log_median = np.log(median)
    clean = 1.0 - TYPO_SHARE - BARGAIN_SHARE
    return [
        (clean, log_median),
        (TYPO_SHARE / 2, log_median + np.log(10.0)),
        (TYPO_SHARE / 2, log_median - np.log(10.0)),
        (BARGAIN_SHARE, log_median + np.log(BARGAIN_RATIO)),
    ]


def true_quantiles(listings: pd.DataFrame, levels=(0.1, 0.5, 0.9)) -> dict[float, np.ndarray]:
    """Each row's true price quantiles under the simulated market, typos and bargains included.

    The price is a mixture of log-normals sharing the row's noise (see `_components`); its
    quantiles are found by bisection on the mixture's CDF. Exact up to rounding to whole yuan.
    """
    from scipy.special import ndtr

    median = typical_price(*(listings[f.name] for f in PRICED_BY))
    if (
        SOLD_AT.name in listings
    ):  # a dated row at its day's level; an undated one at the market date
        median = median * np.exp(market_level(listings[CATEGORY.name], listings[SOLD_AT.name]))
    sigma = noise_sigma(listings[FANS.name])
    parts = _components(median)
    lo = np.log(median) - np.log(10.0) - 8 * sigma
    hi = np.log(median) + np.log(10.0) + 8 * sigma
    result = {}
    for level in levels:
        a, b = lo.copy(), hi.copy()
        for _ in range(60):  # bisection on the mixture's CDF in log space
            mid = (a + b) / 2
            cdf = sum(w * ndtr((mid - loc) / sigma) for w, loc in parts)
            below = cdf < level
            a = np.where(below, mid, a)
            b = np.where(below, b, mid)
        result[level] = np.exp((a + b) / 2)
    return result


def simulate_sales(rows: int, seed: int = 0, at_end: bool = False) -> pd.DataFrame:
    """Canonical, typed sales: the features, `price`, `listing_id` and `sold_at`; with `at_end`,
    all sold on the market date (PERIOD_END: what a model of these sales values listings at)."""
    rng = np.random.default_rng(seed)
    log_fans = np.clip(rng.normal(4.3, 0.85, rows), 2.0, 7.3)
    fans = _round_as_displayed(np.round(10**log_fans).astype(np.int64))
    categories = np.array(list(CATEGORY_PREMIUM))
    sales = pd.DataFrame(
        {
            FANS.name: fans,
            VIOLATIONS.name: rng.random(rows) < 0.18,
            LIVE_PERMISSION.name: rng.random(rows)
            < np.clip(0.15 + 0.12 * (log_fans - 3), 0.1, 0.8),
            VERIFIED.name: rng.random(rows) < np.clip(0.05 + 0.1 * (log_fans - 3), 0.03, 0.6),
            CATEGORY.name: rng.choice(categories, rows, p=CATEGORY_WEIGHT / CATEGORY_WEIGHT.sum()),
        }
    )
    days_before_end = rng.integers(0, PERIOD_DAYS, rows)
    if at_end:
        days_before_end[:] = 0
    sold_at = pd.Timestamp(PERIOD_END) - pd.to_timedelta(days_before_end, unit="D")
    median = typical_price(*(sales[f.name] for f in PRICED_BY)) * np.exp(
        market_level(sales[CATEGORY.name], sold_at)
    )
    price = median * np.exp(rng.normal(0.0, noise_sigma(fans)))
    fate = rng.random(rows)
    typo = fate < TYPO_SHARE
    bargain = (fate >= TYPO_SHARE) & (fate < TYPO_SHARE + BARGAIN_SHARE)
    price = np.where(typo, price * np.where(rng.random(rows) < 0.5, 10.0, 0.1), price)
    price = np.where(bargain, price * BARGAIN_RATIO, price)
    sales[PRICE.name] = np.maximum(np.round(price), 1.0)
    sales[LISTING_ID.name] = [f"KS{seed:03d}{i:08d}" for i in range(rows)]
    sales[SOLD_AT.name] = sold_at.date
    return sales


def _round_as_displayed(fans: np.ndarray) -> np.ndarray:
    """Marketplaces show 1万 and more as `13.13W`: the count a buyer sees is rounded to 100."""
    return np.where(fans >= 10_000, np.round(fans / 100).astype(np.int64) * 100, fans)


def to_marketplace(sales: pd.DataFrame, seed: int = 0, bad_share: float = 0.0) -> pd.DataFrame:
    """Renders canonical sales in the marketplace's spellings and Chinese headers.

    `bad_share` of rows get one unreadable value each, as real exports do.
    """
    rng = np.random.default_rng(seed + 1)
    rows = len(sales)
    out = pd.DataFrame(index=sales.index)
    out[LISTING_ID.marketplace_header] = sales[LISTING_ID.name]
    out[FANS.marketplace_header] = [
        _spell_fans(n, r) for n, r in zip(sales[FANS.name], rng.random(rows))
    ]
    for flag in FLAGS:
        yes, no = flag.true_words[0], flag.false_words[0]
        out[flag.marketplace_header] = np.where(sales[flag.name], yes, no)
    out[CATEGORY.marketplace_header] = sales[CATEGORY.name]
    out[PRICE.marketplace_header] = [
        _spell_price(p, r) for p, r in zip(sales[PRICE.name], rng.random(rows))
    ]
    out[SOLD_AT.marketplace_header] = [d.isoformat() for d in sales[SOLD_AT.name]]

    bad_rows = np.flatnonzero(rng.random(rows) < bad_share)
    columns = list(_BAD_VALUES)
    for row in bad_rows:
        field = columns[rng.integers(len(columns))]
        header = BY_NAME[field].marketplace_header
        out.iloc[row, out.columns.get_loc(header)] = rng.choice(_BAD_VALUES[field])
    return out.reset_index(drop=True)


def _spell_fans(fans: int, draw: float) -> str:
    if fans >= 10_000:
        if draw < 0.6:
            return f"{fans / 1e4:.2f}W"
        if draw < 0.75:
            return f"{fans / 1e4:.2f}w"
        if draw < 0.9 and fans % 1000 == 0:
            return f"{fans / 1e4:.1f}万"
        return f"{fans:,}"
    return f"{fans:,}" if draw < 0.3 else str(fans)


def _spell_price(price: float, draw: float) -> str:
    yuan = int(round(price))
    if draw < 0.4:
        return f"¥{yuan:,}"
    if draw < 0.7:
        return f"{yuan}元"
    if draw < 0.8 and yuan >= 10_000 and yuan % 100 == 0:
        return f"{yuan / 1e4:g}万"
    return str(yuan)


def generate(
    rows: int, seed: int = 0, bad_share: float = 0.005, truth: bool = False
) -> pd.DataFrame:
    """A marketplace export of `rows` simulated sales; with `truth`, the true price quantiles too."""
    sales = simulate_sales(rows, seed)
    export = to_marketplace(sales, seed, bad_share)
    if truth:
        for level, values in true_quantiles(sales).items():
            export[f"true_q{round(level * 100):02d}"] = np.round(values, 2)
    return export
