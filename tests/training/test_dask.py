"""The Dask engine on a real LocalCluster of two worker processes: batch prices equal the
single-machine path exactly; distributed training evaluates, tracks and registers like it."""

from __future__ import annotations

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest

from data.simulator import generate, simulate_sales, true_quantiles
from training import steps
from training.pipeline import train
from valuation.infra.dask_engine import cluster, price_file_dask
from valuation.infra.settings import Settings
from valuation.loading import ExportError, export_files, load_exports, load_listings, write_table
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
    export = generate(4000, seed=32, bad_share=0.01)
    written = pd.concat([export, export.iloc[::200]])  # 20 sales written twice
    write_table(written, sales)
    local = Settings(home=tmp_path / "local", tracking_uri=None, search_trials=1, cv_folds=2)
    spread = Settings(home=tmp_path / "dask", tracking_uri=None, search_trials=1, cv_folds=2)

    single = train(sales, local)
    distributed = train(sales, spread, engine="dask")

    assert distributed.rows == single.rows and distributed.rejected == single.rejected
    assert distributed.repeated == single.repeated == 20
    repeats = [pd.read_csv(outcome.repeats_file) for outcome in (single, distributed)]
    pd.testing.assert_frame_equal(*repeats)
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
    assert run.data.params["rows_total"] == "4020"
    assert run.data.params["rows_repeated"] == "20"
    assert "model_mdape" in run.data.metrics
    # Both list the price typos by the file's line, mostly the same ones (each screens with a
    # model of its own), each line the row it names.
    ids = {"listing_id": str}
    listed = [pd.read_csv(o.typos_file, dtype=ids) for o in (single, distributed)]
    assert distributed.typos == len(listed[1]) > 0 and single.typos == len(listed[0])
    both = set(listed[0]["line"]) & set(listed[1]["line"])
    assert len(both) >= 0.8 * max(len(listed[0]), len(listed[1]))
    for table in listed:
        assert list(written["账号ID"].iloc[table["line"] - 2]) == list(table["listing_id"])
    valuer = registry.load_valuer(spread)
    assert valuer.card.engine == "dask"
    # Dated sales are restated to the market date as on one machine: the same index, read off
    # the client's sample (here every sale).
    local_market = registry.load_valuer(local).card.market
    assert valuer.card.market is not None and local_market is not None
    assert valuer.card.market.market_date == local_market.market_date


ENGLISH = {
    "账号ID": "listing_id",
    "粉丝数量": "fans",
    "有无违规": "violations",
    "直播权限": "live_permission",
    "认证状态": "verified",
    "类目": "category",
    "成交价": "price",
    "成交日期": "sold_at",
}


def test_dask_reads_several_files_as_one_machine_does(dask_client, tmp_path):
    """January's export in the market's headers, February's in English, overlapping by 100
    sales, and March's without ids or dates: the cluster reads the same sales as one machine,
    and lists the same rejects and repeats by file and line."""
    from training import distributed

    export = generate(3000, seed=36, bad_share=0.01)
    folder = tmp_path / "exports"
    folder.mkdir()
    write_table(export.iloc[:1600], folder / "2026-01.csv")
    write_table(export.iloc[1500:].rename(columns=ENGLISH), folder / "2026-02.csv")
    march = generate(200, seed=37, bad_share=0.0).drop(columns=["账号ID", "成交日期"])
    write_table(march, folder / "2026-03.csv")
    files = export_files(folder)

    sales = distributed.load(dask_client, files, 0.2, seed=0)
    single = load_exports(files, require_price=True, drop_repeats=True)
    assert sales.total == single.total == 3300
    assert sales.rows_train + sales.rows_holdout == len(single.listings)
    assert len(sales.repeats) == len(single.repeats) > 90
    pd.testing.assert_frame_equal(sales.repeats, single.repeats, check_dtype=False)
    on_lines = [t[["file", "line", "column"]] for t in (sales.rejects, single.rejects)]
    pd.testing.assert_frame_equal(*on_lines)
    assert {"2026-01.csv", "2026-02.csv"} <= set(on_lines[0]["file"])
    # Every sale in its place: the file and line one machine gives it.
    everything = sales.everything.compute()
    placed = sales.place(everything[["fans"]])
    theirs = single.place(single.listings.index.to_numpy())
    assert sorted(zip(placed["file"], placed["line"])) == sorted(
        zip(theirs["file"], theirs["line"])
    )
    assert everything["sold_at"].isna().sum() == 200  # March's sales, undated


