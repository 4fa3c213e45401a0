"""The training orchestrator's MLflow round trip, against real SQLite stores under tmp.

MLflow keeps its tracking URI as process state: every test points it at its store through
`registry.client(settings)` before any other MLflow call.
"""

from __future__ import annotations

import hashlib
import shutil

import pandas as pd
import pytest

from data.simulator import generate
from training.pipeline import train
from training.report import report
from valuation.infra.settings import Settings
from valuation.listing import Listing
from valuation.loading import read_export, write_table
from valuation.storage import registry

RAW_ROWS = pd.DataFrame(
    {
        "fans": ["13.13W", 5000, "1.2万", "3,500", 880_000],
        "violations": ["有违规", False, "无违规", "no", True],
        "live_permission": [True, "未开通", "已开通", "yes", 0],
        "verified": ["已认证", "no", "未认证", 1, "已认证"],
        "category": ["自媒体", "美食", "汽车", "没听过的类目", "游戏"],
    },
    dtype=object,
)
UNREADABLE = {
    "fans": "十万",
    "violations": "无违规",
    "live_permission": "未开通",
    "verified": "未认证",
    "category": "美食",
}


def _champion_run(settings: Settings, version: str):
    client = registry.client(settings)
    model = client.get_model_version_by_alias(settings.model_name, settings.model_alias)
    assert str(model.version) == version
    return client, client.get_run(model.run_id)


# the session's training run ------------------------------------------------------------------


def test_the_trained_model_is_registered_as_champion(trained, settings):
    client = registry.client(settings)
    registered = client.get_registered_model(settings.model_name)
    assert str(registered.aliases[settings.model_alias]) == trained.model_version
    model = client.get_model_version_by_alias(settings.model_name, "champion")
    assert model.run_id == trained.run_id


def test_the_run_records_holdout_metrics_and_the_data(trained, settings, sales_csv):
    _, run = _champion_run(settings, trained.model_version)
    metrics, params = run.data.metrics, run.data.params
    for who in ("model", "baseline_fans_band", "baseline_linear"):
        assert metrics[f"{who}_mdape"] == pytest.approx(trained.metrics[who]["mdape"])
    assert metrics["model_interval_coverage"] == pytest.approx(
        trained.metrics["model"]["interval_coverage"]
    )
    assert params["data_sha256"] == hashlib.sha256(sales_csv.read_bytes()).hexdigest()
    assert params["rows_total"] == "1500" == str(trained.rows)
    assert int(params["rows_rejected"]) == trained.rejected > 0
    assert params["split_by"] == trained.split_by == "time"


def test_each_search_trial_is_a_nested_run(trained, settings):
    client, run = _champion_run(settings, trained.model_version)
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}'",
    )
    assert len(children) == settings.search_trials == 2
    for child in children:
        assert child.data.metrics["cv_l1_log_price"] > 0
        assert "num_leaves" in child.data.params
    assert {c.data.params["num_leaves"] for c in children} | {
        run.data.params["best_num_leaves"]
    } == {c.data.params["num_leaves"] for c in children}, "the best is one of the trials"


def test_the_run_logs_its_dataset_and_the_lightgbm_text_model(trained, settings, tmp_path):
    client, run = _champion_run(settings, trained.model_version)
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    assert inputs[0].dataset.name == "sales.csv"
    assert {(t.key, t.value) for t in inputs[0].tags} >= {("mlflow.data.context", "training")}

    assert [a.path for a in client.list_artifacts(run.info.run_id, "lightgbm")] == [
        "lightgbm/point.txt"
    ]
    logged = client.download_artifacts(run.info.run_id, "lightgbm/point.txt", str(tmp_path))
    assert open(logged, "rb").read() == (trained.bundle / "point.txt").read_bytes()


def test_unreadable_training_rows_are_written_out_and_logged(trained, settings):
    assert trained.rejects_file is not None and trained.rejects_file.is_file()
    rejects = read_export(trained.rejects_file)
    assert len(rejects) == trained.rejected
    assert {"line", "column", "reason"} <= set(rejects.columns)
    client, run = _champion_run(settings, trained.model_version)
    logged = [a.path for a in client.list_artifacts(run.info.run_id, "rejects")]
    listed = [trained.rejects_file] + ([trained.typos_file] if trained.typos else [])
    assert logged == sorted(f"rejects/{file.name}" for file in listed)


