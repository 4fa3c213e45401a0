"""Eleven markets built apart from `data/markets.py`, to report on and never to choose a default on.

Every market of `data/markets.py` comes from one generator (log price = log typical + sigma x
noise, premiums that multiply), so a pipeline tuned on them may be tuned to that form. The first
six were written on 2026-12-07 by a helper given a brief that did not show that generator ("think
independently about how real account markets might look"); the last five later that day by a
second helper under the same rule, of shapes the six and the generator lack. They are used only
for reports (`benchmarks/independent.py`). Every figure they produce is SIMULATED (data/README.md).

fw is fans in 万; c is the category's log effect (CATEGORY_EFFECT); z, z1, z2 are independent
standard normals; viol, live, ver are the flags (0/1).
- `floor`: price = 120 e^(0.25 z1) + 40 fw^0.9 e^c 0.6^viol 1.4^live 1.15^ver e^(0.4 z2): a
  floor any account fetches, under a fans-driven part (small accounts crowd at the floor);
- `saturating`: price per fan constant to 100万 fans, then growing as fans^0.3; the category
  multiplies the fans part only: (60 + P e^c) 0.7^viol 1.3^live 1.1^ver e^(0.3 z); more large
  accounts (30% drawn around 80万);
- `interactions`: (30 + 60 fw^0.85 e^c L V R) e^(0.3 z): live doubles the price in 美食, 颜值,
  穿搭 and 母婴 only, a violation costs 0.5 fw / (fw + 30) (nothing for the smallest, half for the
  largest), verification is worth 1.35x from 10万 fans only;
- `mixed-noise`: log price = ln 150 + 0.8 ln fw + c - 0.43 viol + 0.26 live + 0.10 ver + e,
  where e is N(0, s_c) for 85% of sales (s_c 0.10 to 0.45 by category) and N(0.2, 0.9) for 15%;
- `dated-trends`: 18 months of sales; log price = ln 150 + 0.9 l - 0.025 l^2 + c + g_c (m - 18)
  - 0.51 viol + 0.30 live + 0.18 ver + 0.35 z (l = ln fw, m the month): 美食 and 颜值 rise 5% a
  month, 游戏 falls 4%, 影视 3%, 情感 2%, the rest rise 0.5%; fans grow 3% a month;
- `rounded`: (40 + 50 fw^0.85 e^c) 0.65^viol 1.3^live 1.15^ver e^(0.35 z), rounded as sellers
  price (to 10 under 500, 50 under 5,000, 100 under 50,000, 500 above); 2% typos (x10 or x0.1,
  not sales) and 3% bargains (30-50% of the price, rounded: real sales);
- `live-by-size`: (50 + 80 fw^0.85 e^c) 0.55^viol 1.3^live 1.2^ver e^(0.3 z), with the flags
  as common as on a real platform, by size (`_shares_by_size`, s(x) = 1 / (1 + e^-x), l = ln fw):
  live 0.03 + 0.85 s(1.6 (l - ln 3)) (5% at 3,000 fans, 16% at 1万, 77% at 10万, 88% at
  100万), verified 0.05 + 0.65 s(1.3 (l - ln 8)) (9% at 1万, 42% at 10万, 68% at 100万),
  violations 0.10 + 0.30 s(l - ln 20) (11% at 1万, 25% at 20万, 35% at 100万);
- `milestones`: (25 + 110 fw^0.85 S e^c) 0.6^viol 1.3^live 1.15^ver e^(0.3 z), where the price
  per fan steps up at each milestone crossed: S = 1.35^[fw >= 1] 1.3^[fw >= 10] 1.25^[fw >= 100]
  (an account just over 1万 fetches ~1.3x one just under); 25% of accounts are listed just over
  a milestone (1万 55%, 10万 35%, 100万 10% of them; fans x e^U(0, 0.15) of it), as sellers list
  an account once it has crossed one; 1% typos;
- `tiny-accounts`: (40 + 90 fw^0.9 e^c) 0.7^viol 1.2^live 1.1^ver e^(s z), s = 0.15 + 0.5 / (1
  + fw) (0.65 for the smallest, 0.4 at 1万, 0.2 at 10万): most prices crowd at 30-150 yuan;
  fans from N(ln 0.3, 1.0) for 92% of accounts (median ~3,300 fans), N(ln 8, 1.5) for 8%; 1%
  typos, 2% bargains;
- `rare-categories`: (40 + 70 fw^0.85 e^c) 0.6^viol 1.3^live 1.15^ver e^(0.3 z) over 40
  categories (LONG_TAIL: the fifteen and 25 rarer), the k-th most common's share (k + 5)^-2.5
  (normalized: 23% 自媒体, 10% the 25 rarer together, ~4.5 sales in 3,000 for the rarest: 法律),
  c from -0.7 (军事) to +0.85 (汽车), sd ~0.4 over the 40; 1% typos, 2% bargains;
- `level-shift`: 18 months of sales; log price = ln 160 + 0.85 ln fw + c + a(m) - a(18) +
  b(m) live - 0.51 viol + 0.14 ver + 0.3 z, where the market's level e^a(m) runs straight (in
  logs) through 1.0, 1.3, 1.3 and 0.975 at months 0, 12, 14 and 18 (up 30% in a year, then a
  policy change takes 25% off in four months) and live's worth e^b(m) is 1.5x to month 14, then
  falls to 1.15x at 18 with the policy; fans grow 3% a month; 3% bargains.
Fans of every market but `saturating` and `tiny-accounts`: ln fw from N(ln 1.5, 1.4) for 85% of
accounts, N(ln 30, 1.3) for 15%, within 100 fans and 3000万; 60% of accounts of 1万 fans and
more are shown as `13.13W` (fans rounded to 100). Flags but `live-by-size`'s: violations 25%,
live 45%, verified 30%. Bargains sell at 30-50% of the price, typos are x10 or x0.1 (not sales).
The truth of each listing is its real sales' price quantiles (bargains included, typos not), by
Monte Carlo; the dated markets' new listings are priced at the market date (month 18).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from valuation.schema import CATEGORY, FANS, LIVE_PERMISSION, PRICE, SOLD_AT, VERIFIED, VIOLATIONS

CATEGORIES = (
    "自媒体", "美食", "搞笑", "剧情", "游戏", "情感", "颜值",
    "宠物", "三农", "母婴", "穿搭", "教育", "汽车", "影视", "户外",
)  # fmt: skip
CATEGORY_WEIGHT = np.array([14, 12, 10, 9, 8, 7, 8, 6, 6, 5, 5, 4, 3, 2, 1], float) / 100
CATEGORY_EFFECT = np.array(
    [0.0, 0.25, 0.10, 0.15, -0.10, -0.20, 0.30, 0.20, -0.15, 0.35, 0.20, 0.40, 0.50, -0.25, 0.05]
)
LIVE_CATEGORIES = np.isin(CATEGORIES, ("美食", "颜值", "穿搭", "母婴"))
_NOISE = {"搞笑": 0.3, "游戏": 0.45, "影视": 0.45, "教育": 0.1, "汽车": 0.1}
NOISE_BY_CATEGORY = np.array([_NOISE.get(c, 0.2) for c in CATEGORIES])
"""`mixed-noise`'s spread of its tight part, by category (0.2 for the rest)."""
_TREND = {"美食": 1.05, "颜值": 1.05, "游戏": 0.96, "影视": 0.97, "情感": 0.98, "教育": 1.0}
MONTHLY_TREND = np.log([_TREND.get(c, 1.005) for c in CATEGORIES])
"""`dated-trends`' change of each category's log price a month (x1.005 for the rest)."""
MONTHS = 18
MARKET_DATE = pd.Timestamp("2026-10-31")
TRUTH_DRAWS = 4000
"""Monte Carlo draws of each listing's price for its true quantiles."""
ACCOUNTS = ((0.85, 1.5, 1.4), (0.15, 30.0, 1.3))
"""Fans in 万: (share, median, sd of ln) of each kind of account."""
TINY_ACCOUNTS = ((0.92, 0.3, 1.0), (0.08, 8.0, 1.5))
FLAG_SHARES = (0.25, 0.45, 0.30)
"""Violations, live permission, verified: each flag's share of listings, whatever the fans."""
MILESTONES = (1.0, 10.0, 100.0)
"""Fans in 万 that buyers pay for reaching (`milestones`)."""
MILESTONE_STEPS = (1.35, 1.3, 1.25)
"""The price per fan's step at each milestone crossed."""
MILESTONE_CROWD = (0.55, 0.35, 0.10)
"""Of the accounts listed just over a milestone, the share at each."""
_LONG_TAIL = {
    "自媒体": 0.0, "美食": 0.35, "搞笑": -0.2, "剧情": 0.1, "游戏": -0.35, "情感": -0.45,
    "颜值": 0.4, "宠物": 0.3, "三农": -0.3, "母婴": 0.65, "穿搭": 0.45, "教育": 0.7,
    "汽车": 0.85, "影视": -0.65, "户外": 0.05, "美妆": 0.45, "舞蹈": -0.2, "萌娃": 0.1,
    "乡村": -0.35, "钓鱼": 0.15, "音乐": -0.3, "情侣": -0.25, "健身": 0.2, "数码": 0.35,
    "二次元": -0.45, "动漫": -0.55, "体育": -0.15, "家居": 0.25, "亲子": 0.3, "旅行": 0.1,
    "手工": -0.1, "摄影": 0.0, "科技": 0.3, "历史": -0.4, "职场": 0.15, "文化": -0.5,
    "军事": -0.7, "财经": 0.7, "医疗健康": 0.55, "法律": 0.5,
}  # fmt: skip
LONG_TAIL = tuple(_LONG_TAIL)
"""`rare-categories`' 40 categories, the most common first."""
LONG_TAIL_EFFECT = np.array(list(_LONG_TAIL.values()))
LONG_TAIL_WEIGHT = (np.arange(1, len(LONG_TAIL) + 1) + 5.0) ** -2.5
LONG_TAIL_WEIGHT = LONG_TAIL_WEIGHT / LONG_TAIL_WEIGHT.sum()
LEVEL_MONTHS = (0.0, 12.0, 14.0, MONTHS)
LEVEL = np.log([1.0, 1.3, 1.3, 0.975])
"""`level-shift`'s log level at LEVEL_MONTHS (straight between), against its first month's."""
LIVE_WORTH = np.log([1.5, 1.5, 1.5, 1.15])
"""`level-shift`'s log premium of live permission at LEVEL_MONTHS."""


