"""Hostile input at every parser, at `Listing.parse` and at the file loader: NaN, infinities, huge
numbers, negative and zero counts, empty and very long text, odd Unicode and mixed spellings.

Each value either becomes a sane typed value (within the limits declared in `valuation.schema`)
or is refused with a `SpellingError` whose reason names the field: never another exception, never
a NaN or an infinity let through, never a reason that cannot be shown (a lone surrogate in a
reason would make a JSON answer unencodable).
"""

from __future__ import annotations

import datetime as dt
import math
import unicodedata
from functools import partial

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.hostile import (
    HUGE,
    LONG,
    MIXED_SPELLINGS,
    NON_FINITE,
    NUMBER_WORDS,
    ODD_CHARACTERS,
    hostile_value,
    odd_text,
    one_by_one,
)
from valuation.listing import Listing, ListingError
from valuation.loading import load_listings, parse_listings
from valuation.parsing import (
    PARSERS,
    SpellingError,
    parse_category,
    parse_fans,
    parse_fans_many,
    parse_flag,
    parse_listing_id,
    parse_price,
    parse_sold_at,
)
from valuation.schema import (
    EARLIEST_SALE,
    FEATURES,
    FLAGS,
    LATEST_SALE,
    MAX_CATEGORY_LENGTH,
    MAX_FANS,
    MAX_LISTING_ID_LENGTH,
    MAX_PRICE,
)

HOSTILE = settings(max_examples=300, deadline=None)
EVERY_HOSTILE_CONSTANT = [
    *NON_FINITE,
    *HUGE,
    *NUMBER_WORDS,
    *MIXED_SPELLINGS,
    *ODD_CHARACTERS,
    *LONG,
]
FLAG_NAMES = [field.name for field in FLAGS]


def case_id(value) -> str:
    try:
        return repr(value)[:30]
    except ValueError:  # 10**5000 refuses repr() too
        return "int-of-5001-digits"


def sane_fans(value) -> bool:
    return type(value) is int and 0 <= value <= MAX_FANS


def sane_price(value) -> bool:
    return (
        type(value) is float
        and math.isfinite(value)
        and 0 < value <= MAX_PRICE
        and round(value, 2) == value
    )


def sane_category(value) -> bool:
    return (
        type(value) is str
        and 0 < len(value) <= MAX_CATEGORY_LENGTH
        and value.isprintable()
        and value == value.strip()
        and value == unicodedata.normalize("NFKC", value)
    )


def sane_sold_at(value) -> bool:
    return value is None or (type(value) is dt.date and EARLIEST_SALE <= value <= LATEST_SALE)


def sane_listing_id(value) -> bool:
    return value is None or (
        type(value) is str
        and 0 < len(value) <= MAX_LISTING_ID_LENGTH
        and value.isprintable()
        and value == value.strip()
    )


# (parser, the field its reasons must name, what a parsed value must be)
CONTRACTS = {
    "fans": (parse_fans, "fans", sane_fans),
    "price": (parse_price, "price", sane_price),
    "category": (parse_category, "category", sane_category),
    "sold_at": (parse_sold_at, "sold_at", sane_sold_at),
    "listing_id": (parse_listing_id, "listing_id", sane_listing_id),
    **{
        name: (partial(parse_flag, name), name, lambda value: type(value) is bool)
        for name in FLAG_NAMES
    },
}


def check_contract(name: str, value: object) -> object:
    """Parses `value` as field `name`; returns the parsed value, or the SpellingError."""
    parser, field, sane = CONTRACTS[name]
    try:
        parsed = parser(value)
    except SpellingError as error:
        assert_clear_reason(error.reason, field)
        return error
    assert sane(parsed), f"{name}: {value!r} -> {parsed!r}"
    return parsed


def assert_clear_reason(reason: str, field: str) -> None:
    assert field in reason, reason
    assert reason.isprintable() and len(reason) <= 200, reason
    reason.encode("utf-8")  # shown in a JSON answer: no lone surrogate may slip through


def test_contracts_cover_every_parser() -> None:
    assert set(CONTRACTS) == set(PARSERS)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
