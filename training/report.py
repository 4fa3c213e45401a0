"""The holdout report: one self-contained HTML page and five PNG figures that show how far the
model's prices and ranges can be trusted, next to the two baselines, in words a broker can follow."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from training.evaluation import MIN_GROUP_SALES, accuracy_by
from training.steps import COVERAGE_TOLERANCE, Evaluation, calibrates
from valuation.infra.settings import Settings
from valuation.market import MarketIndex
from valuation.schema import FANS, PRICE
from valuation.storage import registry
from valuation.trends import MIN_INDEX_SALES, changes
from valuation.valuer import BAND_NAMES, DEFAULT_LEVEL, FANS_BANDS, fans_band

HOLDOUT_FILE = "holdout.parquet"
"""The holdout's predictions on each training run (MLflow artifact `evaluation/`): the report's
data, so a version's report can be written again."""
REPORT_TITLE = "How far can these valuations be trusted?"
LABELS = {
    "model": "This model",
    "baseline_fans_band": "Baseline: fans-band median",
    "baseline_linear": "Baseline: log-linear",
}
# (key, header, higher is better, as a percentage)
COLUMNS = (
    ("mdape", "MdAPE", False, True),
    ("mape", "MAPE", False, True),
    ("rmsle", "RMSLE", False, False),
    ("within_10pct", "Within 10%", True, True),
    ("within_20pct", "Within 20%", True, True),
)
# file -> (heading, how to read it)
FIGURES = {
    "predicted_vs_actual.png": (
        "Estimates against real sale prices",
        "Each dot is one holdout sale: its real price across, the model's estimate up. Dots on the "
        "diagonal were priced exactly; the dashed lines mark 20% too high or too low. A cloud tight "
        "around the diagonal at every price level means the estimates hold for cheap and expensive "
        "accounts alike.",
    ),
    "error_by_band.png": (
        "Typical error by account size",
        "The typical error (median absolute percentage error, MdAPE) for accounts of each size, "
        "for this model and the two simple baselines. Lower is better: 15% means half of the "
        "estimates were within 15% of the real sale price.",
    ),
    "coverage_by_band.png": (
        "Does the price range keep its promise?",
        f"How often the real price fell inside the quoted range, per account size. The range "
        f"promises {DEFAULT_LEVEL:.0%} (the line); a bar inside the shaded strip keeps that promise. "
        "Above it the ranges are wider than needed, below it too narrow. Each bar says how many "
        "sales it is measured on: a band with few sales swings by chance.",
    ),
    "residuals_vs_fans.png": (
        "Over- and underpricing by account size",
        "How far each real price was above (positive) or below (negative) the estimate, against "
        "the account's fans. +0.1 is about 10% above, +0.69 twice the estimate. The red line is "
        "the running median: it should stay near zero, so that no size of account is "
        "systematically over- or underpriced.",
    ),
    "feature_importance.png": (
        "What the model relies on",
        "Each listing detail's share of the trees' total gain (how much its splits improved the "
        "fit). It shows how much a detail matters, not in which direction it moves the price. "
        "The price curve the trees start from (most of the fans effect, each category's level) "
        "is not in these splits: a quote's reasons count it, under fans and category.",
    ),
}


MARKET_FIGURE = (
    "market_index.png",
    "Prices over time, by category",
    "How each category's prices moved, as a share of their level on the market date (the latest "
    "sale), for the market's typical listing (median fans, the most common flags; where the "
    "market's shape moved, that listing's part of it too): -20% a year before means the same "
    "account sold for 20% less then. Estimated from the "
    "dated sales (see the README's market date section); quotes value listings at the market "
    f"date. Categories with fewer than {MIN_INDEX_SALES} dated sales are not drawn: ",
)


def write_report(
    evaluation: Evaluation,
    importance: dict[str, float],
    out: Path,
    title: str,
    subtitle: str = "",
    market: MarketIndex | None = None,
) -> Path:
    """Writes out/index.html plus PNG figures beside it (the market index's too, for a model
    trained on dated sales); returns the index.html path."""
    matplotlib.use("Agg")  # a training run is headless: never reach for a GUI backend
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    predictions = evaluation.predictions
    names = ["model", *(name for name in evaluation.metrics if name != "model")]
    by_band = _by_band(predictions, {name: _column(name) for name in names})
    _predicted_vs_actual(predictions).savefig(out / "predicted_vs_actual.png")
    _error_by_band(by_band, names).savefig(out / "error_by_band.png")
    _coverage_by_band(by_band).savefig(out / "coverage_by_band.png")
    _residuals_vs_fans(predictions).savefig(out / "residuals_vs_fans.png")
    _feature_importance(importance).savefig(out / "feature_importance.png")
    figures = dict(FIGURES)
    if market is not None:
        figure, drawn, thin = _market_index(market)
        figure.savefig(out / MARKET_FIGURE[0])
        file, heading, text = MARKET_FIGURE
        key = "; ".join(
            f"{n} {c} ({_percent(_or_nan(changes(market, c)['12m']))} over 12 months)"
            for n, c in enumerate(drawn, 1)
        )
        figures[file] = (heading, f"{text}{'、'.join(thin) or 'none'}. Lines: {key or 'none'}.")
    index = out / "index.html"
    index.write_text(_page(evaluation, names, by_band, title, subtitle, figures), encoding="utf-8")
    return index


