"""The Dask engine on a real LocalCluster of two worker processes: batch prices equal the
single-machine path exactly; distributed training evaluates, tracks and registers like it."""

from __future__ import annotations

import pandas as pd
import pytest

from data.simulator import generate
from training.pipeline import train
from valuation.infra.dask_engine import cluster, price_file_dask
from valuation.infra.settings import Settings
from valuation.loading import ExportError, write_table
from valuation.pricing import price_file
from valuation.storage import registry


@pytest.fixture(scope="module")
def dask_client():
    with cluster() as client:
        assert len(client.scheduler_info()["workers"]) == 2
        yield client


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    folder = tmp_path_factory.mktemp("catalogue")
    frame = generate(6000, seed=31, bad_share=0.02).drop(columns=["成交价"])
    write_table(frame, folder / "catalogue.csv")
    return folder / "catalogue.csv"


def test_dask_batch_gives_the_single_machine_prices(
    trained, settings, catalogue, dask_client, tmp_path
):
    valuer = registry.load_valuer(settings)
    single = price_file(valuer, catalogue, tmp_path / "single.csv", chunk_rows=1000)
    spread = price_file_dask(
        valuer, catalogue, tmp_path / "dask.csv", dask_client, blocksize="100KB"
    )

    assert spread.rows == single.rows == 6000
    assert (spread.priced, spread.rejected) == (single.priced, single.rejected)
    assert spread.priced + spread.rejected == spread.rows
    a = pd.read_csv(tmp_path / "single.csv", dtype=str, keep_default_na=False)
    b = pd.read_csv(tmp_path / "dask.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(a, b)
    rejects_a = pd.read_csv(single.rejects, dtype=str, keep_default_na=False)
    rejects_b = pd.read_csv(spread.rejects, dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(rejects_a, rejects_b)  # same lines, columns and reasons


def test_the_catalogue_really_was_split(catalogue):
    from valuation.infra.dask_engine import read_partitions

    frame, _ = read_partitions(catalogue, blocksize="100KB")
    assert frame.npartitions >= 3


def test_a_quoted_line_break_cut_by_the_partitions_is_refused_with_what_to_do(
    trained, settings, dask_client, tmp_path
):
    frame = generate(2000, seed=33, bad_share=0.0).drop(columns=["成交价"])
    frame["备注"] = [f"seller's note {i}\npasted with its line break" for i in range(len(frame))]
    notes = write_table(frame, tmp_path / "notes.csv")
    valuer = registry.load_valuer(settings)
    with pytest.raises(ExportError, match="cut where Dask splits the file.*Parquet"):
        price_file_dask(valuer, notes, tmp_path / "out.csv", dask_client, blocksize="20KB")
    single = price_file(valuer, notes, tmp_path / "single.csv", chunk_rows=500)
    assert (single.priced, single.rejected) == (2000, 0)  # the default engine reads it


def test_dask_batch_to_parquet(trained, settings, catalogue, dask_client, tmp_path):
    valuer = registry.load_valuer(settings)
    outcome = price_file_dask(
        valuer, catalogue, tmp_path / "out.parquet", dask_client, blocksize="100KB"
    )
    written = pd.read_parquet(tmp_path / "out.parquet")
    assert len(written) == outcome.priced
    assert set(written["model_version"]) == {valuer.version}


def test_dask_training_registers_and_evaluates_like_the_single_machine(tmp_path):
    sales = tmp_path / "sales.csv"
    write_table(generate(4000, seed=32, bad_share=0.01), sales)
    local = Settings(home=tmp_path / "local", tracking_uri=None, search_trials=1, cv_folds=2)
    spread = Settings(home=tmp_path / "dask", tracking_uri=None, search_trials=1, cv_folds=2)

    single = train(sales, local)
    distributed = train(sales, spread, engine="dask")

    assert distributed.rows == single.rows and distributed.rejected == single.rejected
    assert distributed.split_by == single.split_by == "time"
    assert registry.registered_version(spread) == distributed.model_version
    # The same market, the same holdout rule: the distributed model is as accurate, near enough.
    model_single = single.metrics["model"]["mdape"]
    model_spread = distributed.metrics["model"]["mdape"]
    assert abs(model_spread - model_single) / model_single < 0.15
    assert model_spread < distributed.metrics["baseline_fans_band"]["mdape"]
    assert 0.7 < distributed.metrics["model"]["interval_coverage"] < 0.9
    client = registry.client(spread)
    run = client.get_run(distributed.run_id)
    assert run.data.params["rows_total"] == "4000"
    assert "model_mdape" in run.data.metrics
    valuer = registry.load_valuer(spread)
    assert valuer.card.engine == "dask"
