"""Tests of the holdout report on a synthetic evaluation: files, figures, numbers, escaping."""

from __future__ import annotations

import importlib
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import numpy as np
import pytest

import training.report
from data.simulator import simulate_sales
from training.evaluation import interval_coverage, price_errors
from training.report import FIGURES, LABELS, write_report
from training.steps import Evaluation
from valuation.valuer import FANS_BANDS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ESTIMATES = {"price_estimate": 0.15, "baseline_fans_band": 0.6, "baseline_linear": 0.3}
"""Each estimate's log-normal error: the model closest, then the linear, then the band baseline."""


def synthetic_evaluation(rows: int = 600, seed: int = 7) -> Evaluation:
    """Simulated holdout sales with made-up estimates, and ranges whose width depends on the band,
    so coverage differs from band to band."""
    sales = simulate_sales(rows, seed)
    predictions = sales[["fans", "violations", "live_permission", "verified", "category", "price"]]
    predictions = predictions.reset_index(drop=True)
    rng = np.random.default_rng(seed + 1)  # not the simulator's own stream
    price = predictions["price"].to_numpy()
    for column, sigma in ESTIMATES.items():
        predictions[column] = price * np.exp(rng.normal(0.0, sigma, rows))
    half_width = 0.1 + 0.06 * np.searchsorted(FANS_BANDS, predictions["fans"], side="right")
    predictions["price_low"] = predictions["price_estimate"] * np.exp(-half_width)
    predictions["price_high"] = predictions["price_estimate"] * np.exp(half_width)
    metrics = {"model": price_errors(price, predictions["price_estimate"])}
    metrics["model"]["interval_coverage"] = interval_coverage(
        price, predictions["price_low"], predictions["price_high"]
    )
    for name in ("baseline_fans_band", "baseline_linear"):
        metrics[name] = price_errors(price, predictions[name])
    return Evaluation(metrics=metrics, predictions=predictions)


IMPORTANCE = {"fans": 900.0, "violations": 40.0, "live_permission": 30.0, "verified": 20.0}
IMPORTANCE["category"] = 10.0


class Tables(HTMLParser):
    """The page's tables by id: rows of (cell text, whether the cell is bold)."""

    def __init__(self, page: str):
        super().__init__()
        self.tables: dict[str, list[list[tuple[str, bool]]]] = {}
        self.table = self.cell = None
        self.bold = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.table = self.tables.setdefault(dict(attrs).get("id"), [])
        elif tag == "tr" and self.table is not None:
            self.table.append([])
        elif tag in ("td", "th") and self.table is not None:
            self.cell, self.bold = [], False
        elif tag == "strong":
            self.bold = True

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            self.table[-1].append(("".join(self.cell).strip(), self.bold))
            self.cell = None
        elif tag == "table":
            self.table = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


@pytest.fixture(scope="module")
def evaluation() -> Evaluation:
    evaluation = synthetic_evaluation()
    bands = np.searchsorted(FANS_BANDS, evaluation.predictions["fans"], side="right")
    assert set(bands) == {0, 1, 2, 3}, "the fixture needs sales in every fans band"
    return evaluation