@dataclass(frozen=True)
class Market:
    name: str
    rows: tuple[int, ...] = (20_000, 3_000)
    """The export sizes it is reported at."""
    accounts: tuple[tuple[float, float, float], ...] = ACCOUNTS
    dated: bool = False
    typo_share: float = 0.0
    bargain_share: float = 0.0
    rounded: bool = False
    """Prices as sellers round them (bargains too): to 10 under 500, 50 under 5,000, ..."""
    categories: tuple[str, ...] = CATEGORIES
    category_weight: tuple[float, ...] = tuple(CATEGORY_WEIGHT)
    flag_shares: Callable[[np.ndarray], tuple] | None = None
    """Each flag's share (as FLAG_SHARES) as a function of fans in 万; FLAG_SHARES if None."""
    crowd: float = 0.0
    """The share of accounts listed just over a milestone (MILESTONES)."""

    def listings(self, rows: int, rng: np.random.Generator, month=MONTHS) -> dict:
        """Each listing's features, and its month (the market date's, MONTHS, for new ones)."""
        month = np.broadcast_to(np.asarray(month, dtype=float), (rows,))
        kind = rng.choice(len(self.accounts), size=rows, p=[a[0] for a in self.accounts])
        median = np.log([a[1] for a in self.accounts])[kind]
        median = median + (0.03 * (month - MONTHS) if self.dated else 0.0)
        sd = np.array([a[2] for a in self.accounts])[kind]
        fans = np.round(np.clip(np.exp(median + sd * rng.standard_normal(rows)), 0.01, 3000) * 1e4)
        if self.crowd:
            fans = _crowded(fans, self.crowd, rng)
        shown_in_w = (fans >= 1e4) & (rng.random(rows) < 0.6)
        fans = np.where(shown_in_w, np.round(fans / 100) * 100, fans)
        category = rng.choice(len(self.categories), size=rows, p=self.category_weight)
        shares = self.flag_shares(fans / 1e4) if self.flag_shares else FLAG_SHARES
        return {
            "fans": fans,
            "shown_in_w": shown_in_w,
            "category": category,
            "violations": (rng.random(rows) < shares[0]).astype(int),
            "live": (rng.random(rows) < shares[1]).astype(int),
            "verified": (rng.random(rows) < shares[2]).astype(int),
            "month": month,
        }

    def prices(self, listing: dict, rng: np.random.Generator, draws: int = 1) -> np.ndarray:
        """`draws` real sales' prices of each listing (rows x draws), bargains among them."""
        price = _PRICES[self.name](listing, rng, draws)
        if self.bargain_share:
            bargain = rng.random(price.shape) < self.bargain_share
            price = np.where(bargain, price * rng.uniform(0.3, 0.5, price.shape), price)
        return _seller_rounded(price) if self.rounded else price

    def export(self, rows: int, seed: int) -> pd.DataFrame:
        """A marketplace's export of `rows` sales (typos among them), Chinese headers."""
        rng = np.random.default_rng([seed, _ORDER[self.name], rows])
        month = MONTHS
        if self.dated:
            day = rng.integers(0, _SPAN_DAYS + 1, rows)
            day[-1] = _SPAN_DAYS  # the market date is in the export
            month = day / _SPAN_DAYS * MONTHS
        listing = self.listings(rows, rng, month)
        price = self.prices(listing, rng)[:, 0]
        typo = rng.random(rows) < self.typo_share
        price = np.where(typo, price * np.where(rng.random(rows) < 0.5, 10.0, 0.1), price)
        export = _marketplace(listing, self.categories)
        export[PRICE.marketplace_header] = np.round(price, 2)
        if self.dated:
            dates = MARKET_DATE - pd.to_timedelta(_SPAN_DAYS - day, unit="D")
            export[SOLD_AT.marketplace_header] = dates.strftime("%Y-%m-%d")
        return export

    def new_listings(
        self, rows: int, seed: int
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict]:
        """`rows` new listings at the market date as a marketplace lists them, their fans, the
        price each sold at (a real sale), and each one's true 10%, 50% and 90% price quantiles."""
        rng = np.random.default_rng([seed, _ORDER[self.name], 0])
        listing = self.listings(rows, rng)
        sold = self.prices(listing, rng)[:, 0]
        truth = {0.1: np.empty(rows), 0.5: np.empty(rows), 0.9: np.empty(rows)}
        for start in range(0, rows, 500):
            part = {name: values[start : start + 500] for name, values in listing.items()}
            drawn = self.prices(part, rng, TRUTH_DRAWS)
            for level, values in zip(truth, np.quantile(drawn, list(truth), axis=1), strict=True):
                truth[level][start : start + 500] = values
        return _marketplace(listing, self.categories), listing["fans"], sold, truth


