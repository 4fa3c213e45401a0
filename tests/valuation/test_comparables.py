"""Comparable past sales: nearest neighbours on log fans, the flags and the category, on small
hand-made sales where every distance can be worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from valuation import comparables as comparables_module
from valuation.comparables import FILE, MAX_K, Comparable, Comparables
from valuation.listing import Listing
from valuation.loading import parse_listings

QUERY = Listing(100_000, False, True, False, "美食")


def sales_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if "sold_at" in frame:
        frame["sold_at"] = pd.to_datetime(frame["sold_at"])
    return frame


def sale(listing_id, fans, violations, live, verified, category, price, sold_at="2025-01-01"):
    return {
        "listing_id": listing_id,
        "fans": fans,
        "violations": violations,
        "live_permission": live,
        "verified": verified,
        "category": category,
        "price": price,
        "sold_at": sold_at,
    }


SALES = sales_frame(
    [
        sale("same", 100_000, False, True, False, "美食", 1000.0, "2025-01-01"),
        sale("other-category", 100_000, False, True, False, "游戏", 1100.0, "2025-02-01"),
        sale("decade-up", 1_000_000, False, True, False, "美食", 5000.0, None),
        sale("violation", 100_000, True, True, False, "美食", 700.0, "2025-03-01"),
        sale("far", 5_000, False, False, True, "三农", 100.0, "2024-01-01"),
    ]
)


@pytest.fixture(scope="module")
def comps() -> Comparables:
    return Comparables.from_sales(SALES)


def by_id(found: list[Comparable]) -> dict:
    return {comp.listing_id: comp for comp in found}


def test_exact_duplicate_comes_first_with_similarity_one(comps):
    found = comps.find(QUERY, 5)
    assert found[0].listing_id == "same"
    assert found[0].similarity == 1.0
    assert found[0].listing == QUERY
    assert found[0].price == 1000.0
    assert found[0].sold_at == "2025-01-01"


def test_results_are_sorted_by_decreasing_similarity(comps):
    for query in (
        QUERY,
        Listing(3_000, True, False, True, "三农"),
        Listing(0, False, False, False, ""),
    ):
        similarities = [comp.similarity for comp in comps.find(query, 5)]
        assert similarities == sorted(similarities, reverse=True)
        assert all(0 < s <= 1 for s in similarities)


def test_found_sales_are_typed_plainly(comps):
    for comp in comps.find(QUERY, 5):
        assert type(comp.listing.fans) is int
        for flag in ("violations", "live_permission", "verified"):
            assert type(getattr(comp.listing, flag)) is bool
        assert isinstance(comp.listing.category, str)
        assert type(comp.price) is float
        assert comp.sold_at is None or isinstance(comp.sold_at, str)


def test_a_sale_without_a_date_has_sold_at_none(comps):
    assert by_id(comps.find(QUERY, 5))["decade-up"].sold_at is None


def test_same_category_beats_a_different_one_at_equal_fans(comps):
    found = by_id(comps.find(QUERY, 5))
    # A differing category counts 1 and so does a differing flag: both are at distance 1.
    assert found["other-category"].similarity == pytest.approx(0.5)
    assert found["violation"].similarity == pytest.approx(0.5)
    assert found["same"].similarity > found["other-category"].similarity


def test_one_decade_of_fans_is_distance_two(comps):
    found = by_id(comps.find(QUERY, 5))
    # log10(fans + 1): at 1e5 and 1e6 fans the +1 is negligible at the 4 decimals shown.
    assert found["decade-up"].similarity == pytest.approx(1 / 3, abs=1e-4)


def test_far_sale_distance(comps):
    found = by_id(comps.find(QUERY, 5))
    fans = 2 * (math.log10(100_001) - math.log10(5_001))
    distance = math.sqrt(fans**2 + 1 + 1 + 1)  # live permission, verified, category differ
    assert found["far"].similarity == pytest.approx(1 / (1 + distance), abs=1e-4)


@pytest.mark.parametrize("k, expected", [(0, 0), (-3, 0), (1, 1), (3, 3), (5, 5), (10, 5)])
def test_k_is_capped_at_the_number_of_sales(comps, k, expected):
    assert len(comps.find(QUERY, k)) == expected


def test_k_zero_gives_an_empty_list(comps):
    assert comps.find(QUERY, 0) == []


def test_k_is_capped_at_max_k():
    many = sales_frame(
        [sale(f"s{i}", 1_000 * (i + 1), False, True, False, "美食", 10.0 + i) for i in range(30)]
    )
    found = Comparables.from_sales(many).find(QUERY, 100)
    assert len(found) == MAX_K
    assert len({comp.listing_id for comp in found}) == MAX_K


def test_unknown_category_in_the_query(comps):
    query = Listing(100_000, False, True, False, "从没见过的类目")
    found = comps.find(query, 3)
    assert len(found) == 3
    # An unknown category is equally far (sqrt 0.5) from every known one.
    assert {comp.listing_id for comp in found} == {"same", "other-category", "violation"}
    assert found[0].similarity == found[1].similarity
    assert found[0].similarity == pytest.approx(1 / (1 + math.sqrt(0.5)), abs=1e-4)


def test_save_and_load_give_the_same_answers(comps, tmp_path):
    comps.save(tmp_path)
    assert (tmp_path / FILE).is_file()
    loaded = Comparables.load(tmp_path)
    assert loaded is not None
    for query in (
        QUERY,
        Listing(5_000, False, False, True, "三农"),
        Listing(7, True, True, True, "x"),
    ):
        assert loaded.find(query, 5) == comps.find(query, 5)


def test_load_without_a_file_is_none(tmp_path):
    assert Comparables.load(tmp_path) is None


def test_from_sales_keeps_only_the_known_columns():
    extra = SALES.assign(note="急售", region="北京")
    comps = Comparables.from_sales(extra)
    assert "note" not in comps.sales and "region" not in comps.sales
    assert comps.find(QUERY, 5) == Comparables.from_sales(SALES).find(QUERY, 5)


def test_from_sales_keeps_the_most_recent_sales(monkeypatch):
    monkeypatch.setattr(comparables_module, "MAX_KEPT", 3)
    comps = Comparables.from_sales(SALES)
    assert len(comps.sales) == 3
    # Newest first out of: far 2024-01, same 2025-01, other 2025-02, violation 2025-03, undated.
    assert set(comps.sales["listing_id"]) == {"same", "other-category", "violation"}
    assert len(comps.find(QUERY, 10)) == 3


def test_from_sales_without_dates_keeps_at_most_max_kept(monkeypatch):
    monkeypatch.setattr(comparables_module, "MAX_KEPT", 2)
    comps = Comparables.from_sales(SALES.drop(columns=["sold_at"]))
    assert len(comps.sales) == 2
    found = comps.find(QUERY, 5)
    assert len(found) == 2 and all(comp.sold_at is None for comp in found)


def test_from_sales_under_max_kept_keeps_everything():
    assert len(Comparables.from_sales(SALES).sales) == len(SALES)


def test_sales_without_listing_ids_have_listing_id_none():
    comps = Comparables.from_sales(SALES.drop(columns=["listing_id"]))
    found = comps.find(QUERY, 2)
    assert [comp.listing_id for comp in found] == [None, None]
    assert found[0].similarity == 1.0


def test_a_sale_with_a_missing_listing_id_has_listing_id_none(tmp_path):
    raw = pd.DataFrame(
        {
            "粉丝数量": ["10万", "2万"],
            "有无违规": ["无违规", "有违规"],
            "直播权限": ["已开通", "未开通"],
            "认证状态": ["未认证", "已认证"],
            "类目": ["美食", "游戏"],
            "成交价": ["¥1,200", "800"],
            "账号ID": ["", "KS1"],
            "成交日期": ["2025-03-01", ""],
        }
    )
    loaded = parse_listings(raw, require_price=True)
    assert len(loaded.listings) == 2 and loaded.listings["listing_id"].iloc[1] == "KS1"
    comps = Comparables.from_sales(loaded.listings)
    found = comps.find(QUERY, 2)
    assert found[0].listing == QUERY
    assert found[1].listing_id == "KS1" and found[1].sold_at is None
    assert found[0].listing_id is None
    comps.save(tmp_path)
    assert Comparables.load(tmp_path).find(QUERY, 1)[0].listing_id is None
