"""Tests of the marketplace spellings accepted (and refused) by `valuation.parsing`."""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from functools import partial

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from valuation.parsing import (
    MAX_CATEGORY_LENGTH,
    MAX_FANS,
    MAX_PRICE,
    PARSERS,
    SpellingError,
    parse_category,
    parse_fans,
    parse_flag,
    parse_price,
    parse_sold_at,
)
from valuation.schema import EARLIEST_SALE, FLAGS, GENERIC_FALSE, GENERIC_TRUE, LATEST_SALE


def assert_rejected(parser, value: object, field: str) -> SpellingError:
    """`parser(value)` raises SpellingError whose reason names `field`."""
    with pytest.raises(SpellingError) as caught:
        parser(value)
    error = caught.value
    assert isinstance(error.reason, str) and error.reason
    assert str(error) == error.reason
    assert field in error.reason
    return error


def parses_or_spelling_error(parser, value: object) -> None:
    """Any outcome but an exception other than SpellingError is fine."""
    try:
        parser(value)
    except SpellingError as error:
        assert error.reason
    # Any other exception propagates and fails the test.


def random_case(word: str) -> st.SearchStrategy[str]:
    """`word` with each letter independently upper or lower case."""
    return st.tuples(*(st.sampled_from((c.lower(), c.upper())) for c in word)).map("".join)


def has_digit(text: str) -> bool:
    """Whether `text` has a digit, also after the NFKC width folding the parsers apply."""
    return any(c.isdigit() for c in unicodedata.normalize("NFKC", text))


# Characters the parsers treat specially, to steer random text towards the interesting paths.
SPELLING_ALPHABET = list("0123456789０１２３.,，-+ wWkKmM万亿千百¥￥元rmbcnyRMBCNYeE年月日/:约\t")
NO_DIGIT_ALPHABET = [c for c in SPELLING_ALPHABET if not has_digit(c)]
spelling_text = st.text(alphabet=SPELLING_ALPHABET, max_size=12)
any_text = st.one_of(st.text(), spelling_text)


# --------------------------------------------------------------------------------------- fans


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13.13W", 131_300),
        ("13.13w", 131_300),
        ("13.13WW", 131_300),  # as the seed page's cards write it: the unit, then again
        ("13.13ww", 131_300),
        ("5WW", 50_000),
        ("13.1万", 131_000),
        ("1.2亿", 120_000_000),
        ("131,300", 131_300),
        ("131300", 131_300),
        ("3.5k", 3_500),
        ("3.5K", 3_500),
        ("2千", 2_000),
        ("1.5m", 1_500_000),
        ("1.5M", 1_500_000),
        ("3百万", 3_000_000),
        ("2千万", 20_000_000),
        ("0", 0),
        ("  131300  ", 131_300),
        ("13.13 W", 131_300),
        ("13.1W粉", 131_000),  # the word listings write after fans
        ("1.3w粉丝", 13_000),
        ("2000 粉", 2_000),
        ("1.3W粉丝", 13_000),
        ("１３１３００", 131_300),  # full-width digits
        ("１３１，３００", 131_300),  # full-width digits and comma
        ("１３.１３Ｗ", 131_300),  # full-width digits and W
        ("１.２亿", 120_000_000),
        ("100亿", MAX_FANS),  # the limit itself is accepted
        (131_300, 131_300),
        (0, 0),
        (131_300.0, 131_300),
        (0.0, 0),
        (np.int64(131_300), 131_300),
        (np.float64(131_300.0), 131_300),
        (MAX_FANS, MAX_FANS),
    ],
)
def test_fans_accepted_spellings(raw: object, expected: int) -> None:
    result = parse_fans(raw)
    assert result == expected
    assert type(result) is int


@given(st.integers(min_value=0, max_value=10**9))
def test_fans_integer_round_trip(n: int) -> None:
    assert parse_fans(str(n)) == n
    assert parse_fans(f"{n:,}") == n
    assert parse_fans(n) == n