def test_the_registered_pyfunc_prices_raw_rows_as_the_service_does(trained, settings):
    import mlflow

    registry.client(settings)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    rows = pd.concat([RAW_ROWS, pd.DataFrame([UNREADABLE])], ignore_index=True)
    answer = model.predict(rows)

    assert list(answer.columns) == [
        "price_estimate",
        "price_low",
        "price_high",
        "known_category",
        "error",
    ]
    assert len(answer) == len(rows)
    valuer = registry.load_valuer(settings)
    assert valuer.version == trained.model_version
    for i, raw in RAW_ROWS.iterrows():
        expected = valuer.value(Listing.parse(raw.to_dict()))
        got = answer.iloc[i]
        assert got["error"] is None
        assert got["price_estimate"] == expected.price_estimate
        assert got["price_low"] == expected.price_low
        assert got["price_high"] == expected.price_high
        assert bool(got["known_category"]) == expected.known_category
    assert answer["known_category"].iloc[3] == False  # noqa: E712 - 没听过的类目 is not in training

    bad = answer.iloc[len(RAW_ROWS)]
    assert bad["error"].startswith("fans: ")
    assert bad[["price_estimate", "price_low", "price_high"]].isna().all()


def test_the_registered_pyfunc_prices_a_batch_where_every_row_is_readable(trained, settings):
    import mlflow

    registry.client(settings)
    model = mlflow.pyfunc.load_model(f"models:/{settings.model_name}@champion")
    answer = model.predict(RAW_ROWS)
    assert answer["error"].isna().all()
    assert answer["price_estimate"].notna().all()
    assert (answer["price_low"] <= answer["price_estimate"]).all()
    assert (answer["price_estimate"] <= answer["price_high"]).all()


# stores of their own -------------------------------------------------------------------------


REPEATED = 40


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    """A clean 800-sale market trained twice into one store of its own."""
    home = tmp_path_factory.mktemp("retrain-home")
    data = tmp_path_factory.mktemp("retrain-market") / "clean.csv"
    write_table(generate(800, seed=9, bad_share=0.0), data)
    own = Settings(home=home, tracking_uri=None, search_trials=1, cv_folds=2)
    first = train(data, own)
    second = train(data, own)
    return own, first, second, data