def _column(name: str) -> str:
    return "price_estimate" if name == "model" else name


def _by_band(predictions: pd.DataFrame, estimates: dict[str, str]) -> pd.DataFrame:
    """Per fans band: sales, MdAPE of each estimate, range coverage and median range width. The
    coverage counts the sales the headline's does: those of a price typo's shape are set aside as
    in the calibration (`calibrates`)."""
    actual = predictions[PRICE.name].to_numpy(dtype=float)
    fans = predictions[FANS.name].to_numpy(dtype=float)
    bands = fans_band(fans)
    counted = calibrates(np.log(actual / predictions["price_estimate"].to_numpy(dtype=float)), fans)
    rows = []
    for band in range(len(FANS_BANDS) + 1):
        held = bands == band
        row = {"sales": int(held.sum())}
        for name, column in estimates.items():
            estimate = predictions[column].to_numpy(dtype=float)[held]
            row[name] = _median(np.abs(estimate - actual[held]) / actual[held])
        low = predictions["price_low"].to_numpy(dtype=float)[held]
        high = predictions["price_high"].to_numpy(dtype=float)[held]
        inside = ((actual[held] >= low) & (actual[held] <= high))[counted[held]]
        row["coverage"] = float(inside.mean()) if inside.size else np.nan
        row["counted"] = int(inside.size)
        row["width"] = _median((high - low) / predictions["price_estimate"].to_numpy()[held])
        rows.append(row)
    return pd.DataFrame(rows)


def _median(values: np.ndarray) -> float:
    return float(np.median(values)) if len(values) else np.nan


def _short_count(count: int) -> str:
    return f"{count // 1_000_000}M" if count >= 1_000_000 else f"{count // 1_000}k"


# Figures carry ASCII band names only: the machine drawing them may have no CJK font.
EDGES = [_short_count(edge) for edge in FANS_BANDS]
FIGURE_BANDS = [f"<{EDGES[0]}"] + [f"{a}-{b}" for a, b in zip(EDGES, EDGES[1:])] + [f"{EDGES[-1]}+"]