@given(st.integers(min_value=0, max_value=99_999))
def test_fans_w_display_round_trip(hundreds: int) -> None:
    # Built from integers, so the string is exactly what the marketplace shows for n*100 fans.
    text = f"{hundreds // 100}.{hundreds % 100:02d}"
    assert parse_fans(f"{text}W") == hundreds * 100
    assert parse_fans(f"{text}w") == hundreds * 100
    assert parse_fans(f"{text}万") == hundreds * 100


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\t\n",
        None,
        math.nan,
        np.float64("nan"),
        math.inf,
        -math.inf,
        "nan",
        "inf",
        "-inf",
        -5,
        -5.0,
        "-5",
        "-13.13W",
        "1e5",
        "1E5",
        "13.13WWW",
        "13.13W万",  # mixed double units stay refused
        "1.2亿W",
        "13.13万万",
        "abc",
        "约10万",
        "10万+",
        "万",
        "W",
        ".5W",
        "1.W",
        "1..5W",
        "1.5",  # a bare fraction is no count
        1.5,
        "0.5",
        True,
        False,
        MAX_FANS + 1,
        float(MAX_FANS * 10),
        "100.01亿",
        f"{MAX_FANS + 1:,}",
    ],
)
def test_fans_rejected(raw: object) -> None:
    assert_rejected(parse_fans, raw, "fans")


def test_fans_negative_reason_says_negative() -> None:
    assert "negative" in assert_rejected(parse_fans, "-5", "fans").reason
    assert "negative" in assert_rejected(parse_fans, -5, "fans").reason


# -------------------------------------------------------------------------------------- price


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("¥1,200", 1200.0),
        ("￥1200", 1200.0),  # full-width yen
        ("￥1,200", 1200.0),
        ("¥ 1200", 1200.0),
        ("1200元", 1200.0),
        ("1200 元", 1200.0),
        ("¥1200元", 1200.0),
        ("1.2万", 12_000.0),
        ("¥1.2万", 12_000.0),
        ("1.2万元", 12_000.0),
        ("1.2w", 12_000.0),
        ("1200", 1200.0),
        ("1,200", 1200.0),
        ("１２００", 1200.0),  # full-width digits
        ("RMB 1200", 1200.0),
        ("1200 CNY", 1200.0),
        ("1200.50", 1200.5),
        ("99.99", 99.99),
        ("¥1,200.75", 1200.75),
        ("0.01", 0.01),
        ("  1200  ", 1200.0),
        (1200, 1200.0),
        (1200.5, 1200.5),
        (np.int64(1200), 1200.0),
        (MAX_PRICE, float(MAX_PRICE)),
    ],
)
def test_price_accepted_spellings(raw: object, expected: float) -> None:
    result = parse_price(raw)
    assert result == pytest.approx(expected)
    assert type(result) is float


def test_price_rounds_to_the_fen() -> None:
    assert parse_price("12.345678") == pytest.approx(12.35)


@given(st.integers(min_value=1, max_value=10**8))
def test_price_integer_round_trip(n: int) -> None:
    for spelling in (str(n), f"{n:,}", f"¥{n}", f"¥{n:,}", f"￥{n:,}", f"{n}元", f"¥{n:,}元", n):
        assert parse_price(spelling) == n, spelling


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        None,
        math.nan,
        math.inf,
        -math.inf,
        0,
        0.0,
        "0",
        "¥0",
        "0元",
        "-100",
        -100,
        -0.5,
        "¥-100",
        "面议",
        "abc",
        "1e5",
        "¥",
        "元",
        "$1200",
        "1200美元",
        "约1200",
        True,
        MAX_PRICE + 1,
        "10.01亿",
    ],
)
def test_price_rejected(raw: object) -> None:
    assert_rejected(parse_price, raw, "price")


# -------------------------------------------------------------------------------------- flags