def _floor(x: dict, rng, k: int) -> np.ndarray:
    rows = len(x["fans"])
    fw = x["fans"] / 1e4
    worth = np.exp(CATEGORY_EFFECT[x["category"]]) * _flags(x, 0.6, 1.4, 1.15)
    floor = 120.0 * np.exp(0.25 * rng.standard_normal((rows, k)))
    return floor + (40.0 * fw**0.9 * worth)[:, None] * np.exp(0.4 * rng.standard_normal((rows, k)))


def _saturating(x: dict, rng, k: int) -> np.ndarray:
    fw = x["fans"] / 1e4
    per_fan = np.where(fw <= 100, 35.0 * fw, 3500.0 * (np.maximum(fw, 100) / 100) ** 0.3)
    value = (60.0 + per_fan * np.exp(CATEGORY_EFFECT[x["category"]])) * _flags(x, 0.7, 1.3, 1.1)
    return value[:, None] * np.exp(0.3 * rng.standard_normal((len(fw), k)))


def _interactions(x: dict, rng, k: int) -> np.ndarray:
    fw = x["fans"] / 1e4
    live = np.where((x["live"] == 1) & LIVE_CATEGORIES[x["category"]], 2.0, 1.0)
    violation = np.where(x["violations"] == 1, 1.0 - 0.5 * fw / (fw + 30.0), 1.0)
    verified = np.where((x["verified"] == 1) & (fw >= 10), 1.35, 1.0)
    value = (
        30.0
        + 60.0 * fw**0.85 * np.exp(CATEGORY_EFFECT[x["category"]]) * live * violation * verified
    )
    return value[:, None] * np.exp(0.3 * rng.standard_normal((len(fw), k)))