def test_training_again_registers_a_new_version_and_moves_champion(retrained):
    own, first, second, _ = retrained
    assert (first.model_version, second.model_version) == ("1", "2")
    client = registry.client(own)
    versions = client.search_model_versions(f"name = '{own.model_name}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    aliases = client.get_registered_model(own.model_name).aliases
    assert {alias: str(v) for alias, v in aliases.items()} == {"champion": "2"}
    assert registry.load_valuer(own).version == "2"
    assert registry.load_valuer(own).card.data_rows == 800


def test_no_rejects_file_when_every_row_was_readable(retrained):
    _, first, _, _ = retrained
    assert first.rejected == 0
    assert first.rejects_file is None
    assert not list(first.bundle.parent.glob("*.rejects.csv"))
    assert first.repeated == 0 and first.repeats_file is None


def test_a_sale_written_twice_is_trained_on_once_and_listed(retrained, tmp_path):
    """The same export with REPEATED of its rows written again at its end (appended from
    another), trained into a store of its own."""
    _, first, _, data = retrained
    sales = read_export(data)
    again = write_table(pd.concat([sales, sales.iloc[100 : 100 + REPEATED]]), tmp_path / "a.csv")
    own = Settings(home=tmp_path / "home", tracking_uri=None, search_trials=1, cv_folds=2)
    second = train(again, own)
    assert (second.rows, second.repeated, second.rejected) == (800 + REPEATED, REPEATED, 0)
    repeats = pd.read_csv(second.repeats_file)
    assert repeats["line"].tolist() == list(range(802, 802 + REPEATED))
    assert repeats["repeats"].tolist() == list(range(102, 102 + REPEATED))
    # The same 800 sales, the same split: the second model learned what the first did.
    assert registry.load_valuer(own).card.data_rows == 800
    assert second.metrics["model"] == first.metrics["model"]
    client = registry.client(own)
    run = client.get_run(second.run_id)
    assert run.data.params["rows_repeated"] == str(REPEATED)
    logged = [a.path for a in client.list_artifacts(second.run_id, "rejects")]
    listed = [second.repeats_file] + ([second.typos_file] if second.typos else [])
    assert logged == sorted(f"rejects/{file.name}" for file in listed)


def test_price_typos_are_listed_by_their_line_beside_the_rejects(tmp_path):
    """An export whose prices at PLANTED rows gained or lost a zero, after a seller's note
    written over two lines (every later row one line further down than its place), trains
    without learning from them and lists them: line, id, date, price, estimate, ratio."""
    export = generate(800, seed=9, bad_share=0.0)
    prices = load_listings_of(export, tmp_path)["price"].to_numpy()
    planted = {120: 10.0, 300: 0.1, 301: 10.0, 555: 10.0, 700: 0.1}
    for row, factor in planted.items():
        export.loc[row, "成交价"] = str(round(prices[row] * factor))
    export["备注"] = ""
    export.loc[40, "备注"] = "急售\n可小刀"  # a note over two lines: rows after it move down one
    data = write_table(export, tmp_path / "typos.csv")
    own = Settings(home=tmp_path / "home", tracking_uri=None, search_trials=1, cv_folds=2)
    said = []
    outcome = train(data, own, say=said.append)
    assert said[0].startswith("columns not read: 备注 (")  # the note, named, not lost silently

    listed = pd.read_csv(outcome.typos_file, dtype={"listing_id": str})
    assert outcome.typos == len(listed) == registry.load_valuer(own).card.screened_typos
    assert list(listed.columns) == ["line", "listing_id", "sold_at", "price", "estimate", "ratio"]
    line_of = {row: row + 2 + (row > 40) for row in range(len(export))}
    assert {line_of[row] for row in planted} <= set(listed["line"])
    for row, factor in planted.items():
        typo = listed[listed["line"] == line_of[row]].iloc[0]
        assert typo["listing_id"] == export.loc[row, "账号ID"]
        assert typo["price"] == round(prices[row] * factor)
        assert (typo["ratio"] > 3.6) if factor > 1 else (typo["ratio"] < 1 / 3.6)
    # Every listed line is the row it names (the simulator's own typos among them).
    row_of = {line: row for row, line in line_of.items()}
    assert [export.loc[row_of[line], "账号ID"] for line in listed["line"]] == list(
        listed["listing_id"]
    )
    assert any(f"listed in {outcome.typos_file}" in line for line in said)
    client = registry.client(own)
    assert client.get_run(outcome.run_id).data.params["screened_typos"] == str(outcome.typos)
    logged = [a.path for a in client.list_artifacts(outcome.run_id, "rejects")]
    assert logged == [f"rejects/{outcome.typos_file.name}"]


def load_listings_of(export: pd.DataFrame, tmp_path) -> pd.DataFrame:
    from valuation.loading import load_listings

    return load_listings(write_table(export, tmp_path / "plain.csv"), require_price=True).listings


def test_load_valuer_downloads_a_deleted_bundle_again(retrained):
    own, _, second, _ = retrained
    listings = [Listing.parse(row) for row in RAW_ROWS.to_dict("records")]
    before = [registry.load_valuer(own).value(listing) for listing in listings]

    cache = registry.bundle_dir(own, "2")
    assert cache == second.bundle and cache.is_dir()
    shutil.rmtree(cache)
    valuer = registry.load_valuer(own)
    assert (cache / "bundle.json").is_file()
    assert (cache / "point.txt").is_file()
    assert [valuer.value(listing) for listing in listings] == before


def test_load_valuer_on_a_store_without_a_model_raises_no_model(tmp_path):
    empty = Settings(home=tmp_path, tracking_uri=None)
    with pytest.raises(registry.NoModel, match="train one first"):
        registry.load_valuer(empty)


# a market that moved during the holdout's months ---------------------------------------------


def test_a_fast_rising_market_earns_champion_its_holdout_taken_to_the_fits_market_date(tmp_path):
    """Every category rising 4% a month: the holdout (the last 20% of sales, about five months)
    stands ~10% above the evaluated fit's market date. Valued against its own prices, its range
    missed that rise and the gate refused the first model (nothing served); restated to that
    date by the index of every sale, it measures the quote as it is made."""
    from data.markets import Market
    from data.simulator import CATEGORY_PREMIUM

    rising = Market(
        "rising",
        "report",
        "every category up 4% a month",
        rows=2000,
        dated=True,
        monthly_rates=dict.fromkeys(CATEGORY_PREMIUM, 0.04),
    )
    data = tmp_path / "rising.csv"
    write_table(rising.export(3), data)
    settings = Settings(home=tmp_path / "home", tracking_uri=None, search_trials=1, cv_folds=2)
    outcome = train(data, settings)
    model = outcome.metrics["model"]
    assert outcome.split_by == "time"
    assert 0.76 <= model["interval_coverage"] <= 0.84
    assert outcome.decision.promote
    assert registry.load_valuer(settings).version == outcome.model_version


def test_a_clean_export_leaves_no_earlier_list_of_its_rejects_or_repeats(tmp_path):
    """Lists are named after the data file: an earlier training's would read as this one's."""
    from training.pipeline import Export, _keep_unread

    own = Settings(home=tmp_path, tracking_uri=None)
    data, said = Export.of(tmp_path / "export.csv"), []
    rows = pd.DataFrame({"line": [5], "repeats": [2]})
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "export.typos.csv").write_text("line\n7\n")  # an earlier training's
    _keep_unread(rows, rows, 10, data, own, said.append)
    listed = sorted(p.name for p in own.bundles.iterdir())
    assert listed == ["export.rejects.csv", "export.repeats.csv"] and len(said) == 2
    _keep_unread(rows.iloc[:0], rows.iloc[:0], 10, data, own, said.append)
    assert not list(own.bundles.iterdir()) and len(said) == 2


