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

from valuation.schema import (
    BY_NAME,
    EARLIEST_SALE,
    FANS,
    GENERIC_FALSE,
    GENERIC_TRUE,
    LATEST_SALE,
    MAX_CATEGORY_LENGTH,
    MAX_FANS,
    MAX_LISTING_ID_LENGTH,
    MAX_PRICE,
    Field,
)

MAX_AMOUNT = 10**18  # beyond any field's bound: refused before any arithmetic on it

_MULTIPLIERS = {
    "": 1,
    "k": 1_000,
    "千": 1_000,
    "ww": 10_000,  # the seed page's cards write the unit twice: 13.13WW is 13.13W
    "w": 10_000,
    "万": 10_000,
    "m": 1_000_000,
    "百万": 1_000_000,
    "千万": 10_000_000,
    "亿": 100_000_000,
}
# ASCII digits only (after NFKC folds full-width ones): `\d` would also read Devanagari or Thai
# digits. A comma only separates thousands: "1,2,3" is no number, and "13,13W" (a decimal comma)
# must not become 1313W, a hundred times the count.
_AMOUNT = re.compile(
    r"^(?P<number>(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?)"
    r"\s*(?P<unit>k|千|ww|w|万|m|百万|千万|亿)?$"
)
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y%m%d",
    "%Y年%m月%d日",
    "%Y年%m月%d号",
    # a sale's time (成交时间) as exports write it: the day is what counts
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    # database and API exports: fractions of a second, a UTC offset (the day as written, in the
    # marketplace's own time: 2025-03-01T23:30:00+08:00 is a sale of 1 March)
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    # a database's timestamps with a time zone as text (PostgreSQL writes 2025-03-01 23:30:00+08,
    # pandas 2025-03-01 23:30:00+08:00): an offset in whole hours reads as +0800
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S.%f%z",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d %H:%M:%S.%f",
    "%Y.%m.%d %H:%M:%S",
    "%Y.%m.%d %H:%M",
    "%Y年%m月%d日 %H:%M",
    "%Y年%m月%d日 %H:%M:%S",
)


# A time's UTC offset in hours alone (+08), as PostgreSQL writes it; strptime reads +0800.
_HOURS_OFFSET = re.compile(r"(:[0-9]{2}(?:\.[0-9]+)?[+-][0-9]{2})$")