def _mixed_noise(x: dict, rng, k: int) -> np.ndarray:
    fw = x["fans"] / 1e4
    typical = np.log(150.0) + 0.8 * np.log(fw) + CATEGORY_EFFECT[x["category"]]
    typical = typical + np.log(_flags(x, 0.65, 1.3, 1.1))
    shape = (len(fw), k)
    broad = rng.random(shape) < 0.15
    tight = NOISE_BY_CATEGORY[x["category"]][:, None] * rng.standard_normal(shape)
    return np.exp(typical[:, None] + np.where(broad, 0.2 + 0.9 * rng.standard_normal(shape), tight))


def _dated_trends(x: dict, rng, k: int) -> np.ndarray:
    log_fw = np.log(x["fans"] / 1e4)
    typical = np.log(150.0) + 0.9 * log_fw - 0.025 * log_fw**2 + CATEGORY_EFFECT[x["category"]]
    typical = typical + MONTHLY_TREND[x["category"]] * (x["month"] - MONTHS)
    typical = typical + np.log(_flags(x, 0.6, 1.35, 1.2))
    return np.exp(typical[:, None] + 0.35 * rng.standard_normal((len(log_fw), k)))


def _rounded(x: dict, rng, k: int) -> np.ndarray:
    return _base_and_fans(x, rng, k, 40.0, 50.0, 0.85, (0.65, 1.3, 1.15), 0.35)


