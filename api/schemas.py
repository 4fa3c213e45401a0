"""Request and response models of the API, derived from the listing schema (nothing re-listed)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from valuation.listing import PYTHON_TYPES
from valuation.parsing import parse_listing_id, parse_price, parse_sold_at, parser_for
from valuation.schema import FEATURES, LISTING_ID
from valuation.schema import Field as SchemaField

MAX_BATCH = 10_000
EXAMPLE_LISTING = {field.name: field.examples[0] for field in FEATURES}


def _accepted(field: SchemaField):
    """What the OpenAPI document says a field accepts. The numeric bounds are declared where
    JSON Schema can state them exactly; a spelling's limits are in its description."""
    if field.kind == "count":
        return Annotated[int, Field(ge=0, le=field.maximum)] | str
    if field.kind == "flag":
        return bool | Literal[0, 1] | str
    return str


def _page_hints(field: SchemaField) -> dict:
    """What the quote page builds its form from: `x-label`, `x-kind` (count, flag or text), and a
    flag's `x-choices` (its marketplace words with their English, false first)."""
    hints = {"x-label": field.label, "x-kind": field.kind}
    if field.kind == "flag":
        hints["x-choices"] = [
            {
                "value": field.false_words[0],
                "label": f"{field.false_words[0]} · {field.false_english}",
            },
            {
                "value": field.true_words[0],
                "label": f"{field.true_words[0]} · {field.true_english}",
            },
        ]
    return hints


def _feature(field: SchemaField):
    """A request field that takes the typed value or any marketplace spelling of it."""
    return (
        Annotated[
            PYTHON_TYPES[field.kind],
            BeforeValidator(parser_for(field), json_schema_input_type=_accepted(field)),
            Field(
                description=field.description,
                examples=[EXAMPLE_LISTING[field.name]],
                json_schema_extra=_page_hints(field),
            ),
        ],
        ... if field.default is None else field.default,
    )


ListingIn = create_model(
    "ListingIn",
    __config__=ConfigDict(extra="forbid", json_schema_extra={"examples": [EXAMPLE_LISTING]}),
    **{field.name: _feature(field) for field in FEATURES},
    listing_id=(
        Annotated[
            str | None, BeforeValidator(parse_listing_id, json_schema_input_type=str | int | None)
        ],
        Field(None, description=LISTING_ID.description),
    ),
)
ListingIn.__doc__ = (
    "One listing: canonical field names, values typed or as the marketplace spells them."
)


class ModelRef(BaseModel):
    name: str
    version: str | None


class Step(BaseModel):
    feature: str
    value: Any = Field(description="The listing's value of this feature.")
    factor: float = Field(description="The price is multiplied by this (1.25 = +25%).")
    percent: float
    cny: float = Field(description="CNY added at this step (negative: taken off).")


class Reasons(BaseModel):
    reference_price: float = Field(
        description="The model's price for an average listing, before any of this one's features."
    )
    steps: list[Step] = Field(
        description="Fans, category, then each flag: reference_price plus every step's cny is the "
        "estimate exactly."
    )


ComparableSale = create_model(
    "ComparableSale",
    listing_id=(str | None, ...),
    **{field.name: (PYTHON_TYPES[field.kind], ...) for field in FEATURES},
    price=(float, Field(description="The price it sold for, CNY.")),
    sold_at=(str | None, ...),
    similarity=(float, Field(description="1 for an identical listing, towards 0 with distance.")),
)
ComparableSale.__doc__ = "A past sale like the listing, as a broker would show it."


class Advice(BaseModel):
    feature: str
    to: bool = Field(description="The feature's value after the change.")
    price_estimate: float = Field(description="The changed listing's estimate, CNY.")
    price_low: float
    price_high: float
    change: float = Field(description="CNY gained (or lost) against this listing's estimate.")


class Quote(BaseModel):
    listing_id: str | None = None
    price_estimate: float = Field(description="Estimated sale price, CNY.")
    price_low: float = Field(description="Lower end of the price range, CNY.")
    price_high: float = Field(description="Upper end of the price range, CNY.")
    interval: float = Field(description="Share of sales the range is meant to hold (0.8 = 80%).")
    currency: str
    known_category: bool = Field(description="False when the category was unknown to the model.")
    notes: list[str] = Field(
        description="Plain-language caveats: a category unknown to the model (valued as an "
        "average category), or more fans than any sale the model learned from (the estimate "
        "extends the largest accounts' prices, less sure)."
    )
    confidence: Literal["high", "medium", "low"] = Field(
        description="How sure the model is, from the range's spread whatever the level: "
        "ln(price_high / price_low) over a normal range's width at the same level, under 0.15 "
        "high (an 80% range within about 1.5x), under 0.30 medium (about 2.2x), else low."
    )
    market_date: dt.date | None = Field(
        None,
        description="The model's market date: its latest training sale. None for a model "
        "trained without sale dates (it values at no particular date).",
    )
    as_of: dt.date | None = Field(
        None, description="The date the listing was valued at: `as_of`, or the market date."
    )
    model: ModelRef
    reasons: Reasons | None = Field(None, description="With `explain=true`.")
    comparables: list[ComparableSale] | None = Field(None, description="With `comparables=k`.")
    advice: list[Advice] | None = Field(
        None,
        description="With `advice=true`: each change a seller can make that the market pays "
        "for, and the quote of the listing so changed (equal to /v1/quote of it).",
    )