FLAG_NAMES = [field.name for field in FLAGS]
FLAG_CASES = [
    (field.name, word, expected)
    for field in FLAGS
    for words, expected in (
        ((*field.true_words, *GENERIC_TRUE), True),
        ((*field.false_words, *GENERIC_FALSE), False),
    )
    for word in words
]


def test_flags_are_the_schema_flags() -> None:
    assert set(FLAG_NAMES) == {"violations", "live_permission", "verified"}


@pytest.mark.parametrize(("field", "word", "expected"), FLAG_CASES)
def test_flag_words(field: str, word: str, expected: bool) -> None:
    assert parse_flag(field, word) is expected
    assert parse_flag(field, f"  {word}\t") is expected
    assert parse_flag(field, word.upper()) is expected
    assert PARSERS[field](word) is expected


@pytest.mark.parametrize("field", FLAG_NAMES)
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        (1.0, True),
        (0.0, False),
        (np.int64(1), True),
        (np.int64(0), False),
    ],
)
def test_flag_typed_values(field: str, raw: object, expected: bool) -> None:
    assert parse_flag(field, raw) is expected


ASCII_TRUE = [w for w in GENERIC_TRUE if w.isascii() and w.isalpha()]
ASCII_FALSE = [w for w in GENERIC_FALSE if w.isascii() and w.isalpha()]


@given(
    field=st.sampled_from(FLAG_NAMES),
    word=st.sampled_from(ASCII_TRUE).flatmap(random_case),
)
def test_flag_true_in_any_case(field: str, word: str) -> None:
    assert parse_flag(field, word) is True


@given(
    field=st.sampled_from(FLAG_NAMES),
    word=st.sampled_from(ASCII_FALSE).flatmap(random_case),
)
def test_flag_false_in_any_case(field: str, word: str) -> None:
    assert parse_flag(field, word) is False


def test_flag_full_width_words() -> None:
    assert parse_flag("verified", "ＹＥＳ") is True
    assert parse_flag("verified", "１") is True
    assert parse_flag("verified", "０") is False


@pytest.mark.parametrize("field", FLAG_NAMES)
@pytest.mark.parametrize(
    "raw",
    ["不详", "2", "maybe", "", "   ", None, math.nan, 2, -1, 0.5, "1.0", "yess", "是的", "未知"],
)
def test_flag_rejected(field: str, raw: object) -> None:
    assert_rejected(partial(parse_flag, field), raw, field)


def test_flag_words_are_not_shared_between_fields() -> None:
    # A field's own marketplace word is not silently accepted by another flag.
    assert_rejected(partial(parse_flag, "violations"), "已开通", "violations")
    assert_rejected(partial(parse_flag, "live_permission"), "无违规", "live_permission")


# ----------------------------------------------------------------------------------- category


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("美食", "美食"),
        ("  美食  ", "美食"),
        ("\t搞笑\n", "搞笑"),
        ("自媒体", "自媒体"),
        ("ｆｏｏｄ", "food"),  # NFKC: full-width letters
        ("美\u3000食", "美 食"),  # NFKC: ideographic space
        ("ﾃｽﾄ", "テスト"),  # NFKC: half-width katakana
        ("x" * MAX_CATEGORY_LENGTH, "x" * MAX_CATEGORY_LENGTH),
    ],
)
def test_category_accepted(raw: str, expected: str) -> None:
    assert parse_category(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\u3000",
        None,
        math.nan,
        "\x00",
        "美\x00食",
        "a\nb",
        "a\tb",
        "\x1b[31m",
        "x" * (MAX_CATEGORY_LENGTH + 1),
        "美" * (MAX_CATEGORY_LENGTH + 1),
    ],
)
def test_category_rejected(raw: object) -> None:
    assert_rejected(parse_category, raw, "category")


