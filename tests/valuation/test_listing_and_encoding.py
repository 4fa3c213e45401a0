"""Tests of `Listing.parse` (any accepted key and spelling) and the `Encoder` (fit and quote time)."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valuation.encoding import FEATURE_NAMES, Encoder
from valuation.listing import Listing, ListingError
from valuation.loading import parse_listings
from valuation.schema import FEATURES

CATEGORY_COLUMN = FEATURE_NAMES.index("category")


def test_parse_with_canonical_keys():
    listing = Listing.parse(
        {
            "fans": "13.13W",
            "violations": "有违规",
            "live_permission": "未开通",
            "verified": "已认证",
            "category": "自媒体",
        }
    )
    assert listing == Listing(131300, True, False, True, "自媒体")


def test_parse_with_marketplace_keys():
    listing = Listing.parse(
        {
            "粉丝数量": "5.2万",
            "有无违规": "无违规",
            "直播权限": "已开通",
            "认证状态": "未认证",
            "类目": "美食",
        }
    )
    assert listing == Listing(52000, False, True, False, "美食")


def test_parse_with_mixed_keys_and_spellings():
    listing = Listing.parse(
        {
            "Fans": 1_200,
            "违规": "no",
            "Live-Permission": True,
            "认证": "未认证",
            "分类": " 游戏 ",
            "备注": "ignored: not a feature",
        }
    )
    assert listing == Listing(1200, False, True, False, "游戏")
    assert type(listing.fans) is int and type(listing.violations) is bool


def test_listing_error_names_every_bad_and_missing_field():
    with pytest.raises(ListingError) as caught:
        Listing.parse({"fans": "约10万", "violations": "maybe", "类目": "美食"})
    problems = caught.value.problems
    assert set(problems) == {"fans", "violations", "live_permission", "verified"}
    assert "约10万" in problems["fans"]
    assert "maybe" in problems["violations"]
    assert "missing" in problems["live_permission"] and "missing" in problems["verified"]
    for name in problems:
        assert name in str(caught.value)


def test_listing_error_on_empty_input_lists_all_features():
    with pytest.raises(ListingError) as caught:
        Listing.parse({})
    assert list(caught.value.problems) == [f.name for f in FEATURES if f.default is None]
    assert list(caught.value.problems) == list(FEATURE_NAMES)  # today every feature is required


def test_encoder_orders_by_frequency_then_name():
    encoder = Encoder.fit(["美食", "游戏", "游戏", "搞笑", "美食", "自媒体", "游戏", "三农"])
    # 游戏 x3; 美食 x2; then the singletons by name (Unicode order).
    assert encoder.categories == ("游戏", "美食", *sorted(["搞笑", "自媒体", "三农"]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(list("abcdefg")), min_size=1, max_size=40), st.randoms())
def test_encoder_fit_is_deterministic(categories, rng):
    shuffled = categories[:]
    rng.shuffle(shuffled)
    encoder = Encoder.fit(categories)
    assert Encoder.fit(shuffled) == encoder
    assert Encoder.fit(pd.Series(shuffled)).categories == encoder.categories
    assert sorted(encoder.categories) == sorted(set(categories))
    keys = [(-categories.count(c), c) for c in encoder.categories]
    assert keys == sorted(keys)


VOCABULARY = ["自媒体", "美食", "搞笑", "游戏"]
listings = st.builds(
    Listing,
    fans=st.integers(0, 10**10),
    violations=st.booleans(),
    live_permission=st.booleans(),
    verified=st.booleans(),
    category=st.sampled_from([*VOCABULARY, "未知类目"]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(listings, min_size=1, max_size=20))
def test_row_and_matrix_agree(batch):
    encoder = Encoder(tuple(VOCABULARY))
    matrix = encoder.matrix(pd.DataFrame([asdict(listing) for listing in batch]))
    assert matrix.shape == (len(batch), len(FEATURE_NAMES))
    for i, listing in enumerate(batch):
        row = encoder.row(listing)
        assert row.shape == (1, len(FEATURE_NAMES))
        np.testing.assert_array_equal(matrix[i], row[0])
        assert row[0, FEATURE_NAMES.index("fans")] == listing.fans
        assert row[0, FEATURE_NAMES.index("violations")] == float(listing.violations)


def test_matrix_of_loaded_listings_matches_row_of_parsed_listing():
    raw = pd.DataFrame(
        {
            "粉丝数量": ["13.13W", "800"],
            "有无违规": ["有违规", "无违规"],
            "直播权限": ["未开通", "已开通"],
            "认证状态": ["已认证", "未认证"],
            "类目": ["美食", "新类目"],
        }
    )
    encoder = Encoder(tuple(VOCABULARY))
    matrix = encoder.matrix(parse_listings(raw, require_price=False).listings)
    for i, values in enumerate(raw.to_dict("records")):
        np.testing.assert_array_equal(matrix[i], encoder.row(Listing.parse(values))[0])


def test_unknown_category_gets_the_code_after_the_vocabulary_and_is_not_known():
    encoder = Encoder(tuple(VOCABULARY))
    unknown = Listing(1000, False, False, False, "未知类目")
    assert not encoder.knows("未知类目")
    assert encoder.unknown_code == len(VOCABULARY)
    assert encoder.row(unknown)[0, CATEGORY_COLUMN] == encoder.unknown_code
    for code, category in enumerate(VOCABULARY):
        assert encoder.knows(category)
        known = Listing(1000, False, False, False, category)
        assert encoder.row(known)[0, CATEGORY_COLUMN] == code
    frame = pd.DataFrame([asdict(unknown)])
    assert encoder.matrix(frame)[0, CATEGORY_COLUMN] == encoder.unknown_code