class QuotesIn(BaseModel):
    listings: list[dict[str, Any]] = Field(
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH:,} listings, each shaped like ListingIn. Each is checked on its "
        "own: one bad listing gets an error entry and does not sink the others.",
        examples=[[EXAMPLE_LISTING, {f.name: f.examples[1] for f in FEATURES}]],
    )


class FieldProblem(BaseModel):
    field: str
    message: str


class QuoteError(BaseModel):
    index: int
    listing_id: str | None = None
    error: Literal["invalid_listing"] = "invalid_listing"
    fields: list[FieldProblem]


class QuotedItem(Quote):
    index: int


class QuotesOut(BaseModel):
    model: ModelRef
    quoted: int
    failed: int
    results: list[QuotedItem | QuoteError] = Field(description="One entry per listing, in order.")


class AppraisalIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"listing": EXAMPLE_LISTING, "asking_price": "¥3,800"}]}
    )
    listing: ListingIn
    asking_price: Annotated[
        float, BeforeValidator(parse_price, json_schema_input_type=float | str)
    ] = Field(description="The price asked, CNY: 3800, `¥3,800`, `3800元` or `0.38万`.")


def _required_listing_id(value: object) -> str:
    listing_id = parse_listing_id(value)
    if listing_id is None:
        raise ValueError("listing_id is missing: a sale is matched to its listing by it")
    return listing_id


class SaleIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"listing_id": "KS-20261125-0042", "price": "¥4,200", "sold_at": "2026-11-24"}
            ]
        },
    )
    listing_id: Annotated[
        str, BeforeValidator(_required_listing_id, json_schema_input_type=str | int)
    ] = Field(description="The listing that sold, as it was quoted.")
    price: Annotated[float, BeforeValidator(parse_price, json_schema_input_type=float | str)] = (
        Field(description="The price it sold for, CNY: 4200, `¥4,200`, `4200元` or `0.42万`.")
    )
    sold_at: Annotated[
        dt.date | None, BeforeValidator(parse_sold_at, json_schema_input_type=str | None)
    ] = Field(None, description="The day of the sale; the day it is reported when left out.")
    listing: ListingIn | None = Field(
        None,
        description="The listing's fields. Needed when no quote of this listing_id is on record; "
        "when given, they are what the sale is recorded with.",
    )


class LiveQuote(BaseModel):
    model: ModelRef
    price_estimate: float
    error_percent: float = Field(description="|estimate - price| / price, in percent.")


class SaleOut(BaseModel):
    listing_id: str
    price: float
    sold_at: dt.date
    quoted: LiveQuote | None = Field(
        description="The listing's last quote before the sale, which live accuracy scores."
    )
    status: Literal["accepted", "suspect"] = Field(
        description="suspect: far outside the listing's price distribution (beyond its 99.9% "
        "range, or 5x or more off the estimate: a typo's shape); stored, but not trained on "
        "until an admin confirms it."
    )
    suspect_because: str | None = Field(None, description="Why it is suspect.")


class SuspectSale(BaseModel):
    id: int
    listing_id: str
    price: float
    sold_at: dt.date | None
    reported_at: dt.datetime
    reported_by: str | None = Field(description="The name of the key that reported it.")
    status: str


class Thresholds(BaseModel):
    below_market_under: float = Field(
        description="The range's lower tail: an asking price under price_low (this quantile of "
        "the distribution, rounded down to the yuan) is below market."
    )
    above_market_over: float = Field(
        description="The range's upper tail: an asking price over price_high (this quantile, "
        "rounded up to the yuan) is above market."
    )


class AppraisalOut(BaseModel):
    asking_price: float
    percentile: float = Field(
        description="Share of comparable sales expected below the asking price."
    )
    verdict: Literal["below_market", "fair", "above_market"]
    deal_rating: Literal["great", "good", "fair", "high", "overpriced"] = Field(
        description="A buyer's view of the asking price, from its percentile: see deal_ratings."
    )
    deal_ratings: dict[str, float] = Field(
        description="Each rating's upper percentile (exclusive): great under 0.1, good under "
        "0.3, fair under 0.7, high under 0.9, overpriced up to 1."
    )
    thresholds: Thresholds
    quote: Quote