def _figure(title: str, xlabel: str, ylabel: str):
    figure = Figure(figsize=(7.5, 4.6), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    axes.set(title=title, xlabel=xlabel, ylabel=ylabel)
    axes.grid(alpha=0.3)
    return figure, axes


def _predicted_vs_actual(predictions: pd.DataFrame) -> Figure:
    figure, axes = _figure("Estimate vs actual sale price", "Actual price (CNY)", "Estimate (CNY)")
    actual, estimate = predictions[PRICE.name], predictions["price_estimate"]
    axes.scatter(actual, estimate, s=8, alpha=0.4, label="holdout sale")
    span = np.array([min(actual.min(), estimate.min()), max(actual.max(), estimate.max())])
    axes.plot(span, span, color="black", label="estimate = actual")
    for factor in (0.8, 1.2):
        axes.plot(span, span * factor, color="gray", linestyle="--", linewidth=0.8)
    axes.set(xscale="log", yscale="log")
    axes.legend()
    return figure


def _error_by_band(by_band: pd.DataFrame, names: list[str]) -> Figure:
    figure, axes = _figure("Typical error by account size", "Fans", "MdAPE (lower is better)")
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        x = np.arange(len(by_band)) + (i - (len(names) - 1) / 2) * width
        axes.bar(x, by_band[name], width, label=LABELS.get(name, name))
    axes.set_xticks(np.arange(len(by_band)), FIGURE_BANDS)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    figure.legend(loc="outside lower center", ncols=len(names))  # bars would hide an inner one
    return figure


def _coverage_by_band(by_band: pd.DataFrame) -> Figure:
    figure, axes = _figure(
        f"Share of sales inside the {DEFAULT_LEVEL:.0%} range", "Fans", "Sales inside the range"
    )
    x = np.arange(len(by_band))
    axes.axhspan(
        DEFAULT_LEVEL - COVERAGE_TOLERANCE,
        DEFAULT_LEVEL + COVERAGE_TOLERANCE,
        color="green",
        alpha=0.15,
        label=f"on target (±{COVERAGE_TOLERANCE:.0%})",
    )
    axes.axhline(DEFAULT_LEVEL, color="green", label=f"promised {DEFAULT_LEVEL:.0%}")
    axes.bar(x, by_band["coverage"].fillna(0), 0.6, label="holdout coverage")
    for i, (coverage, sales) in enumerate(zip(by_band["coverage"], by_band["counted"])):
        text = f"{coverage:.0%} of {sales}" if sales else "no sales"
        axes.annotate(text, (i, 0 if sales == 0 else coverage), ha="center", va="bottom")
    axes.set_xticks(x, FIGURE_BANDS)
    axes.set_ylim(0, 1.08)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    figure.legend(loc="outside lower center", ncols=3)
    return figure


def _residuals_vs_fans(predictions: pd.DataFrame) -> Figure:
    figure, axes = _figure("Over- and underpricing by fans", "Fans", "ln(actual / estimate)")
    ordered = predictions.sort_values(FANS.name, kind="stable")
    residual = np.log(ordered[PRICE.name] / ordered["price_estimate"])
    axes.scatter(ordered[FANS.name], residual, s=8, alpha=0.4, label="holdout sale")
    window = max(15, len(ordered) // 15)  # steady enough to read, narrow enough to show a trend
    running = residual.rolling(window, center=True, min_periods=window // 2).median()
    axes.plot(ordered[FANS.name], running, color="red", label=f"running median ({window} sales)")
    axes.axhline(0, color="black", linewidth=1)
    axes.set_xscale("log")
    axes.legend()
    return figure


def _feature_importance(importance: dict[str, float]) -> Figure:
    figure, axes = _figure("What the model relies on", "Share of total gain", "")
    ranked = sorted(importance.items(), key=lambda item: item[1])
    total = sum(gain for _, gain in ranked) or 1.0  # a model without splits: all bars zero
    shares = [gain / total for _, gain in ranked]
    axes.barh([name for name, _ in ranked], shares)
    for i, share in enumerate(shares):
        axes.annotate(f" {share:.1%}", (share, i), va="center")
    axes.xaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_xlim(0, max(shares, default=0) * 1.15 or 1)
    return figure


def _market_index(market: MarketIndex) -> tuple[Figure, list[str], list[str]]:
    figure, axes = _figure("Prices over time, by category", "Month", "Price vs the market date")
    days = pd.Timestamp(market.start) + pd.to_timedelta(np.asarray(market.days), unit="D")
    drawn = sorted(
        (c for c, n in market.sales.items() if n >= MIN_INDEX_SALES),
        key=lambda c: -market.sales[c],
    )
    for number, category in enumerate(drawn, 1):  # numbered: the figure's font may lack CJK
        axes.plot(days, np.expm1(market.path(category)), label=str(number))
    axes.axhline(0.0, color="#888", linewidth=0.8)
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    if drawn:
        figure.legend(loc="outside right center", fontsize=8, title="category")
    return figure, drawn, sorted(c for c in market.sales if c not in drawn)


def _or_nan(value: float | None) -> float:
    return np.nan if value is None else value


def _percent(value: float) -> str:
    return "—" if np.isnan(value) else f"{value:.1%}"


def _comparison(metrics: dict[str, dict[str, float]], names: list[str]) -> str:
    header = "".join(f"<th>{html.escape(head)}</th>" for _, head, _, _ in COLUMNS)
    best = {
        key: (max if higher else min)(metrics[name][key] for name in names)
        for key, _, higher, _ in COLUMNS
    }
    rows = []
    for name in names:
        cells = ""
        for key, _, _, as_percent in COLUMNS:
            value = metrics[name][key]
            text = _percent(value) if as_percent else f"{value:.3f}"
            cells += (
                f"<td><strong>{text}</strong></td>" if value == best[key] else f"<td>{text}</td>"
            )
        rows.append(f'<tr><th scope="row">{html.escape(LABELS.get(name, name))}</th>{cells}</tr>')
    return f'<table id="comparison"><tr><th></th>{header}</tr>{"".join(rows)}</table>'


def _bands(by_band: pd.DataFrame) -> str:
    rows = []
    for band, row in by_band.iterrows():
        name = html.escape(f"{BAND_NAMES[band]} ({FIGURE_BANDS[band]} fans)")
        cells = [_percent(row[column]) for column in ("model", "coverage", "width")]
        cells = "".join(f"<td>{cell}</td>" for cell in [str(int(row["sales"])), *cells])
        rows.append(f'<tr><th scope="row">{name}</th>{cells}</tr>')
    header = "<th>Fans</th><th>Sales</th><th>Model MdAPE</th><th>Inside the range</th>"
    header += "<th>Median range width (% of estimate)</th>"
    return f'<table id="by-band"><tr>{header}</tr>{"".join(rows)}</table>'


def _categories(evaluation: Evaluation) -> str:
    rows = [
        f'<tr><th scope="row">{html.escape(name)}</th><td>{group["sales"]:.0f}</td>'
        f"<td>{_percent(group['mdape'])}</td></tr>"
        for name, group in accuracy_by(evaluation.predictions)["category"].items()
    ]
    header = "<th>Category</th><th>Sales</th><th>Model MdAPE</th>"
    return f'<table id="by-category"><tr>{header}</tr>{"".join(rows)}</table>'


STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#222;line-height:1.5}table{border-collapse:collapse;margin:1rem 0}th,td{padding:.3rem .7rem;
border-bottom:1px solid #ddd;text-align:right}th[scope=row]{text-align:left}.note{background:#f4f6f8;
padding:.7rem 1rem;border-left:4px solid #4a7}img{max-width:100%}figure{margin:2rem 0}"""


def _page(evaluation: Evaluation, names, by_band, title: str, subtitle: str, figures) -> str:
    sales = len(evaluation.predictions)
    coverage = evaluation.metrics["model"]["interval_coverage"]
    aside = int(evaluation.metrics["model"].get("typo_shaped", 0))
    aside = f" ({aside} of a price typo's shape set aside, as in the calibration)" if aside else ""
    level = f"{DEFAULT_LEVEL:.0%}"
    figures = "".join(
        f'<figure><h3>{html.escape(heading)}</h3><img src="{file}" alt="{html.escape(heading)}">'
        f"<figcaption>{html.escape(text)}</figcaption></figure>"
        for file, (heading, text) in figures.items()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{html.escape(title)}</h1>
{f"<p>{html.escape(subtitle)}</p>" if subtitle else ""}
<p class="note">Every figure here comes from {sales} holdout sales the model did not train on: it
priced them as it would price a new listing, and is judged against what they really sold for.</p>
<h2>Accuracy against simple baselines</h2>
<p>MdAPE is the typical error (half the estimates are closer); MAPE the average error; RMSLE the
error on a log scale (lower is better for all three). "Within 10%" and "within 20%" are the shares
of sales priced that close. The best value in each column is in bold. The fans-band median prices
an account at the median sale of accounts with similar fans; the log-linear baseline is a straight
line through log fans and the three yes/no details. A model worth using beats both.</p>
{_comparison(evaluation.metrics, names)}
<h2>The {level} price range</h2>
<p id="coverage">The {level} range held <strong>{coverage:.1%}</strong> of the holdout
sales{aside} (promised: {level}). Per account size: the sales, the typical error, how often the range held
the real price, and how wide the range typically is (high minus low, as a share of the estimate).
A range is useful when it keeps its promise and is narrow.</p>
{_bands(by_band)}
<h2>By category</h2>
<p>The typical error per category (those with fewer than {MIN_GROUP_SALES} holdout sales
together): where the model is less sure.</p>
{_categories(evaluation)}
<h2>Figures</h2>
{figures}
</body></html>
"""


def log_evaluation(evaluation: Evaluation, valuer, subtitle: str) -> None:
    """The holdout predictions (the report's data) and the HTML report itself, on the run."""
    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        predictions = Path(scratch) / HOLDOUT_FILE
        evaluation.predictions.to_parquet(predictions, index=False)
        mlflow.log_artifact(str(predictions), "evaluation")
        page = write_report(
            evaluation,
            importance(valuer),
            Path(scratch) / "report",
            REPORT_TITLE,
            subtitle,
            valuer.market,
        )
        mlflow.log_artifacts(str(page.parent), "report")


def importance(valuer) -> dict[str, float]:
    point = valuer.boosters["point"]
    return dict(zip(point.feature_name(), point.feature_importance("gain").tolist(), strict=True))


def report(settings: Settings, out: Path, version: str | None = None) -> Path:
    """Rewrites a registered version's holdout report (the champion's by default) into `out`."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = registry.client(settings)
    version = version or registry.registered_version(settings)
    if version is None:
        raise registry.NoModel(f"no {settings.model_name}@{settings.model_alias} to report on")
    run_id = client.get_model_version(settings.model_name, version).run_id
    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            local = mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=f"evaluation/{HOLDOUT_FILE}", dst_path=scratch
            )
        except MlflowException as error:
            raise registry.NoModel(
                f"version {version} has no holdout predictions on record (trained before reports "
                "were kept): train a new version to get its report"
            ) from error
        predictions = pd.read_parquet(local)
    valuer = registry.load_valuer(settings, version=version)
    evaluation = Evaluation(metrics=valuer.card.holdout_metrics, predictions=predictions)
    subtitle = f"{settings.model_name} version {version}, trained on {_data_name(run.data.params)}"
    return write_report(evaluation, importance(valuer), out, REPORT_TITLE, subtitle, valuer.market)


def _data_name(params: dict) -> str:
    """The data a run trained on: its name (runs since exports of several files), or its file's."""
    return params.get("data_name") or Path(params["data_path"]).name
