"""The listing data contract, declared once.

Every other module (loader, encoder, request models, simulator, docs) derives its fields, header
spellings, value spellings and market-logic directions from the declarations here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["count", "flag", "text", "price", "date", "id"]


@dataclass(frozen=True)
class Field:
    """One field of a listing or a sale, with everything the rest of the code reads of it.

    A listing's features (FEATURES) are the model's inputs; everything that handles a listing
    (`Listing`, the API's request and response models and its examples, the record's columns, the
    explanation, comparables, drift monitoring, the smoke listings, the quote page's form) is
    built from these declarations. docs/fields.md is the recipe for adding one."""

    name: str
    kind: Kind
    headers: tuple[str, ...]
    """Accepted column headers besides `name` itself (the marketplace's own words first)."""
    description: str
    english: str = ""
    """The field's English label, beside its marketplace header on the page: "fans"."""
    examples: tuple[object, ...] = ()
    """Values as a listing may spell them; the first is the API's example listing's."""
    true_words: tuple[str, ...] = ()
    false_words: tuple[str, ...] = ()
    true_english: str = ""
    false_english: str = ""
    """A flag's two values in English, beside its marketplace words on the page."""
    monotone: int = 0
    """Market logic: +1 the price never falls as this rises, -1 never rises, 0 no constraint."""
    maximum: int | None = None
    """A count's largest sane value: above it, a typo or hostile, refused with a reason."""
    similarity_weight: float = 1.0
    """Comparables: the distance this field adds between two sales: per decade of a count, for
    a flag that differs, between two different values of a text."""
    seller_can_change: bool = False
    """A flag a seller can change before listing (violations cleared, live permission opened,
    verified): the quote's advice prices the listing with it changed."""
    default: object = None
    """The value a listing or an export that leaves the field out is read with: a field added
    after clients and exports were written (old ones keep working). None: the field is required."""
    smoke: tuple[object, ...] = ()
    """The field's value in each smoke listing (valuation/smoke.py), from a small account with
    violations to a large verified one."""

    @property
    def marketplace_header(self) -> str:
        return self.headers[0]

    @property
    def label(self) -> str:
        """`粉丝数量 · fans`: the marketplace's word, then the English one."""
        return f"{self.marketplace_header} · {self.english or self.name}"


# Limits of a sane value. Past them a value is a typo or hostile, not a listing; the parsers refuse
# it with a reason, so the API, the file loader and the CLI all refuse the same values.
MAX_FANS = 10**10
"""100亿 followers: Kuaishou's largest accounts have under 1亿, so anything above is a typo."""
MAX_PRICE = 10**9
"""CNY 10亿 (price and asking price): far above any account ever sold."""
MAX_CATEGORY_LENGTH = 40
"""Characters, after width folding; the marketplace's category names are 2 to 6."""
MAX_LISTING_ID_LENGTH = 100
"""Characters; marketplace ids are a few dozen at most."""
EARLIEST_SALE = dt.date(2011, 1, 1)
"""Kuaishou started in 2011: no account of it was sold before."""
LATEST_SALE = dt.date(2100, 12, 31)
"""A fixed bound, not today: the same export must load the same way whenever it is read."""

# Words any flag accepts, besides its own marketplace spellings.
GENERIC_TRUE = ("yes", "y", "true", "t", "1", "是", "有", "√", "✓", "✔")
GENERIC_FALSE = ("no", "n", "false", "f", "0", "否", "无", "没有", "暂无", "×", "✗", "✘")

FANS = Field(
    "fans",
    "count",
    ("粉丝数量", "粉丝数", "粉丝", "粉丝量", "粉丝总数", "followers"),
    "Followers of the account, 0 to 100亿; `13.13W`, `13.13WW` (the marketplace's cards write "
    "the unit twice), `13.1万`, `1.2亿`, `131,300` and `3.5k` are all accepted.",
    english="fans",
    examples=("13.13W", 52000, "13.1万", "131,300"),
    monotone=+1,
    maximum=MAX_FANS,
    similarity_weight=2.0,
    smoke=(300, 10_000, 2_500_000),
)
VIOLATIONS = Field(
    "violations",
    "flag",
    (
        "有无违规",
        "违规",
        "是否违规",
        "违规情况",
        "违规记录",
        "是否有违规",
        "违规状态",
        "有无违规记录",
        "has_violations",
    ),
    "Whether the account has violations on record (有违规 / 无违规).",
    english="violations",
    examples=("有违规", False, "无违规"),
    true_words=("有违规", "有违规记录"),
    false_words=("无违规", "没有违规", "无违规记录", "正常"),
    true_english="has violations",
    false_english="none",
    monotone=-1,
    seller_can_change=True,
    smoke=(True, False, False),
)
LIVE_PERMISSION = Field(
    "live_permission",
    "flag",
    ("直播权限", "直播开通", "是否开通直播", "直播状态", "开通直播", "live"),
    "Whether live streaming is opened for the account (已开通 / 未开通).",
    english="live permission",
    examples=("未开通", True, "已开通"),
    true_words=("已开通", "开通", "已开", "有权限", "已开通直播", "有直播权限", "可直播"),
    false_words=("未开通", "未开", "没开通", "无权限", "未开通直播", "无直播权限", "不可直播"),
    true_english="opened",
    false_english="not opened",
    monotone=+1,
    seller_can_change=True,
    smoke=(False, False, True),
)
VERIFIED = Field(
    "verified",
    "flag",
    ("认证状态", "认证", "是否认证", "认证情况", "is_verified"),
    "Whether the account is verified (已认证 / 未认证).",
    english="verified",
    examples=("已认证", "no", "未认证"),
    true_words=("已认证", "认证", "个人认证", "企业认证", "机构认证", "黄v", "蓝v"),
    false_words=("未认证", "无认证", "没认证"),
    true_english="verified",
    false_english="not verified",
    monotone=+1,
    seller_can_change=True,
    smoke=(False, False, True),
)
CATEGORY = Field(
    "category",
    "text",
    ("类目", "分类", "账号类目", "类别", "领域", "账号领域"),
    f"The account's content category, e.g. 自媒体, 美食, 搞笑; at most {MAX_CATEGORY_LENGTH} characters.",
    english="category",
    examples=("自媒体", "美食", "搞笑"),
    smoke=("自媒体", "", "美食"),
)
PRICE = Field(
    "price",
    "price",
    ("成交价", "价格", "成交价格", "售价", "成交金额", "交易价格", "出售价格", "sale_price"),
    "Sale price in CNY, above 0 and up to 10亿; `¥1,200`, `1200元`, `1.2万` and `1200` are "
    "accepted. Training data only.",
)
LISTING_ID = Field(
    "listing_id",
    "id",
    ("账号ID", "编号", "商品编号", "id", "商品ID", "账号编号"),
    f"Marketplace listing id: text of at most {MAX_LISTING_ID_LENGTH} characters, or a whole number.",
)
SOLD_AT = Field(
    "sold_at",
    "date",
    (
        "成交日期",
        "成交时间",
        "sale_date",
        "交易日期",
        "交易时间",
        "售出日期",
        "售出时间",
        "sold_date",
    ),
    f"Date of the sale, from {EARLIEST_SALE} to {LATEST_SALE}.",
)

FEATURES: tuple[Field, ...] = (FANS, VIOLATIONS, LIVE_PERMISSION, VERIFIED, CATEGORY)
"""Model inputs, in the order of the model's input row."""
FLAGS: tuple[Field, ...] = tuple(f for f in FEATURES if f.kind == "flag")
EXPLANATION: tuple[Field, ...] = (FANS, CATEGORY, VIOLATIONS, LIVE_PERMISSION, VERIFIED)
"""The explanation's steps, in a broker's order: audience, category, then the flags."""
TARGET = PRICE
OPTIONAL: tuple[Field, ...] = (LISTING_ID, SOLD_AT)
ALL_FIELDS: tuple[Field, ...] = (*FEATURES, TARGET, *OPTIONAL)
BY_NAME: dict[str, Field] = {f.name: f for f in ALL_FIELDS}

CURRENCY = "CNY"


assert sorted(f.name for f in EXPLANATION) == sorted(f.name for f in FEATURES), (
    "every feature has its step in the explanation, and only features do"
)
assert all(len(f.smoke) == len(FANS.smoke) for f in FEATURES), "one value per smoke listing"
assert all(f.examples for f in FEATURES), "every feature has an example"


def header_lookup() -> dict[str, str]:
    """Maps every accepted header spelling (normalised) to its canonical field name."""
    lookup: dict[str, str] = {}
    for field in ALL_FIELDS:
        for spelling in (field.name, *field.headers):
            lookup[normalise_header(spelling)] = field.name
    return lookup


def normalise_header(header: str) -> str:
    return str(header).strip().lower().replace(" ", "_").replace("-", "_")


HEADER_UNITS: dict[str, str] = {
    **dict.fromkeys(("元", "人民币", "rmb", "cny", "¥", "￥", "个", "人"), ""),
    **dict.fromkeys(("万", "w", "万元", "万人", "万个"), "万"),
    **dict.fromkeys(("千", "k", "千元"), "千"),
    **dict.fromkeys(("亿", "亿元"), "亿"),
}
"""A unit an export's header may carry (`粉丝数量(万)`, `成交价（元）`, `成交价/万元`) -> the unit
written after each bare number of its column when it is read (`13.13` -> `13.13万`); "": the
numbers are as they are. A count's or a price's header only."""
_HEADER_UNIT = re.compile(
    r"^(?P<header>.+?)\s*(?:[(（\[【]\s*(?:单位\s*[:：]\s*)?(?P<unit>[^()（）\[\]【】]+?)\s*[)）\]】]"
    r"|[/／]\s*(?P<after_slash>[^/／]+?))\s*$"
)


def read_header(header: str, lookup: dict[str, str] | None = None) -> tuple[str | None, str | None]:
    """An export's header -> (the field it names or None, the unit to write after its bare
    numbers): `粉丝数量(万)` -> ("fans", "万"); `成交价（元）` -> ("price", ""); `类目(一级)` ->
    (None, ""). A field's header with a unit this reader does not read (`价格(美元)`, or any unit
    on a flag's or a text's header) -> (the field, None): the caller refuses it, by name. On a
    id's header the part is a note (`商品编号(平台)` -> ("listing_id", "")), and on a date's a time
    zone is (`成交时间(北京时间)`, `(UTC+8)`): the day is read as written; any other part on a
    date's header (`交易时间(天)`, days a trade took) -> ("sold_at", None), left unread and said."""
    lookup = header_lookup() if lookup is None else lookup
    name = lookup.get(normalise_header(header))
    if name is not None:
        return name, ""
    match = _HEADER_UNIT.match(str(header).strip())
    name = match and lookup.get(normalise_header(match["header"]))
    if not name:
        return None, ""
    kind = BY_NAME[name].kind
    note = (match["unit"] or match["after_slash"]).strip().lower()
    if kind == "id" or (kind == "date" and _TIME_ZONE.search(note)):
        return name, ""
    unit = HEADER_UNITS.get(note)
    return name, unit if kind in ("count", "price") else None


_TIME_ZONE = re.compile(r"北京|东八|时区|utc|gmt|cst")