def test_a_training_without_typos_removes_an_earlier_list(tmp_path):
    from training.pipeline import Export, _keep_typos

    own = Settings(home=tmp_path, tracking_uri=None)
    own.bundles.mkdir(parents=True)
    earlier = own.bundles / "export.typos.csv"
    earlier.write_text("line,price\n7,12000\n")
    said = []
    export = Export.of(tmp_path / "export.csv")
    assert _keep_typos(pd.DataFrame(), 0, export, own, said.append) is None
    assert not earlier.exists() and not said


def test_a_folder_of_monthly_exports_trains_as_one_export(tmp_path):
    """Two exports whose months overlap by OVERLAP sales, in a folder: one training on every
    sale once, its lists naming each row's file and line."""
    export = generate(800, seed=9, bad_share=0.01)
    folder = tmp_path / "exports"
    folder.mkdir()
    first, second = export.iloc[:430], export.iloc[400:]
    write_table(first, folder / "2026-01.csv")
    write_table(second, folder / "2026-02.csv")
    own = Settings(home=tmp_path / "home", tracking_uri=None, search_trials=1, cv_folds=2)
    outcome = train(folder, own)

    readable = load_listings_of(export, tmp_path).index
    overlap = readable[
        (readable >= 400) & (readable < 430)
    ].to_numpy()  # an unreadable one: no sale
    assert (outcome.rows, outcome.repeated) == (830, len(overlap)) and len(overlap) > 25
    repeats = pd.read_csv(outcome.repeats_file)
    assert repeats[["file", "repeats_file"]].drop_duplicates().values.tolist() == [
        ["2026-02.csv", "2026-01.csv"]
    ]
    assert repeats["line"].tolist() == list(overlap - 400 + 2)
    assert repeats["repeats"].tolist() == list(overlap + 2)
    rejects = pd.read_csv(outcome.rejects_file)
    assert outcome.rejected == len(rejects) > 0 and set(rejects["file"]) <= {
        "2026-01.csv",
        "2026-02.csv",
    }
    files = {"2026-01.csv": first, "2026-02.csv": second}
    for table in (rejects, pd.read_csv(outcome.typos_file)):
        for file, line, *_ in table.itertuples(index=False):
            assert file in files and 2 <= line < len(files[file]) + 2
    typos = pd.read_csv(outcome.typos_file, dtype={"listing_id": str})
    ids = [files[f]["账号ID"].iloc[line - 2] for f, line in zip(typos["file"], typos["line"])]
    assert ids == typos["listing_id"].tolist()
    assert {p.name for p in own.bundles.glob("*.csv")} == {
        "exports.rejects.csv",
        "exports.repeats.csv",
        "exports.typos.csv",
    }
    valuer = registry.load_valuer(own)
    assert valuer.card.data_rows == 830 - outcome.rejected - outcome.repeated == len(readable)
    digests = [hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in files]
    assert valuer.card.data_sha256 == hashlib.sha256("\n".join(digests).encode()).hexdigest()
    params = registry.client(own).get_run(outcome.run_id).data.params
    assert params["data_name"] == "exports"
    page = report(own, tmp_path / "report")  # the report rewritten from the run names the export
    assert "trained on exports<" in page.read_text(encoding="utf-8")
    assert params["data_path"] == f"{folder / '2026-01.csv'}; {folder / '2026-02.csv'}"

    # The same rows in one file train the same model: the folder is read as that file.
    joined = write_table(pd.concat([first, second]), tmp_path / "joined.csv")
    alone = Settings(home=tmp_path / "alone", tracking_uri=None, search_trials=1, cv_folds=2)
    one_file = train(joined, alone)
    assert (one_file.rejected, one_file.repeated) == (outcome.rejected, outcome.repeated)
    assert one_file.metrics == outcome.metrics
    texts = [(o.bundle / "point.txt").read_text() for o in (outcome, one_file)]
    assert texts[0] == texts[1]