@pytest.fixture(scope="module")
def report(evaluation, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    return write_report(evaluation, IMPORTANCE, out, "<script>alert(1)</script> & co", "holdout")


@pytest.fixture(scope="module")
def tables(report) -> dict:
    return Tables(report.read_text(encoding="utf-8")).tables


def test_the_page_and_five_figures_are_written_beside_it(report):
    assert report.name == "index.html"
    for name in FIGURES:
        figure = (report.parent / name).read_bytes()
        assert figure[:8] == PNG_SIGNATURE, name
        assert len(figure) > 10_000, f"{name} is almost empty"
    assert len(FIGURES) == 5


def test_the_page_shows_each_figure_by_relative_src_and_declares_utf8(report):
    page = report.read_text(encoding="utf-8")
    assert '<meta charset="utf-8">' in page
    for name in FIGURES:
        assert f'<img src="{name}"' in page


def test_the_title_is_escaped(report):
    page = report.read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page


def test_the_comparison_rows_hold_each_mdape_with_the_model_first(evaluation, tables):
    predictions = evaluation.predictions
    rows = tables["comparison"][1:]
    assert [row[0][0] for row in rows] == [
        LABELS["model"],
        LABELS["baseline_fans_band"],
        LABELS["baseline_linear"],
    ]
    for row, column in zip(rows, ESTIMATES):
        relative = np.abs(predictions[column] - predictions["price"]) / predictions["price"]
        assert row[1][0] == f"{np.median(relative):.1%}"
    assert rows[0][1][1] and not rows[1][1][1] and not rows[2][1][1], "only the best MdAPE bold"


def test_the_best_value_is_bold_whichever_row_holds_it(evaluation, tmp_path):
    metrics = {name: dict(values) for name, values in evaluation.metrics.items()}
    metrics["baseline_linear"]["rmsle"] = metrics["model"]["rmsle"] / 2
    # A model without a single split (all gains zero) must still get its figures.
    no_gain = dict.fromkeys(IMPORTANCE, 0.0)
    page = write_report(Evaluation(metrics, evaluation.predictions), no_gain, tmp_path, "t")
    rows = Tables(page.read_text(encoding="utf-8")).tables["comparison"][1:]
    assert [row[3][1] for row in rows] == [False, False, True]
    assert [row[1][1] for row in rows] == [True, False, False]
    assert (tmp_path / "feature_importance.png").read_bytes()[:8] == PNG_SIGNATURE


def test_per_band_counts_and_coverage_match_an_independent_count(evaluation, tables, report):
    predictions = evaluation.predictions
    bands = np.searchsorted(FANS_BANDS, predictions["fans"], side="right")
    inside = (predictions["price"] >= predictions["price_low"]) & (
        predictions["price"] <= predictions["price_high"]
    )
    rows = tables["by-band"][1:]
    assert len(rows) == 4
    coverages = [f"{inside[bands == band].mean():.1%}" for band in range(4)]
    assert len(set(coverages)) > 1, "the fixture must give bands different coverages"
    for band, row in enumerate(rows):
        assert row[1][0] == str(int((bands == band).sum()))
        assert row[3][0] == coverages[band]
    overall = f"{inside.mean():.1%}"
    assert f"held <strong>{overall}</strong>" in report.read_text(encoding="utf-8")


def test_per_band_coverage_sets_aside_the_typo_shaped_sales_as_the_headline_does(tmp_path):
    """Ten sales of the first band carry an extra zero: the band still counts them as sales, but
    its coverage, like the headline's, is that of the others (a typo is not a sale to hold)."""
    evaluation = synthetic_evaluation()
    predictions = evaluation.predictions.copy()
    bands = np.searchsorted(FANS_BANDS, predictions["fans"], side="right")
    clean = (predictions["price"] >= predictions["price_low"]) & (
        predictions["price"] <= predictions["price_high"]
    )
    typos = np.flatnonzero((bands == 0) & clean)[:10]
    predictions.loc[typos, "price"] *= 10
    evaluation.metrics["model"]["typo_shaped"] = 10.0
    page = write_report(
        Evaluation(evaluation.metrics, predictions), IMPORTANCE, tmp_path, "typos", "holdout"
    )
    text = page.read_text(encoding="utf-8")
    row = Tables(text).tables["by-band"][1]
    assert row[1][0] == str(int((bands == 0).sum()))
    kept = np.ones(len(predictions), dtype=bool)
    kept[typos] = False
    assert row[3][0] == f"{clean[(bands == 0) & kept].mean():.1%}"
    # The typos do not count as misses.
    assert row[3][0] != f"{(clean & kept)[bands == 0].mean():.1%}"
    assert "sales (10 of a price typo's shape set aside, as in the calibration)" in text


def test_per_category_counts_and_errors_match_an_independent_count(evaluation, tables):
    predictions = evaluation.predictions
    relative = (predictions["price_estimate"] - predictions["price"]).abs() / predictions["price"]
    rows = {row[0][0]: (row[1][0], row[2][0]) for row in tables["by-category"][1:]}
    counts = predictions["category"].value_counts()
    kept = counts[counts >= 30]
    assert len(kept) >= 1, "the fixture must have a category with 30+ holdout sales"
    for category, n in kept.items():
        expected = f"{relative[predictions['category'] == category].median():.1%}"
        assert rows[category] == (str(n), expected)
    assert sum(int(sales) for sales, _ in rows.values()) == len(predictions)


def test_a_second_run_without_pyplot_on_svg_writes_the_same_files(
    evaluation, report, tmp_path, monkeypatch
):
    # Any import of pyplot now fails, at the module's import or in the call; the backend starts
    # elsewhere, so only the call itself can have chosen Agg.
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    matplotlib.rcParams["backend"] = "svg"
    module = importlib.reload(training.report)
    assert matplotlib.get_backend() == "svg", "importing the report chose a backend"
    title = "<script>alert(1)</script> & co"
    again = module.write_report(evaluation, IMPORTANCE, tmp_path, title, "holdout")
    assert matplotlib.get_backend().lower() == "agg"
    for name in ["index.html", *FIGURES]:
        assert (again.parent / name).read_bytes() == (report.parent / name).read_bytes(), name


def test_a_dated_model_s_report_draws_its_market_index(evaluation, tmp_path):
    import datetime as dt

    from valuation.market import MarketIndex

    days = (0.0, 30.0, 60.0)
    market = MarketIndex(
        start=dt.date(2026, 1, 1),
        market_date=dt.date(2026, 3, 2),
        days=days,
        overall=(-0.1, -0.05, 0.0),
        by_category={"美食": (-0.2, -0.1, 0.0), "影视": (0.1, 0.05, 0.0)},
        sales={"美食": 400, "影视": 12},
    )
    page = write_report(evaluation, IMPORTANCE, tmp_path, "t", market=market)
    assert (tmp_path / "market_index.png").read_bytes().startswith(PNG_SIGNATURE)
    text = page.read_text(encoding="utf-8")
    assert 'src="market_index.png"' in text
    assert "1 美食" in text  # the line's key, the figure itself numbered
    assert "not drawn: 影视." in text  # too few dated sales to draw


def test_an_undated_model_s_report_has_no_market_figure(report):
    assert not (report.parent / "market_index.png").exists()
    assert "market_index.png" not in report.read_text(encoding="utf-8")