@pytest.mark.parametrize("value", EVERY_HOSTILE_CONSTANT, ids=case_id)
def test_every_parser_reads_or_clearly_refuses_each_hostile_value(name, value) -> None:
    check_contract(name, value)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
@HOSTILE
@given(value=hostile_value)
def test_every_parser_reads_or_clearly_refuses_any_hostile_value(name, value) -> None:
    check_contract(name, value)


# --- what is refused, and what is still read ----------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        *NON_FINITE,
        "NaN",
        "Infinity",
        "-Infinity",
        1e308,
        10**400,
        str(10**400),
        "9" * 10_000,
        -1,
        "-1",
        -0.5,
        "−5",
        "13.13W万",
        "1.2亿W",
        "1,2,3",
        "13,13W",  # read as 1313W it would be a hundred times the count
        "1,00",
        "1 3",
        "1_000",
        "0x10",
        "10²",  # NFKC would read 102
        "①",
        "١٢٣",
        "\u200b131300",
        "13\u200d1300",
        "\u202e131300",
        "131300\x00",
        "\ud800",
        "😀",
    ],
    ids=case_id,
)
def test_fans_refuses(value) -> None:
    assert isinstance(check_contract("fans", value), SpellingError)


@pytest.mark.parametrize(
    "value, fans",
    [
        (0, 0),
        ("0", 0),
        (-0.0, 0),
        ("１３.１３Ｗ", 131_300),
        ("１３１，３００", 131_300),
        ("1,000", 1_000),
        ("1,000,000", 1_000_000),
        ("13.13 W", 131_300),
        ("\u00a013.13W\u3000", 131_300),  # no-break and ideographic spaces around it
        ("\t131300\n", 131_300),
        ("100亿", MAX_FANS),
        (MAX_FANS, MAX_FANS),
    ],
    ids=case_id,
)
def test_fans_still_reads(value, fans) -> None:
    assert check_contract("fans", value) == fans


@pytest.mark.parametrize(
    "value",
    [*NON_FINITE, 0, "0", "¥0", -1, "¥-100", 1e308, 10**400, "1,2,3", "¥¥100", "100元元", "0.001"],
    ids=case_id,
)
def test_price_refuses(value) -> None:
    assert isinstance(check_contract("price", value), SpellingError)


@pytest.mark.parametrize("name", FLAG_NAMES)
@pytest.mark.parametrize(
    "value", [*NON_FINITE, 2, -1, 0.5, 10**400, "①", "¹", "有违规无违规", "yes no", "\ud800"]
)
def test_flags_refuse(name, value) -> None:
    assert isinstance(check_contract(name, value), SpellingError)


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "\u3000",
        "\u200b",  # zero-width: invisible, no category
        "\u202e美食",  # a right-to-left override would reverse what follows it on screen
        "美\x00食",
        "美\n食",
        "\ud800",
        "x" * (MAX_CATEGORY_LENGTH + 1),
        "x" * 10_000,
        "美" * 10_000,
        0,
        1.5,
        True,
        math.nan,
        10**400,
        b"food",
    ],
    ids=case_id,
)
def test_category_refuses(value) -> None:
    assert isinstance(check_contract("category", value), SpellingError)


@pytest.mark.parametrize("value", ["美食", "😀", "ｆｏｏｄ", "  搞笑  ", "x" * MAX_CATEGORY_LENGTH])
def test_category_still_reads(value) -> None:
    assert check_contract("category", value) == unicodedata.normalize("NFKC", value).strip()


@pytest.mark.parametrize(
    "value",
    [
        "0000-01-01",
        "9999-12-31",
        "2010-12-31",
        dt.date(1, 1, 1),
        dt.datetime(9999, 12, 31),
        "2025-02-30",
        "20250301000",
        "2025-03-01" + " " * 10_000 + "x",
        "x" * 10_000,
        math.inf,
        10**400,
        "\ud800",
    ],
    ids=case_id,
)
def test_sold_at_refuses(value) -> None:
    assert isinstance(check_contract("sold_at", value), SpellingError)


@pytest.mark.parametrize(
    "value",
    [math.inf, 1.5, True, "x" * (MAX_LISTING_ID_LENGTH + 1), "a\x00b", "\ud800", 10**400],
    ids=case_id,
)
def test_listing_id_refuses(value) -> None:
    assert isinstance(check_contract("listing_id", value), SpellingError)