def test_dask_training_restates_dated_sales_and_learns_without_the_typos(dask_client):
    """The point model on the cluster learns as `steps.fit` teaches it: each sale at the market
    date's level, price typos left out, the others by Huber's weight, a share of them shown
    with the unknown category."""
    from training import distributed

    sales = simulate_sales(6000, seed=34)
    sales.loc[sales.index[::40], "price"] *= 10  # 2.5% typos, each an extra zero
    # Every sale trains: the market date is the latest sale's, where the truth below is read.
    train, holdout = sales, sales.iloc[:0]
    encoder = steps.vocabulary(train)
    index = steps.market_index(train, encoder, folds=2, seed=0)
    restated = steps.restated(train, index)
    best = steps.search(restated, encoder, trials=1, folds=2, seed=0)[0]
    spread = distributed.DistributedSales(
        train=dd.from_pandas(train, npartitions=3),
        split=steps.Split(restated, holdout, "time"),
        total=len(sales),
        rejects=pd.DataFrame(),
        repeats=pd.DataFrame(),
        rows_train=len(train),
        rows_holdout=len(holdout),
        vocabulary=encoder,
        everything=dd.from_pandas(sales, npartitions=3),
    )
    valuer, listed = distributed.fit(dask_client, spread, best, 0, {}, True, index, folds=2)
    single, single_listed = steps.fit_with_typos(restated, encoder, best, 0, {}, folds=2)
    # Every sale's typos are counted (the learning sales' on the cluster), as on one machine,
    # and listed: the sales put in among them, each with the estimate it was measured against.
    planted = sales.index[::40]
    assert valuer.card.screened_typos >= 0.9 * len(planted)
    assert abs(valuer.card.screened_typos / single.card.screened_typos - 1) < 0.15
    assert len(listed) == valuer.card.screened_typos  # the calibration is its own sample here
    assert planted.isin(listed.index).mean() > 0.9
    assert listed.index.isin(single_listed.index).mean() > 0.8
    assert (listed["price"] == sales.loc[listed.index, "price"]).all()
    far = np.abs(np.log(listed["price"] / listed["estimate"]))
    assert (far > steps.TYPO_LOG - 0.01).all()
    # (both rounded: the estimate to the yuan, 25 for the cheapest; the ratio to 0.01)
    ratio = listed["price"] / listed["estimate"]
    assert np.allclose(listed["ratio"], ratio, rtol=0.03, atol=0.006)

    listings = simulate_sales(3000, seed=35, at_end=True)
    ours = valuer.value_frame(listings)["price_estimate"].to_numpy()
    theirs = single.value_frame(listings)["price_estimate"].to_numpy()
    truth = true_quantiles(listings)[0.5]
    assert np.median(np.abs(np.log(ours / theirs))) < 0.05
    # Learning from extra zeros would lift every estimate; restating to the market date lifts
    # the categories that rose (汽车 +20% a year) to today's level.
    assert abs(np.median(np.log(ours / truth))) < 0.03
    rising = (listings["category"] == "汽车").to_numpy()
    assert abs(np.median(np.log(ours[rising] / truth[rising]))) < 0.06
    unseen = valuer.value_frame(listings.assign(category="新类目"))["price_estimate"].to_numpy()
    assert np.median(np.abs(np.log(unseen / ours))) < 0.25  # an average category, near enough

    # What one partition teaches: the typos left out, the unknown category's share shown.
    screen, reach = distributed._screen(restated, encoder, best, 0, folds=2)
    taught = distributed._taught(restated, screen, best.curve, reach, encoder, 0)
    typos = sales.index[::40]
    assert typos.isin(taught.index).mean() < 0.05
    # (the simulator's own 1.5% typos go too)
    assert sales.index.drop(typos).isin(taught.index).mean() > 0.97
    shown_unknown = taught["category"] == encoder.unknown_code
    assert 0.03 < shown_unknown.mean() < 0.07
    assert (taught["weight"] <= 1.0).all() and (taught["weight"] < 1.0).any()


