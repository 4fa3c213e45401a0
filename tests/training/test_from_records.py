"""`valuation train --from-records`: the sales the marketplace reported to the service are the
training data of the next model."""

from __future__ import annotations

import pandas as pd
from fastapi.testclient import TestClient

import cli
from api.main import create_app
from data.simulator import generate
from tests.conftest import marketplace_key
from valuation.infra.settings import Settings, get_settings
from valuation.parsing import parse_price
from valuation.schema import FEATURES
from valuation.storage import registry
from valuation.storage.records import Record


def report_sales(settings: Settings, record_url: str, n: int) -> pd.DataFrame:
    """Quotes `n` simulated listings through the API, then reports what they sold for (half with
    the listing's fields, half relying on the quote on record)."""
    market = generate(n, seed=31, bad_share=0)
    canonical = {field.marketplace_header: field.name for field in FEATURES}
    listings = market[list(canonical)].rename(columns=canonical)
    listings["listing_id"] = market["账号ID"]
    served = settings.model_copy(update={"database_url": record_url})
    with TestClient(create_app(settings=served)) as client:
        client.headers.update(marketplace_key(record_url))
        half = n // 2
        first = listings.iloc[:half].to_dict("records")
        assert client.post("/v1/quotes", json={"listings": first}).json()["quoted"] == half
        for i, row in enumerate(listings.to_dict("records")):
            sale = {"listing_id": row["listing_id"], "price": market["成交价"].iloc[i]}
            if i >= half:  # never quoted: the marketplace sends the fields with the sale
                sale["listing"] = {k: v for k, v in row.items() if k != "listing_id"}
            assert client.post("/v1/sales", json=sale).status_code == 201
        # A corrected report of the first sale replaces it.
        first_price = round(parse_price(market["成交价"].iloc[0]) * 1.2)
        corrected = {"listing_id": listings["listing_id"].iloc[0], "price": first_price}
        assert client.post("/v1/sales", json=corrected).status_code == 201
    return market


def test_train_from_records_trains_on_the_reported_sales(
    trained, settings, tmp_path, capsys, use_home
):
    home = tmp_path / "next"
    home.mkdir()
    record_url = f"sqlite:///{home / 'records.db'}"  # the default record of that home
    market = report_sales(settings, record_url, 300)

    use_home(home, trials=1, folds=2)
    assert cli.main(["train", "--from-records"]) == 0
    out = capsys.readouterr().out
    next_settings = get_settings()
    assert "training on the sales on record" in out
    assert registry.registered_version(next_settings) == "1"

    [snapshot] = (home / "records").glob("sales-*.parquet")
    trained_on = pd.read_parquet(snapshot)
    record = Record(record_url)
    try:
        assert record.counts()["sales"] == 301
        suspect = {sale["listing_id"] for sale in record.suspect_sales()}
    finally:
        record.close()
    # The simulated market has 1.5% price typos: screened out as suspect, with few real sales.
    assert 0 < len(suspect) <= 0.06 * 300
    assert not suspect & set(trained_on["listing_id"])
    # One row per listing (the correction replaced the first report), suspects left out.
    assert len(trained_on) == 300 - len(suspect)
    first = trained_on.set_index("listing_id").loc[market["账号ID"].iloc[0]]
    assert first["price"] == round(parse_price(market["成交价"].iloc[0]) * 1.2)

    client = registry.client(next_settings)
    version = client.get_model_version(next_settings.model_name, "1")
    run = client.get_run(version.run_id)
    assert run.data.params["data_path"] == str(snapshot)
    assert int(run.data.params["rows_total"]) == len(trained_on)
    assert int(run.data.params["rows_rejected"]) == 0
    # the sales' dates were kept: the model's market date is the latest of them
    latest = pd.to_datetime(trained_on["sold_at"]).max().date()
    assert registry.load_valuer(next_settings).market_date == latest


def test_train_from_an_empty_record_says_how_sales_arrive(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VALUATION_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    try:
        assert cli.main(["train", "--from-records"]) != 0
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err.strip()
    assert err.startswith("valuation train: error: no sales are on record at sqlite:///")
    assert "POST /v1/sales" in err


def test_train_needs_exactly_one_source(capsys):
    for argv in (["train"], ["train", "--data", "x.csv", "--from-records"]):
        try:
            cli.main(argv)
        except SystemExit as exit_:
            assert exit_.code == 2
        else:
            raise AssertionError(f"{argv} was accepted")