@pytest.mark.parametrize(
    "value, listing_id", [(1024, "1024"), (1024.0, "1024"), (np.int64(7), "7"), (" KS-1 ", "KS-1")]
)
def test_listing_id_reads_whole_numbers_as_text(value, listing_id) -> None:
    assert check_contract("listing_id", value) == listing_id


# --- the bulk fans reader answers as the scalar one ----------------------------------------------


@HOSTILE
@given(
    st.lists(
        st.one_of(
            st.sampled_from(MIXED_SPELLINGS + NUMBER_WORDS + ODD_CHARACTERS + LONG), odd_text
        ),
        max_size=30,
    )
)
def test_bulk_fans_answers_hostile_text_as_parse_fans(values) -> None:
    values = np.array(values, dtype=object)
    parsed, reasons = parse_fans_many(values)
    assert list(zip(parsed.tolist(), reasons.tolist(), strict=True)) == one_by_one(values)


@HOSTILE
@given(st.lists(hostile_value, max_size=20))
def test_bulk_fans_answers_any_hostile_values_as_parse_fans(values) -> None:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    parsed, reasons = parse_fans_many(array)
    assert list(zip(parsed.tolist(), reasons.tolist(), strict=True)) == one_by_one(values)


@pytest.mark.parametrize("value", [b"131300", "\ud800", "1,2,3", "13,13W"], ids=case_id)
def test_bulk_fans_refuses_what_parse_fans_refuses(value) -> None:
    parsed, reasons = parse_fans_many(np.array([value, "13.13W"], dtype=object))
    assert parsed.tolist() == [None, 131_300]
    assert "fans" in reasons[0]


# --- Listing.parse -------------------------------------------------------------------------------

FEATURE_NAMES = [field.name for field in FEATURES]
GOOD = {field.name: field.examples[0] for field in FEATURES}


@HOSTILE
@given(
    st.fixed_dictionaries(
        {},
        optional={name: st.one_of(hostile_value, st.just(GOOD[name])) for name in FEATURE_NAMES},
    ),
    st.dictionaries(
        st.one_of(odd_text, st.sampled_from(["粉丝数量", "类目"])), hostile_value, max_size=2
    ),
)
def test_listing_parse_reads_or_names_each_bad_field(values, extra) -> None:
    values = {**extra, **values}
    try:
        listing = Listing.parse(values)
    except ListingError as error:
        assert error.problems, values
        assert set(error.problems) <= set(FEATURE_NAMES)
        for name, reason in error.problems.items():
            assert_clear_reason(reason, name)
        return
    assert sane_fans(listing.fans) and sane_category(listing.category)
    assert all(type(getattr(listing, name)) is bool for name in FLAG_NAMES)


def test_listing_parse_refuses_a_field_given_twice() -> None:
    with pytest.raises(ListingError) as caught:
        Listing.parse({**GOOD, "粉丝数量": "1万"})
    assert set(caught.value.problems) == {"fans"}
    assert "twice" in caught.value.problems["fans"]


# --- the file loader -----------------------------------------------------------------------------

HEADERS = ["粉丝数量", "有无违规", "直播权限", "认证状态", "类目", "成交价", "成交日期"]
GOOD_ROW = ["13.13W", "有违规", "未开通", "已认证", "自媒体", "¥1,200", "2025-03-01"]


row_strategy = st.lists(
    st.one_of(st.just(None), st.sampled_from(MIXED_SPELLINGS + NUMBER_WORDS + LONG[:2]), odd_text),
    min_size=len(HEADERS),
    max_size=len(HEADERS),
)


def has_surrogate(cell) -> bool:
    return isinstance(cell, str) and any("\ud800" <= c <= "\udfff" for c in cell)


