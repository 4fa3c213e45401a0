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

from dataclasses import dataclass
from operator import attrgetter

import numpy as np
import pandas as pd

from training import steps
from valuation.encoding import CATEGORICAL, FEATURE_NAMES, Encoder
from valuation.infra.dask_engine import partition_starts, read_partitions
from valuation.loading import canonical_headers, parse_listings
from valuation.schema import CATEGORY, PRICE, SOLD_AT
from valuation.valuer import Valuer

SAMPLE_ROWS = 200_000
HOLDOUT_ROWS = 1_000_000  # the holdout evaluated on the client, sampled beyond this


@dataclass
class DistributedSales:
    train: object
    """The training sales, a Dask DataFrame of canonical typed columns (persisted on the cluster)."""
    split: steps.Split
    """Pandas samples: `train` (for the search and the baselines) and `holdout` (evaluated)."""
    total: int
    rejects: pd.DataFrame
    rows_train: int
    rows_holdout: int
    vocabulary: Encoder
    everything: object
    """Every sale, training and holdout (persisted): the served model is fitted on it."""


def load(client, data, holdout_share: float, seed: int) -> DistributedSales:
    """Parse every partition on the cluster, keep line numbers, split, and count."""
    import dask
    import dask.dataframe as dd

    frame, first_line = read_partitions(data)
    canonical_headers(frame.columns, require_price=True)
    lengths, starts = partition_starts(frame, first_line, data)
    parsed = [
        dask.delayed(parse_listings)(part, True, start)
        for part, start in zip(frame.to_delayed(), starts, strict=True)
    ]
    meta = parse_listings(frame._meta, True, first_line)
    listings = dd.from_delayed(
        [dask.delayed(attrgetter("listings"))(p) for p in parsed],
        meta=meta.listings,
        verify_meta=False,
    )
    rejects = dd.from_delayed(
        [dask.delayed(attrgetter("rejects"))(p) for p in parsed],
        meta=meta.rejects,
        verify_meta=False,
    )
    listings = client.persist(listings)
    rejects = rejects.compute()

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
        rows_train=rows_train,
        rows_holdout=rows_holdout,
        vocabulary=Encoder.fit(counts.index.repeat(counts.to_numpy())),
        everything=listings,
    )


def _sample(frame, rows: int, at_most: int, seed: int) -> pd.DataFrame:
    sampled = frame if rows <= at_most else frame.sample(frac=at_most / rows, random_state=seed)
    return sampled.compute().reset_index(drop=True)


def fit(
    client, sales: DistributedSales, best: steps.Trial, seed: int, card: dict, everything=False
) -> Valuer:
    """The point model on the cluster (on the training sales, or with `everything` on all of
    them); the scale model and the calibration on a sample of the sales it did not see, price
    typos screened out as in `steps.fit`."""
    from lightgbm.dask import DaskLGBMRegressor

    encoder = sales.vocabulary
    frame = sales.everything if everything else sales.train
    learn, calibration = frame.random_split(
        [1 - steps.CALIBRATION_SHARE, steps.CALIBRATION_SHARE], random_state=seed
    )

    def design(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(encoder.matrix(frame), columns=list(FEATURE_NAMES), index=frame.index)

    meta = design(sales.split.train.iloc[:0])
    features = learn.map_partitions(design, meta=meta).to_dask_array(lengths=True)
    label = np.log(learn[PRICE.name]).to_dask_array(lengths=True)
    params = steps.booster_params(best.params, seed)
    model = DaskLGBMRegressor(client=client, n_estimators=best.rounds, **params)
    curve = best.curve  # the search's, fitted on its sample: the booster starts from it too
    start = None
    if curve is not None:
        start = features.map_blocks(curve, drop_axis=1, dtype=np.float64)
    model.fit(features, label, init_score=start, categorical_feature=list(CATEGORICAL))
    point = model.booster_

    rows = int(calibration.shape[0].compute())
    held = _sample(calibration, rows, SAMPLE_ROWS, seed)
    matrix = encoder.matrix(held)
    estimate = point.predict(matrix) + (0.0 if curve is None else curve(matrix))
    residual = np.log(held[PRICE.name].to_numpy()) - estimate
    rows = sales.rows_train + (sales.rows_holdout if everything else 0)
    card = {**card, "training_rows": rows, "engine": "dask"}
    return steps.with_distribution(point, held, residual, encoder, best, seed, card)