@given(st.text())
def test_category_result_is_normalised_and_bounded(text: str) -> None:
    try:
        result = parse_category(text)
    except SpellingError as error:
        assert "category" in error.reason
        return
    assert result == unicodedata.normalize("NFKC", result)
    assert result == result.strip()
    assert result and result.isprintable()
    assert len(result) <= MAX_CATEGORY_LENGTH


# ------------------------------------------------------------------------------------ sold_at


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-03-01", dt.date(2025, 3, 1)),
        ("2025/03/01", dt.date(2025, 3, 1)),
        ("2025年3月1日", dt.date(2025, 3, 1)),
        ("2025年03月01日", dt.date(2025, 3, 1)),
        ("2025.03.01", dt.date(2025, 3, 1)),
        ("20250301", dt.date(2025, 3, 1)),
        ("2025-03-01 12:30:00", dt.date(2025, 3, 1)),
        ("2025-03-01 12:30", dt.date(2025, 3, 1)),
        ("2025-03-01T12:30:00", dt.date(2025, 3, 1)),
        ("2025-03-01 12:30:00.000", dt.date(2025, 3, 1)),
        ("2025-03-01T12:30:00.123456", dt.date(2025, 3, 1)),
        ("2025-03-01T23:30:00+08:00", dt.date(2025, 3, 1)),  # the day as the marketplace wrote it
        ("2025-03-01T23:30:00.5+0800", dt.date(2025, 3, 1)),
        ("2025-03-01T12:30:00Z", dt.date(2025, 3, 1)),
        ("2025-03-01 23:30:00+08", dt.date(2025, 3, 1)),  # PostgreSQL's timestamptz as text
        ("2025-03-01 23:30:00.25-05", dt.date(2025, 3, 1)),
        ("2025-03-01 23:30:00+08:00", dt.date(2025, 3, 1)),  # pandas' tz-aware timestamps
        ("2025-03-01 23:30:00.123456+0800", dt.date(2025, 3, 1)),
        ("2025/3/1 9:05", dt.date(2025, 3, 1)),
        ("2025/03/01 12:30:00", dt.date(2025, 3, 1)),
        ("2025年3月1日 12:30", dt.date(2025, 3, 1)),
        ("2025年3月1号", dt.date(2025, 3, 1)),
        ("2025.03.01 12:30", dt.date(2025, 3, 1)),  # as its day alone is read, with a time
        ("2025.3.1 12:30:05", dt.date(2025, 3, 1)),
        ("2025/3/1 12:30:05.123", dt.date(2025, 3, 1)),
        ("46295", dt.date(2026, 9, 30)),  # Excel's count of days, a date cell's format lost
        ("46295.75", dt.date(2026, 9, 30)),  # and its time of day
        (46295, dt.date(2026, 9, 30)),
        (46295.0, dt.date(2026, 9, 30)),
        ("  2025-03-01  ", dt.date(2025, 3, 1)),
        ("２０２５-０３-０１", dt.date(2025, 3, 1)),  # full-width digits
        (dt.date(2025, 3, 1), dt.date(2025, 3, 1)),
        (dt.datetime(2025, 3, 1, 23, 59), dt.date(2025, 3, 1)),
        (pd.Timestamp("2025-03-01 08:00"), dt.date(2025, 3, 1)),
    ],
)
def test_sold_at_accepted(raw: object, expected: dt.date) -> None:
    result = parse_sold_at(raw)
    assert result == expected
    assert type(result) is dt.date


@pytest.mark.parametrize("raw", ["", "   ", None, math.nan, np.float64("nan")])
def test_sold_at_blank_is_none(raw: object) -> None:
    assert parse_sold_at(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        "yesterday",
        "2025-13-01",
        "2025-02-30",
        "2025-3",
        "3月1日",
        "01/03/2025",
        "2025--03-01",
        "面议",
        "abc",
        "2025-03-01T12:00:00+25:00",  # no such offset
        "2025-03-01 12:00:00+25",
        "2025-03-01+08",  # an offset needs a time
        "12345",  # Excel's day 12345 is in 1933: outside the possible sale dates
        "4629",  # four digits: no date
    ],
)
def test_sold_at_rejected(raw: object) -> None:
    assert_rejected(parse_sold_at, raw, "sold_at")