def _live_by_size(x: dict, rng, k: int) -> np.ndarray:
    return _base_and_fans(x, rng, k, 50.0, 80.0, 0.85, (0.55, 1.3, 1.2), 0.3)


def _milestones(x: dict, rng, k: int) -> np.ndarray:
    fw = x["fans"] / 1e4
    step = np.ones_like(fw)
    for milestone, factor in zip(MILESTONES, MILESTONE_STEPS, strict=True):
        step = np.where(fw >= milestone, step * factor, step)
    return _base_and_fans(x, rng, k, 25.0, 110.0, 0.85, (0.6, 1.3, 1.15), 0.3, step=step)


def _tiny_accounts(x: dict, rng, k: int) -> np.ndarray:
    spread = 0.15 + 0.5 / (1.0 + x["fans"] / 1e4)
    return _base_and_fans(x, rng, k, 40.0, 90.0, 0.9, (0.7, 1.2, 1.1), spread)


def _rare_categories(x: dict, rng, k: int) -> np.ndarray:
    return _base_and_fans(
        x, rng, k, 40.0, 70.0, 0.85, (0.6, 1.3, 1.15), 0.3, effect=LONG_TAIL_EFFECT
    )


def _level_shift(x: dict, rng, k: int) -> np.ndarray:
    log_fw = np.log(x["fans"] / 1e4)
    level = np.interp(x["month"], LEVEL_MONTHS, LEVEL) - LEVEL[-1]
    live = np.interp(x["month"], LEVEL_MONTHS, LIVE_WORTH) * x["live"]
    typical = np.log(160.0) + 0.85 * log_fw + CATEGORY_EFFECT[x["category"]] + level + live
    typical = typical + np.log(_flags(x, 0.6, 1.0, 1.15))
    return np.exp(typical[:, None] + 0.3 * rng.standard_normal((len(log_fw), k)))