@pytest.mark.parametrize("suffix", [".xlsx", ".xls"])
def test_the_dask_engine_sends_an_excel_workbook_to_the_local_one(tmp_path, suffix):
    from valuation.infra.dask_engine import read_partitions

    workbook = tmp_path / f"sales{suffix}"
    pd.DataFrame({"粉丝数量": ["13.13W"]}).to_excel(tmp_path / "sales.xlsx", index=False)
    (tmp_path / "sales.xlsx").rename(workbook)
    with pytest.raises(ExportError, match="Excel workbooks are read by the local engine"):
        read_partitions(workbook)


def test_repeated_sales_are_found_across_partitions_as_on_one_machine(dask_client, tmp_path):
    from training import distributed

    export = generate(600, seed=36, bad_share=0.02)
    again = export.sample(60, random_state=1)  # written again, in another order
    path = write_table(pd.concat([export, again, export.iloc[:5]]), tmp_path / "sales.csv")
    loaded = load_listings(path, require_price=True, drop_repeats=True)
    assert len(loaded.repeats) == 65
    # The same rows on the cluster, indexed by line as `distributed.load` indexes them, in
    # partitions that cut the file's repeats from the rows they repeat.
    whole = load_listings(path, require_price=True)
    by_line = whole.listings.set_axis(whole.listings.index + 2)
    listings = dd.from_pandas(by_line, npartitions=4)
    kept, repeats = distributed._without_repeats(dask_client, listings)
    pd.testing.assert_frame_equal(repeats, loaded.repeats, check_dtype=False)  # Dask: strings
    kept = kept.compute()
    assert len(kept) == len(loaded.listings)
    assert (kept.index - 2).tolist() == loaded.listings.index.tolist()


def test_dask_batch_skips_a_title_above_the_table_as_one_machine_does(
    trained, settings, dask_client, tmp_path
):
    """A sheet with a title row and a blank line, saved by a spreadsheet as GB18030 CSV."""
    frame = generate(3000, seed=37, bad_share=0.02).drop(columns=["成交价"])
    body = frame.to_csv(index=False)
    titled = tmp_path / "titled.csv"
    titled.write_bytes(("快手账号出售清单,,,,,,\n\n" + body).encode("gb18030"))
    valuer = registry.load_valuer(settings)
    single = price_file(valuer, titled, tmp_path / "single.csv", chunk_rows=1000)
    spread = price_file_dask(valuer, titled, tmp_path / "dask.csv", dask_client, blocksize="50KB")
    assert spread.rows == single.rows == 3000 and spread.rejected == single.rejected > 0
    a, b = (pd.read_csv(tmp_path / f"{name}.csv", dtype=str) for name in ("single", "dask"))
    pd.testing.assert_frame_equal(a, b)
    rejects_a, rejects_b = (pd.read_csv(o.rejects, dtype=str) for o in (single, spread))
    pd.testing.assert_frame_equal(rejects_a, rejects_b)
    lines = titled.read_bytes().decode("gb18030").splitlines()
    first = int(rejects_a["line"].iloc[0])
    assert lines[first - 1].startswith(str(rejects_a.iloc[0, 3]))  # the line the file numbers
