"""Training steps for sales beyond one machine, on a Dask cluster.

Parsing, splitting and the point model's fit run on the cluster (LightGBM's own Dask support,
`lightgbm.dask`); the hyperparameter search, the baselines and the calibration of the price
distribution use random samples of at most SAMPLE_ROWS sales collected on the client, which is
plenty for a handful of parameters and a residual distribution. Evaluation, tracking and
registration are the single-machine orchestrator's, unchanged.

Where the single-machine fit uses out-of-fold residuals, this one holds a calibration share of the
training sales out of the distributed point fit and measures the residuals there.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import dask
import dask.dataframe as dd
import lightgbm as lgb
import numpy as np
import pandas as pd

from training import steps
from valuation.encoding import CATEGORICAL, CATEGORY_COLUMN, FEATURE_NAMES, Encoder
from valuation.infra.dask_engine import partition_starts, read_partitions
from valuation.loading import (
    ExportError,
    canonical_headers,
    file_names,
    no_repeats,
    parse_listings,
    repeated_rows,
    repeats_table,
    sale_keys,
)
from valuation.market import MarketIndex
from valuation.schema import CATEGORY, FANS, LISTING_ID, SOLD_AT
from valuation.valuer import Valuer

SAMPLE_ROWS = 200_000
FILE_STRIDE = 1 << 40
"""An export of several files: a listing's index is its file's number times this, plus its line."""
HOLDOUT_ROWS = 1_000_000  # the holdout evaluated on the client, sampled beyond this
LABEL, WEIGHT = "log_price_now", "weight"  # `_taught`'s columns beside the design rows


@dataclass
class DistributedSales:
    train: object
    """The training sales, a Dask DataFrame of canonical typed columns (persisted on the cluster)."""
    split: steps.Split
    """Pandas samples: `train` (for the search and the baselines) and `holdout` (evaluated)."""
    total: int
    rejects: pd.DataFrame
    repeats: pd.DataFrame
    """Rows left out as an earlier row's sale, found across every partition."""
    rows_train: int
    rows_holdout: int
    vocabulary: Encoder
    everything: object
    """Every sale, training and holdout (persisted): the served model is fitted on it."""
    names: list[str] | None = None
    """An export of several files: their names (`FILE_STRIDE`); None for one file."""

    def place(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Rows indexed as the listings are, after their `line` (and `file`, several files)."""
        at = rows.index.to_numpy(dtype=np.int64)
        place = {"line": at % FILE_STRIDE}
        if self.names is not None:
            place = {"file": np.array(self.names)[at // FILE_STRIDE], **place}
        return pd.concat([pd.DataFrame(place), rows.reset_index(drop=True)], axis=1)


def load(client, data, holdout_share: float, seed: int) -> DistributedSales:
    """Parse every partition on the cluster, keep line numbers, leave out repeated sales, split,
    and count. `data`: a file, or several read as one export (each by its own header; a sale
    two files hold is one sale)."""
    files = [Path(f) for f in ([data] if isinstance(data, str | Path) else data)]
    several = len(files) > 1
    frames, lengths, parsed, starts = [], [], [], []
    for number, file in enumerate(files):
        frame, first_line = read_partitions(file)
        try:
            canonical_headers(frame.columns, require_price=True)
        except ExportError as error:
            raise ExportError(f"{file}: {error}" if several else str(error)) from error
        counts, first = partition_starts(frame, first_line, file)
        lengths += counts
        frames.append((frame, first_line))
        for part, start in zip(frame.to_delayed(), first, strict=True):
            parsed.append(dask.delayed(parse_listings)(part, True, start))
            starts.append(number * FILE_STRIDE + start)
    metas = [parse_listings(frame._meta, True, first_line) for frame, first_line in frames]
    columns = _every_column([meta.listings for meta in metas]) if several else metas[0].listings
    listings = dd.from_delayed(  # indexed by file line (and file), unique across partitions
        [
            dask.delayed(_by_line)(p, start, columns if several else None)
            for p, start in zip(parsed, starts, strict=True)
        ],
        meta=columns,
        verify_meta=False,
    )
    listings = client.persist(listings)
    names = file_names(files) if several else None
    if several:
        rejects = _rejects_by_file(parsed, starts, names)
    else:
        rejects = dd.from_delayed(
            [dask.delayed(attrgetter("rejects"))(p) for p in parsed],
            meta=metas[0].rejects,
            verify_meta=False,
        ).compute()
    listings, repeats = _without_repeats(client, listings, names)

    if SOLD_AT.name in listings.columns and listings[SOLD_AT.name].notnull().mean().compute() > 0.5:
        cutoff = listings[SOLD_AT.name].quantile(1 - holdout_share).compute()
        is_holdout = listings[SOLD_AT.name] > cutoff
        train, holdout, by = listings[~is_holdout], listings[is_holdout], "time"
    else:
        train, holdout = listings.random_split(
            [1 - holdout_share, holdout_share], random_state=seed
        )
        by = "random"
    train = client.persist(train)
    rows_train, rows_holdout = (int(n) for n in dask.compute(train.shape[0], holdout.shape[0]))
    holdout_sample = _sample(holdout, rows_holdout, HOLDOUT_ROWS, seed)
    train_sample = _sample(train, rows_train, SAMPLE_ROWS, seed)
    counts = train[CATEGORY.name].value_counts().compute()
    return DistributedSales(
        train=train,
        split=steps.Split(train=train_sample, holdout=holdout_sample, by=by),
        total=sum(lengths),
        rejects=rejects,
        repeats=repeats,
        rows_train=rows_train,
        rows_holdout=rows_holdout,
        vocabulary=Encoder.fit(counts.index.repeat(counts.to_numpy())),
        everything=listings,
        names=names,
    )


def _every_column(metas: list[pd.DataFrame]) -> pd.DataFrame:
    """The columns of every file's listings, each of the type the first file holding it gives
    (a file without dates beside dated ones: its sales undated, NaT)."""
    types: dict[str, object] = {}
    for meta in metas:
        for column in meta.columns:
            types.setdefault(column, meta[column].dtype)
    return pd.DataFrame({column: pd.Series(dtype=kind) for column, kind in types.items()})


def _rejects_by_file(parsed, starts, names: list[str]) -> pd.DataFrame:
    """Several files' rejects, each after its file's name, each file's own columns."""
    tables = dask.compute(*[dask.delayed(attrgetter("rejects"))(p) for p in parsed])
    named = [
        table.assign(file=names[start // FILE_STRIDE])[["file", *table.columns]]
        for table, start in zip(tables, starts, strict=True)
    ]
    return pd.concat(named, ignore_index=True)


def _by_line(parsed, first_line: int, columns: pd.DataFrame | None = None) -> pd.DataFrame:
    """A partition's listings indexed by their file line (a partition's rows are one line each);
    with `columns` (several files, not all of the same columns), in those columns and types."""
    listings = parsed.listings.set_axis(parsed.listings.index + first_line)
    if columns is not None:
        listings = listings.reindex(columns=columns.columns).astype(columns.dtypes.to_dict())
    return listings


def _without_repeats(client, listings, names: list[str] | None = None):
    """Every sale once: the rows that repeat an earlier row's (`sale_keys`) found across the
    partitions (their keys shuffled so that each key's rows meet), left out and listed (with
    their files, `names` for several: `FILE_STRIDE`)."""
    found = no_repeats()
    if LISTING_ID.name in listings.columns:
        keys = listings.map_partitions(sale_keys, meta=sale_keys(listings._meta)).to_frame("key")
        found = (
            keys.shuffle(on="key")
            .map_partitions(lambda part: repeated_rows(part["key"]), meta=found)
            .compute()
            .sort_values("line", ignore_index=True)
        )
    line_of, file_of = (lambda at: at % FILE_STRIDE), None
    if names is not None:
        file_of = lambda at: np.array(names)[at // FILE_STRIDE]  # noqa: E731
    lines = found["line"].to_numpy()
    if not len(lines):
        return listings, repeats_table(listings._meta, found, line_of, file_of)
    meta = listings._meta
    at = listings.map_partitions(lambda part: part[part.index.isin(lines)], meta=meta)
    kept = listings.map_partitions(lambda part: part[~part.index.isin(lines)], meta=meta)
    return client.persist(kept), repeats_table(at.compute(), found, line_of, file_of)


def _sample(frame, rows: int, at_most: int, seed: int, by_line: bool = False) -> pd.DataFrame:
    """At most about `at_most` of `frame`'s `rows`, in memory; `by_line`: indexed by file line."""
    sampled = frame if rows <= at_most else frame.sample(frac=at_most / rows, random_state=seed)
    sampled = sampled.compute()
    return sampled if by_line else sampled.reset_index(drop=True)


def sample_of_everything(sales: DistributedSales, seed: int) -> pd.DataFrame:
    """At most SAMPLE_ROWS of every sale, training and holdout: the served fit's market index
    is read off it."""
    return _sample(sales.everything, sales.rows_train + sales.rows_holdout, SAMPLE_ROWS, seed)


def after_market_date(sales: DistributedSales, index: MarketIndex | None) -> tuple[int, object]:
    """How many sales are dated after the index's market date (mistyped, most likely), and the
    latest date, counted on the cluster."""
    if index is None or SOLD_AT.name not in sales.everything.columns:
        return 0, None
    frame = sales.everything
    meta = steps.after_market_date(frame._meta, index)
    late = frame.map_partitions(steps.after_market_date, index, meta=meta)
    count, latest = dask.compute(late.shape[0], late.max())
    return int(count), latest


def fit(
    client,
    sales: DistributedSales,
    best: steps.Trial,
    seed: int,
    card: dict,
    everything: bool = False,
    index: MarketIndex | None = None,
    folds: int = 5,
) -> tuple[Valuer, pd.DataFrame]:
    """The served valuer and, with `everything` (the served fit), the sales it took for price
    typos (`steps.price_typos`, indexed by file line: every learning sale's, and those of the
    calibration's sample). The point model on the cluster (on the training sales, or with `everything` on all of
    them), taught as `steps.fit` teaches it: each sale restated to the market date by `index`,
    price typos screened out and the others weighted by Huber's weight, against a model fitted
    on a sample of the learning sales (`_screen`), UNKNOWN_CATEGORY_SHARE of them shown with the
    unknown category; then the scale model and the calibration on a sample of the sales it did
    not see (`steps.with_distribution` screens the typos there)."""
    from lightgbm.dask import DaskLGBMRegressor

    encoder = sales.vocabulary
    frame = sales.everything if everything else sales.train
    frame = frame.map_partitions(steps.restated, index, meta=steps.restated(frame._meta, index))
    learn, calibration = frame.random_split(
        [1 - steps.CALIBRATION_SHARE, steps.CALIBRATION_SHARE], random_state=seed
    )
    curve = best.curve  # the search's, fitted on its sample: every booster starts from it
    rows = int(learn.shape[0].compute())
    screen, reach = _screen(_sample(learn, rows, SAMPLE_ROWS, seed), encoder, best, seed, folds)
    meta = _taught(frame._meta, screen, curve, reach, encoder, seed)
    taught = learn.map_partitions(_taught, screen, curve, reach, encoder, seed, meta=meta)
    taught = client.persist(taught)
    screened = rows - int(taught.shape[0].compute())  # the learning sales screened out as typos
    typos = steps.price_typos(frame._meta, np.zeros(0))
    if everything:  # the served fit's typos are listed; found again, as `_taught` found them
        typos = learn.map_partitions(_typos, screen, curve, encoder, meta=typos).compute()
    features = taught[list(FEATURE_NAMES)].to_dask_array(lengths=True)
    label = taught[LABEL].to_dask_array(lengths=True)
    weight = taught[WEIGHT].to_dask_array(lengths=True)
    params = steps.booster_params(best.params, seed)
    model = DaskLGBMRegressor(client=client, n_estimators=best.rounds, **params)
    start = None
    if curve is not None:
        start = features.map_blocks(curve, drop_axis=1, dtype=np.float64)
    model.fit(
        features,
        label,
        sample_weight=weight,
        init_score=start,
        categorical_feature=list(CATEGORICAL),
    )
    point = model.booster_

    calibrating = int(calibration.shape[0].compute())
    held = _sample(calibration, calibrating, SAMPLE_ROWS, seed, by_line=True)
    matrix = encoder.matrix(held)
    estimate = point.predict(matrix) + (0.0 if curve is None else curve(matrix))
    residual = steps.log_price_now(held) - estimate
    rows = sales.rows_train + (sales.rows_holdout if everything else 0)
    card = {**card, "training_rows": rows, "engine": "dask"}
    valuer = steps.with_distribution(point, held, residual, encoder, best, seed, card)
    # The typos of every sale: the learning sales' found on the cluster, the calibration's
    # those of its sample (every calibration sale up to SAMPLE_ROWS), counted as all of them.
    held_typos = steps.price_typos(held, residual)
    among_calibration = round(len(held_typos) * calibrating / max(len(held), 1))
    count = screened + among_calibration
    valuer.card = dataclasses.replace(valuer.card, screened_typos=count)
    return valuer, pd.concat([typos, held_typos]).sort_index() if everything else typos


def _screen(
    sample: pd.DataFrame, encoder: Encoder, best: steps.Trial, seed: int, folds: int
) -> tuple[lgb.Booster, dict]:
    """The model that screens the cluster's sales, and Huber's reach in each fans band: the
    chosen candidate cross-fitted on a sample of the learning sales (out-of-fold residuals give
    the reach and the sample's own weights), then fitted on the sample's screened sales."""
    log_price = steps.log_price_now(sample)
    matrix = encoder.matrix(sample)
    dataset = steps.learning_set(matrix, log_price, best.curve)
    estimate, rounds = steps.cross_fit(dataset, best.params, folds, seed)
    fans = sample[FANS.name].to_numpy()
    reach = steps.huber_reach(log_price - estimate, fans)
    weight = steps.sale_weights(log_price - estimate, fans, reach)
    sale = weight > 0
    screen = lgb.train(
        steps.booster_params(best.params, seed, int(sale.sum())),
        steps.learning_set(matrix[sale], log_price[sale], best.curve, weight[sale]),
        num_boost_round=rounds,
    )
    return screen, reach


def _screened(part, screen, curve, encoder) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A partition's design rows, log price as of the market date, and residual from `screen`."""
    matrix = encoder.matrix(part)
    log_price = steps.log_price_now(part)
    estimate = screen.predict(matrix) if len(part) else np.zeros(0)
    if curve is not None and len(part):
        estimate = estimate + curve(matrix)
    return matrix, log_price, log_price - estimate


def _typos(part, screen, curve, encoder) -> pd.DataFrame:
    """A partition's sales that `_taught` leaves out as price typos (`steps.price_typos`)."""
    return steps.price_typos(part, _screened(part, screen, curve, encoder)[2])


def _taught(part, screen, curve, reach, encoder, seed, partition_info=None) -> pd.DataFrame:
    """A partition's sales as the point model learns from them: the design rows (a random
    UNKNOWN_CATEGORY_SHARE shown with the unknown category, drawn per partition), log price as of
    the market date and Huber's weight; price typos (weight 0) left out."""
    matrix, log_price, residual = _screened(part, screen, curve, encoder)
    weight = steps.sale_weights(residual, part[FANS.name].to_numpy(), reach)
    number = 0 if partition_info is None else partition_info["number"]
    hidden = np.random.default_rng([seed + 2, number]).random(len(part))
    matrix[hidden < steps.UNKNOWN_CATEGORY_SHARE, CATEGORY_COLUMN] = encoder.unknown_code
    taught = pd.DataFrame(matrix, columns=list(FEATURE_NAMES), index=part.index)
    taught[LABEL], taught[WEIGHT] = log_price, weight
    return taught[weight > 0]