class SpellingError(ValueError):
    """A value that cannot be read as its field: `reason` says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# Full-width forms (１３.１３Ｗ, １３１，３００, ￥, ＹＥＳ) and the ideographic space, as Chinese input
# methods type them. Numbers, flags and dates fold only these: NFKC would also read "10²" as 102
# and "①" as 1, a misreading rather than a spelling.
_FULL_WIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0xFFE5: 0xA5}


def _str(value: object, what: str) -> str:
    try:
        return str(value)
    except ValueError:  # an integer of thousands of digits refuses str()
        raise SpellingError(f"{what} has too many digits to be read") from None


def _text(value: object, what: str) -> str:
    """Free text (category, listing id): NFKC folds full-width and other compatibility forms."""
    return unicodedata.normalize("NFKC", _str(value, what)).strip()


def _plain(value: object, what: str) -> str:
    """A spelled number, flag or date: full-width forms folded to ASCII, and nothing else."""
    text = _str(value, what)
    return (text if text.isascii() else text.translate(_FULL_WIDTH)).strip()


def _shown(value: object) -> str:
    """The value as quoted in a reason: short, escaped (repr: no control character or lone
    surrogate reaches a log or a JSON answer), and never failing on huge or odd input."""
    try:
        text = str(value)
    except ValueError:
        return "a number of thousands of digits"
    escaped = repr(text[:40])[1:-1]  # an escape takes up to 10 characters: cut after escaping
    if len(text) > 40 or len(escaped) > 40:
        escaped = escaped[:40] + "..."
    return f"'{escaped}'"


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
        raise SpellingError(f"{what} must be a number, not {_shown(value)}")
    unit = ""
    if isinstance(value, Integral):
        if abs(int(value)) > MAX_AMOUNT:
            raise SpellingError(f"{what} is too large to be real")
        number = Decimal(int(value))
    elif isinstance(value, Real):
        try:
            as_float = float(value)
        except OverflowError:  # a Fraction or the like beyond float range
            raise SpellingError(f"{what} is too large to be real") from None
        if not math.isfinite(as_float):
            raise SpellingError(f"{what} must be a finite number, not {_shown(value)}")
        if abs(as_float) > MAX_AMOUNT:
            raise SpellingError(f"{what} is too large to be real")
        number = Decimal(repr(as_float))
    elif isinstance(value, str) and value.isascii() and value.isdigit():  # the common plain count
        number = Decimal(int(value)) if len(value) <= 19 else Decimal(MAX_AMOUNT + 1)
    else:
        text = _plain(value, what).lower()
        if len(text) > 30:
            raise SpellingError(f"{what} is too long to be a number: {_shown(text)}")
        match = _AMOUNT.match(text)
        if not match:
            if text.startswith("-"):
                raise SpellingError(f"{what} cannot be negative: {_shown(value)}")
            raise SpellingError(f"{what} is not a number the marketplace writes: {_shown(value)}")
        unit = match["unit"] or ""
        number = Decimal(match["number"].replace(",", "")) * _MULTIPLIERS[unit]
    if number < 0:
        raise SpellingError(f"{what} cannot be negative: {_shown(value)}")
    return number, bool(unit)


_COUNT_SUFFIX = re.compile(r"(?<=[0-9kKwW万千亿])\s*(?:粉丝|粉)$")
_BARE_NUMBER = re.compile(r"^(?:[¥]\s*)?[0-9][0-9,]*(?:\.[0-9]+)?$")


def with_unit(values: pd.Series, unit: str) -> pd.Series:
    """A column whose header gives its unit (`粉丝数量(万)`): `unit` written after each bare number
    (`13.13` -> `13.13万`, `¥0.12` -> `¥0.12万`), so the column's parser reads it as the marketplace
    would have written it; a value with a unit of its own (`13.13W`), or no number at all, is left
    as it is, to be read or refused as written."""
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=False)
    written = np.array([_with_unit(value, unit) for value in uniques], dtype=object)[codes]
    text = isinstance(values.dtype, pd.StringDtype)  # kept as text: the bulk readers take it
    return pd.Series(written, index=values.index, dtype=values.dtype if text else object)


def _with_unit(value: object, unit: str) -> object:
    if isinstance(value, bool) or _is_missing(value):
        return value
    if isinstance(value, Integral):
        return f"{int(value)}{unit}" if abs(int(value)) <= MAX_AMOUNT else value
    if isinstance(value, Real):
        try:
            text = repr(float(value))
        except OverflowError:
            return value
    elif isinstance(value, str):
        text = _COUNT_SUFFIX.sub("", _plain(value, ""))  # `13粉` under 粉丝数量(万) is 13万
    else:
        return value
    return f"{text}{unit}" if _BARE_NUMBER.match(text) else value


def parse_count(field: Field, value: object) -> int:
    """A count of `field` (up to its `maximum`): `13.13W` -> 131300; also 万, 亿, k, thousands
    separators and plain integers, and the word a listing writes after fans (`13.1W粉`,
    `1.3w粉丝`). `10万+` ("more than") and `约10万` ("about") are no count: refused."""
    read = value
    if isinstance(value, str):
        read = _COUNT_SUFFIX.sub("", _plain(value, field.name)) or value
    try:
        number, has_unit = _amount(read, field.name)
    except SpellingError:
        if read is value:
            raise
        raise SpellingError(
            f"{field.name} is not a number the marketplace writes: {_shown(value)}"
        ) from None
    # 1.2345W is a display rounding of a whole count; a bare 1.5 is not a count at all.
    if number != number.to_integral_value() and not has_unit:
        raise SpellingError(f"{field.name} must be a whole number: {_shown(value)}")
    count = int(number.to_integral_value())
    if field.maximum is not None and count > field.maximum:
        raise SpellingError(
            f"{field.name} of {count:,} is beyond any real account (max {field.maximum:,})"
        )
    return count


def parse_fans(value: object) -> int:
    """`13.13W` -> 131300 (`parse_count` of the fans field)."""
    return parse_count(FANS, value)


# At most 10 digits before the point (with or without thousands commas), so that the whole part
# times 1亿 stays inside int64; longer counts are left to `parse_fans`.
_BULK_COUNT = (
    r"^(?P<whole>[0-9]{1,10}|[0-9]{1,3}(?:,[0-9]{3}){1,2})(?:\.(?P<fraction>[0-9]{1,4}))?"
    r"(?P<unit>k|千|ww|w|万|m|百万|千万|亿)?$"
)
_UNITS = [unit for unit in _MULTIPLIERS if unit]


def parse_count_many(values, parse=None, maximum=MAX_FANS) -> tuple[np.ndarray, np.ndarray]:
    """`parse` (a count's parser, `parse_fans` by default) for many distinct values at once,
    with the same answers: the common ASCII spellings (131300, 131,300, 13.13W, 13.1万, 3.5k) up
    to `maximum` are read with Arrow's string kernels and integer arithmetic (no Python call per
    value); anything else, and anything refused, goes through `parse` one by one. Returns the
    parsed values and the reasons (None where parsed), as object arrays."""
    import pyarrow as pa
    import pyarrow.compute as pc

    parse = parse or parse_fans
    count = len(values)
    parsed = np.empty(count, dtype=object)
    reasons = np.full(count, None, dtype=object)
    try:
        # Inferred, not cast to string: a cast would also take bytes (b"131300"), which
        # `parse_fans` refuses.
        text = pa.array(values, from_pandas=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        # Values Arrow cannot take as one array (mixed types, ints beyond int64, a lone surrogate
        # that UTF-8 cannot hold): all go one by one, which answers them exactly.
        text = None
    if text is not None and pa.types.is_null(text.type):
        text = text.cast(pa.string())
    if text is None or not pa.types.is_string(text.type):  # not all text: one by one
        fast = np.zeros(count, dtype=bool)
    else:
        parts = pc.extract_regex(pc.utf8_lower(pc.utf8_trim_whitespace(text)), _BULK_COUNT)
        matched = pc.fill_null(pc.is_valid(parts), False).to_numpy(zero_copy_only=False)
        whole = pc.replace_substring(pc.fill_null(pc.struct_field(parts, "whole"), "0"), ",", "")
        fraction = pc.fill_null(pc.struct_field(parts, "fraction"), "")
        unit = pc.fill_null(pc.struct_field(parts, "unit"), "")
        has_unit = pc.not_equal(unit, "").to_numpy(zero_copy_only=False)
        digits = pc.utf8_length(fraction).to_numpy(zero_copy_only=False).astype(np.int64)
        # A bare fraction (1.5) is no count: that, and anything unmatched, is left to parse_fans.
        fast = matched & ((digits == 0) | has_unit)
        unit_index = pc.index_in(unit, value_set=pa.array(_UNITS)).to_numpy(zero_copy_only=False)
        multipliers = np.array([_MULTIPLIERS[u] for u in _UNITS] + [1], dtype=np.int64)
        multiplier = multipliers[
            np.where(np.isnan(unit_index.astype(float)), -1, unit_index).astype(int)
        ]
        scale = 10**digits
        fraction_value = pc.cast(pc.if_else(pc.equal(fraction, ""), "0", fraction), pa.int64())
        numerator = fraction_value.to_numpy(zero_copy_only=False) * multiplier
        quotient, remainder = np.divmod(numerator, scale)
        # Half to even, as Decimal rounds: 1.23455W is 12345.5 fans, read as 12346.
        up = (2 * remainder > scale) | ((2 * remainder == scale) & (quotient % 2 == 1))
        whole_value = pc.cast(whole, pa.int64()).to_numpy(zero_copy_only=False)
        fans = whole_value * multiplier + quotient + up
        if maximum is not None:
            fast &= fans <= maximum
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
        text = _plain(value, "price")
        text = re.sub(r"^(¥|rmb|cny)\s*", "", text, flags=re.IGNORECASE)
        text = re.sub(r"\s*(元|rmb|cny)$", "", text, flags=re.IGNORECASE)
        value = text if text else value
    price = round(float(_amount(value, "price")[0]), 2)
    if price <= 0:
        raise SpellingError(f"price must be above zero: {_shown(value)}")
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
        return words[_plain(value, field_name).lower()]
    except KeyError:
        raise SpellingError(
            f"{field_name} must be one of {accepted}, not {_shown(value)}"
        ) from None


def parse_category(value: object) -> str:
    if _is_missing(value):
        raise SpellingError("category is missing")
    if not isinstance(value, str):  # 0 or True is a shifted column, not a category named "0"
        raise SpellingError(f"category must be text, not {_shown(value)}")
    text = _text(value, "category")
    if len(text) > MAX_CATEGORY_LENGTH:
        raise SpellingError(f"category is longer than {MAX_CATEGORY_LENGTH} characters")
    if not text or not text.isprintable():
        raise SpellingError(f"category must be printable text: {_shown(value)}")
    return text


def parse_sold_at(value: object) -> dt.date | None:
    """A sale date, or None when the export leaves it blank (the column itself is optional)."""
    if _is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        day = value.date()
    elif isinstance(value, dt.date):
        day = value
    else:
        day = _date(_plain(value, "sold_at"), value)
    if not EARLIEST_SALE <= day <= LATEST_SALE:
        raise SpellingError(
            f"sold_at of {day} is outside the possible sale dates ({EARLIEST_SALE} to {LATEST_SALE})"
        )
    return day


_EXCEL_SERIAL = re.compile(r"^[0-9]{5}(?:\.[0-9]+)?$")
"""A date as Excel counts it, days since 1899-12-30 (a time as the fraction): what a workbook's
date cell holds once its date format is lost (46295 is 2026-09-30). Five digits: 1927 to 2173;
the sale dates' bounds refuse the rest."""
_EXCEL_EPOCH = dt.date(1899, 12, 30)