def _shares_by_size(fw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`live-by-size`'s flag shares: violations, live and verification commoner on large accounts."""
    log_fw = np.log(fw)
    violations = 0.10 + 0.30 * _logistic(log_fw - np.log(20.0))
    live = 0.03 + 0.85 * _logistic(1.6 * (log_fw - np.log(3.0)))
    verified = 0.05 + 0.65 * _logistic(1.3 * (log_fw - np.log(8.0)))
    return violations, live, verified


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _crowded(fans: np.ndarray, share: float, rng) -> np.ndarray:
    """`share` of the accounts redrawn just over a milestone: listed once they cross it."""
    rows = len(fans)
    over = rng.random(rows) < share
    milestone = rng.choice(MILESTONES, size=rows, p=MILESTONE_CROWD)
    return np.where(over, np.round(milestone * np.exp(rng.uniform(0, 0.15, rows)) * 1e4), fans)


def _base_and_fans(
    x: dict,
    rng,
    k: int,
    base: float,
    per_fan: float,
    power: float,
    flags: tuple[float, float, float],
    spread,
    step=1.0,
    effect: np.ndarray = CATEGORY_EFFECT,
) -> np.ndarray:
    """The form several markets share: (base + per_fan fw^power step e^c) times the flags'
    factors (violation, live, verified), times e^(spread z); `spread` a number or one per
    listing, `step` a factor per listing (milestones)."""
    fw = x["fans"] / 1e4
    value = (base + per_fan * fw**power * step * np.exp(effect[x["category"]])) * _flags(x, *flags)
    spread = np.reshape(spread, (-1, 1))
    return value[:, None] * np.exp(spread * rng.standard_normal((len(fw), k)))


def _flags(x: dict, violation: float, live: float, verified: float) -> np.ndarray:
    return violation ** x["violations"] * live ** x["live"] * verified ** x["verified"]


def _seller_rounded(price: np.ndarray) -> np.ndarray:
    step = np.select([price < 500, price < 5000, price < 50_000], [10, 50, 100], 500)
    return np.maximum(step, np.round(price / step) * step)


def _marketplace(x: dict, categories: tuple[str, ...]) -> pd.DataFrame:
    fans = x["fans"].astype(np.int64)
    shown = [f"{f / 1e4:.2f}W" if w else str(f) for f, w in zip(fans, x["shown_in_w"], strict=True)]
    return pd.DataFrame(
        {
            FANS.marketplace_header: shown,
            VIOLATIONS.marketplace_header: np.where(x["violations"] == 1, "有违规", "无违规"),
            LIVE_PERMISSION.marketplace_header: np.where(x["live"] == 1, "已开通", "未开通"),
            VERIFIED.marketplace_header: np.where(x["verified"] == 1, "已认证", "未认证"),
            CATEGORY.marketplace_header: np.array(categories)[x["category"]],
        }
    )


_PRICES = {
    "floor": _floor,
    "saturating": _saturating,
    "interactions": _interactions,
    "mixed-noise": _mixed_noise,
    "dated-trends": _dated_trends,
    "rounded": _rounded,
    "live-by-size": _live_by_size,
    "milestones": _milestones,
    "tiny-accounts": _tiny_accounts,
    "rare-categories": _rare_categories,
    "level-shift": _level_shift,
}
_ORDER = {name: order for order, name in enumerate(_PRICES)}
_SPAN_DAYS = (MARKET_DATE - (MARKET_DATE - pd.DateOffset(months=MONTHS))).days

MARKETS = (
    Market("floor"),
    Market("saturating", accounts=((0.70, 3.0, 1.5), (0.30, 80.0, 1.2))),
    Market("interactions"),
    Market("mixed-noise"),
    Market("dated-trends", dated=True),
    Market("rounded", typo_share=0.02, bargain_share=0.03, rounded=True),
    Market("live-by-size", flag_shares=_shares_by_size),
    Market("milestones", typo_share=0.01, crowd=0.25),
    Market("tiny-accounts", accounts=TINY_ACCOUNTS, typo_share=0.01, bargain_share=0.02),
    Market(
        "rare-categories",
        typo_share=0.01,
        bargain_share=0.02,
        categories=LONG_TAIL,
        category_weight=tuple(LONG_TAIL_WEIGHT),
    ),
    Market("level-shift", dated=True, bargain_share=0.03),
)
BY_NAME = {market.name: market for market in MARKETS}