class ModelInfo(BaseModel):
    name: str
    version: str | None
    alias: str
    trained_at: str | None
    data: dict[str, Any] = Field(
        description="Rows, SHA-256 and holdout split of the training data."
    )
    holdout_metrics: dict[str, dict[str, float]]
    holdout_by: dict[str, dict[str, dict[str, float]]] = Field(
        description="Where the model is less sure: its holdout MdAPE and count of sales by "
        "`fans_band` and by `category` (categories under 30 holdout sales pooled)."
    )
    market_date: dt.date | None = Field(
        description="Quotes value listings as of this date (the latest sale in the training "
        "data) unless they name an earlier `as_of`; None for a model trained without dates."
    )
    interval: float = Field(description="The default range level.")
    levels: list[float] = Field(description="The range levels a request may ask for, min and max.")
    categories: list[str] = Field(
        description="Categories known to the model; others are valued as unknown."
    )
    promotion: dict[str, str] | None = Field(
        default=None,
        description="The promotion gate's record on this version: `decision` (`promoted`; "
        "`promoted_with_warning`: a first model served though its range missed the gate's "
        "window, its ranges less sure than they say; `promoted_by_hand`) and `reasons`.",
    )


class IndexPointOut(BaseModel):
    month: str = Field(description="YYYY-MM.")
    value: float = Field(description="The listing's price that month, CNY.")
    low: float = Field(description="90% band of the index's own uncertainty, CNY.")
    high: float


class CategoryIndexOut(BaseModel):
    category: str
    market_date: dt.date
    sales: int = Field(description="Dated sales of the category the index is estimated from.")
    listing: dict[str, Any] = Field(
        description="The listing the index values: the market's typical listing (median fans of "
        "the dated sales, each flag at its most common value) in this category."
    )
    index: list[IndexPointOut] = Field(
        description="Month by month, oldest first: the listing's price as of each month's last "
        "day (the market date for the last). Empty when the category has too few sales."
    )
    changes: dict[str, float | None] = Field(
        description='"3m", "12m": relative change of the level to the market date from 3 and 12 '
        "months before (0.05 = +5%); null where the data is shorter or too thin."
    )
    note: str | None = None


class CategoryChangeOut(BaseModel):
    category: str
    sales: int
    changes: dict[str, float | None]


class MarketOut(BaseModel):
    market_date: dt.date
    categories: list[CategoryChangeOut] = Field(
        description="Every category of the model's data, most sales first."
    )


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldProblem] = []


class ErrorOut(BaseModel):
    """The one shape of every error answer."""

    error: ErrorBody


class ReloadOut(BaseModel):
    name: str
    previous_version: str | None = Field(description="Served before; null if none was.")
    version: str = Field(description="Served now.")
    changed: bool


class QuoteOnRecord(BaseModel):
    served_at: dt.datetime
    endpoint: str = Field(description="quote, quotes (a batch's item) or appraisal.")
    model: ModelRef
    price_estimate: float | None
    price_low: float | None
    price_high: float | None


class SaleOnRecord(BaseModel):
    price: float
    sold_at: dt.date | None
    reported_at: dt.datetime
    status: str = Field(description="accepted, suspect, confirmed or rejected.")


class ListingHistory(BaseModel):
    listing_id: str
    quotes: list[QuoteOnRecord] = Field(description="Oldest first (the latest 1,000 at most).")
    sale: SaleOnRecord | None = Field(description="Its latest reported sale, if any.")


CARD_EXAMPLE = "13.13WW\n有违规\n未开通\n已认证\n粉丝数量\n有无违规\n直播权限\n认证状态"


class CardIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"text": CARD_EXAMPLE, "category": "自媒体"}]},
    )
    text: str = Field(
        max_length=2_000,
        description="The listing card as copied from the marketplace's page: its values, then "
        "its labels (粉丝数量, 有无违规, 直播权限, 认证状态), or `label: value` lines in any order.",
    )
    category: str | None = Field(
        None, description="The category (类目), when the card does not say it (the page's heading)."
    )


ListingRead = create_model(
    "ListingRead", **{field.name: (PYTHON_TYPES[field.kind], ...) for field in FEATURES}
)
ListingRead.__doc__ = "The listing as read from the card."


class CardQuote(Quote):
    listing: ListingRead


class AppraisalsIn(BaseModel):
    appraisals: list[dict[str, Any]] = Field(
        max_length=MAX_BATCH,
        description=f"Up to {MAX_BATCH:,} appraisals, each shaped like AppraisalIn (a listing and "
        "its asking price). Each is checked on its own: a bad one gets an error entry and does "
        "not sink the others.",
        examples=[[{"listing": EXAMPLE_LISTING, "asking_price": "¥3,800"}]],
    )


class AppraisedItem(BaseModel):
    index: int
    asking_price: float
    percentile: float
    verdict: Literal["below_market", "fair", "above_market"]
    deal_rating: Literal["great", "good", "fair", "high", "overpriced"]
    quote: Quote


class AppraisalsOut(BaseModel):
    model: ModelRef
    appraised: int
    failed: int
    deal_ratings: dict[str, float] = Field(description="Each rating's upper percentile.")
    results: list[AppraisedItem | QuoteError] = Field(
        description="One entry per appraisal, in order."
    )