def _date(text: str, value: object) -> dt.date:
    if _EXCEL_SERIAL.match(text):
        return _EXCEL_EPOCH + dt.timedelta(days=int(float(text)))
    if len(text) <= 40:  # the longest layout is 32 characters: no need to try strptime on more
        text = _HOURS_OFFSET.sub(r"\g<1>00", text)
        for layout in _DATE_FORMATS:
            try:
                return dt.datetime.strptime(text, layout).date()
            except ValueError:
                continue
    raise SpellingError(f"sold_at is not a date like 2025-03-01: {_shown(value)}")


def parse_listing_id(value: object) -> str | None:
    """Text, or a whole number (numeric ids, also as the floats pandas makes of an integer column
    with gaps: 1024.0 is id "1024")."""
    if _is_missing(value):
        return None
    if isinstance(value, Real) and not isinstance(value, bool | Integral):
        try:
            whole = int(value)
        except (OverflowError, ValueError):  # infinity; NaN
            whole = None
        if whole is None or whole != value:
            raise SpellingError(f"listing_id must be text or a whole number, not {_shown(value)}")
        value = whole
    elif not isinstance(value, str | Integral) or isinstance(value, bool):
        raise SpellingError(f"listing_id must be text or a whole number, not {_shown(value)}")
    text = _text(value, "listing_id")
    if len(text) > MAX_LISTING_ID_LENGTH or not text.isprintable():
        raise SpellingError(
            f"listing_id must be printable text of at most {MAX_LISTING_ID_LENGTH} characters"
        )
    return text


_BY_KIND = {
    "price": parse_price,
    "text": parse_category,
    "date": parse_sold_at,
    "id": parse_listing_id,
}


def parser_for(field: Field):
    """The parser of one schema field."""
    if field.kind == "flag":
        return partial(parse_flag, field.name)
    if field.kind == "count":
        return parse_fans if field is FANS else partial(parse_count, field)
    return _BY_KIND[field.kind]


PARSERS = {name: parser_for(field) for name, field in BY_NAME.items()}
"""One parser per field of the schema, keyed by canonical name."""


parse_fans_many = parse_count_many

BULK_PARSERS = {
    name: partial(parse_count_many, maximum=field.maximum)
    for name, field in BY_NAME.items()
    if field.kind == "count"
}
"""Fields whose many distinct values are read faster together (same answers as PARSERS)."""