@given(st.dates(min_value=EARLIEST_SALE, max_value=LATEST_SALE))
def test_sold_at_iso_round_trip(day: dt.date) -> None:
    assert parse_sold_at(day.isoformat()) == day
    assert parse_sold_at(f"{day.year}年{day.month}月{day.day}日") == day
    assert parse_sold_at(day) == day


@given(st.dates().filter(lambda day: not EARLIEST_SALE <= day <= LATEST_SALE))
def test_sold_at_outside_the_possible_sale_dates_is_rejected(day: dt.date) -> None:
    assert_rejected(parse_sold_at, day, "sold_at")
    if day.year >= 1000:  # strptime's %Y wants four digits
        assert "outside" in assert_rejected(parse_sold_at, day.isoformat(), "sold_at").reason


# ---------------------------------------------------------------------- garbage, property-based


@given(st.one_of(st.text(), st.text(alphabet=NO_DIGIT_ALPHABET)).filter(lambda s: not has_digit(s)))
def test_text_without_digits_is_never_an_amount(text: str) -> None:
    assert_rejected(parse_fans, text, "fans")
    assert_rejected(parse_price, text, "price")


@pytest.mark.parametrize("name", sorted(PARSERS))
@given(text=any_text)
def test_every_parser_reads_or_refuses_any_text(name: str, text: str) -> None:
    parses_or_spelling_error(PARSERS[name], text)


@pytest.mark.parametrize("name", sorted(PARSERS))
@given(value=st.one_of(st.none(), st.booleans(), st.integers(), st.floats()))
def test_every_parser_reads_or_refuses_any_typed_value(name: str, value: object) -> None:
    parses_or_spelling_error(PARSERS[name], value)


def test_parsers_cover_the_schema() -> None:
    assert set(PARSERS) == {
        "fans",
        "violations",
        "live_permission",
        "verified",
        "category",
        "price",
        "listing_id",
        "sold_at",
    }


# ------------------------------------------------------------------------ edge cases once missed


@pytest.mark.parametrize("raw", ["0.001", "¥0.004", 0.004])
def test_price_that_rounds_to_zero_is_rejected(raw: object) -> None:
    assert_rejected(parse_price, raw, "price")


@pytest.mark.parametrize("raw", ["9" * 5000, 10**5000], ids=["str-5000-digits", "int-5001-digits"])
def test_absurdly_long_fans_is_a_spelling_error(raw: object) -> None:
    assert_rejected(parse_fans, raw, "fans")


def test_sold_at_nat_is_none() -> None:
    assert parse_sold_at(pd.NaT) is None


# ------------------------------------------------------------------------ the bulk fans reader

from tests.hostile import one_by_one  # noqa: E402
from valuation.parsing import parse_fans_many  # noqa: E402

_SPELLED = st.builds(
    lambda whole, frac, unit, comma: (
        (f"{whole:,}" if comma else str(whole)) + (f".{frac}" if frac else "") + unit
    ),
    st.integers(0, 10**11),
    st.sampled_from(["", "0", "5", "13", "0001", "12345", "99999"]),
    st.sampled_from(["", "w", "W", "万", "k", "K", "千", "m", "百万", "千万", "亿", "WW"]),
    st.booleans(),
)


@given(st.lists(st.one_of(_SPELLED, st.text(max_size=12), st.none()), max_size=40))
def test_parse_fans_many_answers_as_parse_fans_does(values):
    values = np.array(values, dtype=object)
    parsed, reasons = parse_fans_many(values)
    assert list(zip(parsed.tolist(), reasons.tolist(), strict=True)) == one_by_one(values)
