"""Parsing of the marketplace's spellings into typed values.

Each parser takes one raw value (a string as exported, or an already typed value) and returns the
canonical value, or raises `SpellingError` with a reason a person can act on. Nothing is guessed.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from decimal import Decimal
from functools import partial
from numbers import Integral, Real

import numpy as np
import pandas as pd

from valuation.schema import BY_NAME, GENERIC_FALSE, GENERIC_TRUE, Field

MAX_FANS = 10**10  # more than 100亿 followers is no real account: a typo, not a listing
MAX_PRICE = 10**9
MAX_AMOUNT = 10**18  # beyond any field's bound: refused before any arithmetic on it
MAX_CATEGORY_LENGTH = 40
MAX_LISTING_ID_LENGTH = 100

_MULTIPLIERS = {
    "": 1,
    "k": 1_000,
    "千": 1_000,
    "w": 10_000,
    "万": 10_000,
    "m": 1_000_000,
    "百万": 1_000_000,
    "千万": 10_000_000,
    "亿": 100_000_000,
}
_AMOUNT = re.compile(r"^(?P<number>\d+(?:\.\d+)?)(?P<unit>k|千|w|万|m|百万|千万|亿)?$")
_DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日", "%Y-%m-%d %H:%M:%S")


class SpellingError(ValueError):
    """A value that cannot be read as its field: `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _text(value: object) -> str:
    """NFKC folds full-width digits, letters and ￥ to their plain forms."""
    try:
        text = str(value)
    except ValueError as error:  # an integer of thousands of digits refuses str()
        raise SpellingError(f"value is too long to be read: {error}") from None
    return unicodedata.normalize("NFKC", text).strip()


def _shown(value: object) -> str:
    """The value as quoted in a reason: short, and never failing on huge or odd input."""
    text = _text(value)
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _amount(value: object, what: str) -> tuple[Decimal, bool]:
    """A non-negative amount with an optional 千/万/W/亿/k/M multiplier: (amount, had a unit)."""
    if _is_missing(value):
        raise SpellingError(f"{what} is missing")
    if isinstance(value, bool):
        raise SpellingError(f"{what} must be a number, not {value!r}")
    unit = ""
    if isinstance(value, Integral):
        if abs(int(value)) > MAX_AMOUNT:
            raise SpellingError(f"{what} is too large to be real")
        number = Decimal(int(value))
    elif isinstance(value, Real):
        if not math.isfinite(float(value)):
            raise SpellingError(f"{what} must be a finite number, not {value!r}")
        number = Decimal(repr(float(value)))
    elif isinstance(value, str) and value.isascii() and value.isdigit():  # the common plain count
        number = Decimal(int(value)) if len(value) <= 19 else Decimal(MAX_AMOUNT + 1)
    else:
        text = _text(value).lower().replace(",", "").replace(" ", "")
        if len(text) > 30:
            raise SpellingError(f"{what} is too long to be a number: {text[:30]!r}...")
        match = _AMOUNT.match(text)
        if not match:
            if text.startswith("-"):
                raise SpellingError(f"{what} cannot be negative: {value!r}")
            raise SpellingError(f"{what} is not a number the marketplace writes: {value!r}")
        unit = match["unit"] or ""
        number = Decimal(match["number"]) * _MULTIPLIERS[unit]
    if number < 0:
        raise SpellingError(f"{what} cannot be negative: {value!r}")
    return number, bool(unit)


def parse_fans(value: object) -> int:
    """`13.13W` -> 131300; also 万, 亿, k, thousands separators and plain integers."""
    number, has_unit = _amount(value, "fans")
    # 1.2345W is a display rounding of a whole count; a bare 1.5 is not a count at all.
    if number != number.to_integral_value() and not has_unit:
        raise SpellingError(f"fans must be a whole number: {value!r}")
    fans = int(number.to_integral_value())
    if fans > MAX_FANS:
        raise SpellingError(f"fans of {fans:,} is beyond any real account (max {MAX_FANS:,})")
    return fans


_BULK_COUNT = r"^([0-9]{1,10})(?:\.([0-9]{1,4}))?(k|千|w|万|m|百万|千万|亿)?$"


def parse_fans_many(values, parse=None) -> tuple[np.ndarray, np.ndarray]:
    """`parse_fans` for many distinct values at once, with the same answers: the common ASCII
    spellings (131300, 131,300, 13.13W, 13.1万, 3.5k) are read with vectorised string and integer
    arithmetic; anything else (and anything refused) goes through `parse_fans` one by one.
    Returns the parsed values and the reasons (None where parsed), as object arrays."""
    parse = parse or parse_fans
    # Arrow's string kernels: no Python call per value.
    text = pd.Series(values, dtype="string[pyarrow]").str.strip().str.lower()
    text = text.str.replace(",", "", regex=False)
    parts = text.str.extract(_BULK_COUNT)
    whole, fraction, unit = (parts[i] for i in range(3))
    # A bare fraction (1.5) is no count: that, and anything unmatched, is left to `parse_fans`.
    fast = (
        (whole.notna() & (fraction.isna() | unit.notna()))
        .fillna(False)
        .to_numpy(dtype=bool, copy=True)
    )
    multiplier = unit.map(_MULTIPLIERS).fillna(1).to_numpy(dtype=np.int64)
    digits = fraction.fillna("")
    scale = 10 ** digits.str.len().to_numpy(dtype=np.int64)
    numerator = pd.to_numeric(digits.replace("", "0")).to_numpy(dtype=np.int64) * multiplier
    quotient, remainder = np.divmod(numerator, scale)
    # Half to even, as Decimal rounds: 1.23455W is 12345.5 fans, read as 12346.
    up = (2 * remainder > scale) | ((2 * remainder == scale) & (quotient % 2 == 1))
    whole_part = pd.to_numeric(whole.where(pd.Series(fast), "0")).to_numpy(dtype=np.int64)
    fans = whole_part * multiplier + quotient + up
    fast &= fans <= MAX_FANS
    parsed = np.empty(len(text), dtype=object)
    reasons = np.full(len(text), None, dtype=object)
    parsed[fast] = fans[fast].tolist()
    for i in np.flatnonzero(~fast):
        try:
            parsed[i] = parse(values[i])
        except SpellingError as error:
            reasons[i] = error.reason
    return parsed, reasons


def parse_price(value: object) -> float:
    """`¥1,200`, `1200元`, `1.2万`, `1200` -> CNY, rounded to the fen."""
    if isinstance(value, str):
        text = _text(value)
        text = re.sub(r"^(¥|rmb|cny)\s*", "", text, flags=re.IGNORECASE)
        text = re.sub(r"\s*(元|rmb|cny)$", "", text, flags=re.IGNORECASE)
        value = text if text else value
    price = round(float(_amount(value, "price")[0]), 2)
    if price <= 0:
        raise SpellingError(f"price must be above zero: {value!r}")
    if price > MAX_PRICE:
        raise SpellingError(
            f"price of {price:,.0f} CNY is beyond any real sale (max {MAX_PRICE:,})"
        )
    return price


def _flag_words(field: Field) -> tuple[dict[str, bool], str]:
    words = {w.lower(): True for w in (*GENERIC_TRUE, *field.true_words)}
    words |= {w.lower(): False for w in (*GENERIC_FALSE, *field.false_words)}
    accepted = "/".join(
        (*field.true_words[:1], *field.false_words[:1], "yes/no", "true/false", "1/0")
    )
    return words, accepted


_FLAG_WORDS = {name: _flag_words(field) for name, field in BY_NAME.items() if field.kind == "flag"}


def parse_flag(field_name: str, value: object) -> bool:
    """有违规/无违规, 已开通/未开通, 已认证/未认证, yes/no, true/false, 1/0 -> bool."""
    words, accepted = _FLAG_WORDS[field_name]
    if _is_missing(value):
        raise SpellingError(f"{field_name} is missing (expected {accepted})")
    if isinstance(value, bool):
        return value
    if isinstance(value, Real) and value in (0, 1):  # compared exactly: no float() overflow
        return bool(value)
    try:
        return words[_text(value).lower()]
    except KeyError:
        raise SpellingError(
            f"{field_name} must be one of {accepted}, not {_shown(value)}"
        ) from None


def parse_category(value: object) -> str:
    if _is_missing(value):
        raise SpellingError("category is missing")
    text = _text(value)
    if not text or not text.isprintable():
        raise SpellingError(f"category must be printable text: {value!r}")
    if len(text) > MAX_CATEGORY_LENGTH:
        raise SpellingError(f"category is longer than {MAX_CATEGORY_LENGTH} characters")
    return text


def parse_sold_at(value: object) -> dt.date | None:
    """A sale date, or None when the export leaves it blank (the column itself is optional)."""
    if _is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = _text(value)
    for layout in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, layout).date()
        except ValueError:
            continue
    raise SpellingError(f"sold_at is not a date like 2025-03-01: {value!r}")


def parse_listing_id(value: object) -> str | None:
    if _is_missing(value):
        return None
    text = _text(value)
    if len(text) > MAX_LISTING_ID_LENGTH or not text.isprintable():
        raise SpellingError(
            f"listing_id must be printable text of at most {MAX_LISTING_ID_LENGTH} characters"
        )
    return text


_BY_KIND = {
    "count": parse_fans,
    "price": parse_price,
    "text": parse_category,
    "date": parse_sold_at,
    "id": parse_listing_id,
}


def parser_for(field: Field):
    """The parser of one schema field."""
    if field.kind == "flag":
        return partial(parse_flag, field.name)
    return _BY_KIND[field.kind]


PARSERS = {name: parser_for(field) for name, field in BY_NAME.items()}
"""One parser per field of the schema, keyed by canonical name."""


BULK_PARSERS = {"fans": parse_fans_many}
"""Fields whose many distinct values are read faster together (same answers as PARSERS)."""