@HOSTILE
@given(
    st.lists(
        st.one_of(
            st.just(GOOD_ROW),
            row_strategy,
            st.tuples(
                st.integers(0, len(HEADERS) - 1), st.one_of(odd_text, st.sampled_from(LONG))
            ).map(
                lambda change: [
                    change[1] if i == change[0] else cell for i, cell in enumerate(GOOD_ROW)
                ]
            ),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_loader_accounts_for_every_hostile_row(rows) -> None:
    raw = pd.DataFrame(rows, columns=HEADERS, dtype=object)  # as handed over from Parquet
    if not any(has_surrogate(cell) for row in rows for cell in row):
        # As read_csv gives text (a decoded file holds no lone surrogate, nor can this dtype).
        raw = raw.astype("string")
    loaded = parse_listings(raw, require_price=True)
    # Every row is either a listing or a reject with its line and reason: none dropped.
    assert len(loaded.listings) + len(loaded.rejects) == len(rows)
    assert sorted([*loaded.listings.index, *(loaded.rejects["line"] - 2)]) == list(range(len(rows)))
    for reason, column in zip(loaded.rejects["reason"], loaded.rejects["column"], strict=True):
        assert reason and column
        reason.encode("utf-8")
    listings = loaded.listings
    assert listings["fans"].between(0, MAX_FANS).all()
    assert np.isfinite(listings["price"]).all() and listings["price"].between(0.01, MAX_PRICE).all()
    assert listings["category"].map(sane_category).all()
    assert (
        listings["sold_at"]
        .dropna()
        .between(pd.Timestamp(EARLIEST_SALE), pd.Timestamp(LATEST_SALE))
        .all()
    )


def test_loader_rejects_each_hostile_row_with_its_line_and_reason(tmp_path) -> None:
    bad = {
        "13.13W万": ("粉丝数量", "fans"),
        "1,2,3": ("粉丝数量", "fans"),
        "NaN": ("粉丝数量", "fans"),
        "-5": ("粉丝数量", "fans"),
        "9" * 400: ("粉丝数量", "fans"),
        "10²": ("粉丝数量", "fans"),
    }
    rows = [GOOD_ROW]
    for value in bad:
        rows.append([value, *GOOD_ROW[1:]])
    rows.append([*GOOD_ROW[:4], "x" * 10_000, *GOOD_ROW[5:]])
    rows.append([*GOOD_ROW[:4], "美\u200b食\x07", *GOOD_ROW[5:]])
    rows.append([*GOOD_ROW[:5], "Infinity", *GOOD_ROW[6:]])
    rows.append([*GOOD_ROW[:5], "1e308", *GOOD_ROW[6:]])
    rows.append([*GOOD_ROW[:6], "9999-12-31"])
    rows.append(["１３.１３Ｗ", *GOOD_ROW[1:]])  # full-width: read
    path = tmp_path / "sales.csv"
    pd.DataFrame(rows, columns=HEADERS).to_csv(path, index=False, encoding="utf-8")
    loaded = load_listings(path, require_price=True)
    assert loaded.listings.index.tolist() == [0, len(rows) - 1]
    assert loaded.listings["fans"].tolist() == [131_300, 131_300]
    expected_columns = [column for column, _ in bad.values()] + [
        "类目",
        "类目",
        "成交价",
        "成交价",
        "成交日期",
    ]
    assert loaded.rejects["line"].tolist() == list(range(3, 3 + len(expected_columns)))
    assert loaded.rejects["column"].tolist() == expected_columns
    for column, reason in zip(loaded.rejects["column"], loaded.rejects["reason"], strict=True):
        field = {"粉丝数量": "fans", "类目": "category", "成交价": "price", "成交日期": "sold_at"}[
            column
        ]
        assert_clear_reason(reason, field)


def test_loader_refuses_typed_hostile_values_row_by_row() -> None:
    # As Parquet hands them over: typed, not text.
    raw = pd.DataFrame(
        {
            "fans": [131_300, math.nan, math.inf, -5, 10**18, 1.5, 2**62],
            "violations": [True, 2, None, False, True, True, True],
            "live_permission": [False] * 7,
            "verified": [True] * 7,
            "category": ["美食", "美食", "美食", "美食", "美食", "美食", 0],
            "price": [1200.0, 1200.0, 1200.0, math.nan, -1.0, math.inf, 1e308],
        }
    )
    loaded = parse_listings(raw, require_price=True)
    assert loaded.listings.index.tolist() == [0]
    assert loaded.rejects["line"].tolist() == [3, 4, 5, 6, 7, 8]
    assert all(loaded.rejects["reason"])
