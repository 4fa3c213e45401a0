"""API keys and roles, and the sales feed nobody can poison: a sale needs a marketplace key,
typo-shaped sales are stored as suspect and not trained on until an admin confirms them, keys
are stored only as hashes, and quotes stay public unless a deployment makes them private."""

from __future__ import annotations

import hashlib
import itertools
import sqlite3

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import cli
from api.main import create_app
from api.schemas import EXAMPLE_LISTING
from tests.conftest import marketplace_key
from valuation.storage import keys
from valuation.storage.records import Record, sales

LISTING = EXAMPLE_LISTING


@pytest.fixture
def served(trained, settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'records.db'}"
    own = settings.model_copy(update={"database_url": url})
    with TestClient(create_app(settings=own), raise_server_exceptions=False) as client:
        yield client, url


def stored_sales(url: str) -> list[dict]:
    record = Record(url)
    try:
        with record.engine.connect() as connection:
            return [dict(row) for row in connection.execute(select(sales)).mappings()]
    finally:
        record.close()


def test_no_sale_is_stored_without_a_marketplace_key(served):
    client, url = served
    good = marketplace_key(url)["Authorization"].removeprefix("Bearer ")
    quote_only = marketplace_key(url, role="quote")
    one_off = good[:-1] + ("A" if good[-1] != "A" else "B")
    refusals = [
        ({}, 401),
        ({"Authorization": "Bearer not-a-key"}, 401),
        ({"Authorization": f"Bearer {one_off}"}, 401),  # one character off
        ({"Authorization": f"Bearer {good}x"}, 401),
        ({"Authorization": f"Basic {good}"}, 401),
        (quote_only, 403),
    ]
    for i, (headers, status) in zip(range(2400), itertools.cycle(refusals)):
        sale = {"listing_id": f"X-{i}", "price": 100 + i, "listing": LISTING}
        answer = client.post("/v1/sales", json=sale, headers=headers)
        assert answer.status_code == status, (headers, answer.text)
        if status == 401:
            assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert stored_sales(url) == []
    estimate = client.post("/v1/quote", json=LISTING).json()["price_estimate"]
    accepted = client.post(
        "/v1/sales",
        json={"listing_id": "OK-1", "price": estimate, "listing": LISTING},
        headers={"Authorization": f"Bearer {good}"},
    )
    assert accepted.status_code == 201, accepted.text
    [row] = stored_sales(url)
    assert row["reported_by"].startswith("marketplace-") and row["status"] == "accepted"


def test_public_quotes_need_no_key(served):
    client, _ = served
    assert client.post("/v1/quote", json=LISTING).status_code == 200
    assert (
        client.post("/v1/appraisal", json={"listing": LISTING, "asking_price": 100}).status_code
        == 200
    )


def test_a_private_deployment_quotes_only_with_a_key(trained, settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'records.db'}"
    private = settings.model_copy(update={"database_url": url, "quotes_need_key": True})
    header = marketplace_key(url, role="quote")
    with TestClient(create_app(settings=private), raise_server_exceptions=False) as client:
        refused = client.post("/v1/quote", json=LISTING)
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert client.post("/v1/quotes", json={"listings": [LISTING]}).status_code == 401
        assert client.post("/v1/quote", json=LISTING, headers=header).status_code == 200
        # A quote key is not enough to report a sale.
        sale = {"listing_id": "P-1", "price": 100, "listing": LISTING}
        assert client.post("/v1/sales", json=sale, headers=header).status_code == 403


def test_a_typo_shaped_sale_is_suspect_until_an_admin_confirms_it(served):
    client, url = served
    market = marketplace_key(url)
    admin = marketplace_key(url, role="admin")
    estimate = client.post("/v1/quote", json=LISTING).json()["price_estimate"]
    typo = client.post(
        "/v1/sales",
        json={"listing_id": "T-1", "price": estimate * 10, "listing": LISTING},
        headers=market,
    ).json()
    fine = client.post(
        "/v1/sales",
        json={"listing_id": "T-2", "price": estimate * 1.05, "listing": LISTING},
        headers=market,
    ).json()
    assert typo["status"] == "suspect" and "typo" in typo["suspect_because"]
    assert fine["status"] == "accepted" and fine["suspect_because"] is None
    record = Record(url)
    try:
        assert set(record.sales_frame()["listing_id"]) == {"T-2"}  # not trained on
        metrics = client.get("/metrics").text
        assert 'valuation_sales_on_record{status="suspect"} 1.0' in metrics
        [suspect] = client.get("/admin/sales/suspect", headers=admin).json()
        assert suspect["listing_id"] == "T-1" and suspect["reported_by"].startswith("marketplace")
        assert client.get("/admin/sales/suspect", headers=market).status_code == 403
        decided = client.post(f"/admin/sales/{suspect['id']}/confirm", headers=admin)
        assert decided.status_code == 200 and decided.json()["status"] == "confirmed"
        assert set(record.sales_frame()["listing_id"]) == {"T-1", "T-2"}
        again = client.post(f"/admin/sales/{suspect['id']}/reject", headers=admin)
        assert again.status_code == 404  # decided already
    finally:
        record.close()


def test_keys_are_stored_only_as_hashes_and_revoked_keys_stop(served, tmp_path):
    client, url = served
    record = Record(url)
    key = keys.create(record.engine, "shop-1", "marketplace")
    assert key.startswith(keys.PREFIX) and len(key) > 40
    path = url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        dumped = "\n".join(connection.iterdump())
    assert key not in dumped and hashlib.sha256(key.encode()).hexdigest() in dumped
    with pytest.raises(keys.KeyProblem, match="exists"):
        keys.create(record.engine, "shop-1", "admin")
    header = {"Authorization": f"Bearer {key}"}
    client.app.state.keys._read_at = -float("inf")
    estimate = client.post("/v1/quote", json=LISTING).json()["price_estimate"]
    sale = {"listing_id": "R-1", "price": estimate, "listing": LISTING}
    assert client.post("/v1/sales", json=sale, headers=header).status_code == 201
    keys.revoke(record.engine, "shop-1")
    client.app.state.keys._read_at = -float("inf")  # REFRESH_SECONDS later
    assert client.post("/v1/sales", json=sale, headers=header).status_code == 401
    assert [(k.name, k.revoked_at is not None) for k in keys.listed(record.engine)] == [
        ("shop-1", True)
    ]
    record.close()


def test_the_cli_prints_a_new_key_alone_on_the_last_line(served, monkeypatch, capsys, settings):
    client, url = served
    monkeypatch.setenv("VALUATION_DATABASE_URL", url)
    monkeypatch.setenv("VALUATION_HOME", str(settings.home))
    from valuation.infra.settings import get_settings

    get_settings.cache_clear()
    try:
        assert cli.main(["keys", "create", "--role", "marketplace", "--name", "shop-cli"]) == 0
        key = capsys.readouterr().out.splitlines()[-1]
        assert cli.main(["keys", "list"]) == 0
        listing = capsys.readouterr().out
        assert "shop-cli\tmarketplace" in listing and key not in listing
        client.app.state.keys._read_at = -float("inf")
        sale = {"listing_id": "C-1", "price": 100, "listing": LISTING}
        answer = client.post("/v1/sales", json=sale, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 201
        assert cli.main(["keys", "revoke", "shop-cli"]) == 0
        assert cli.main(["keys", "revoke", "shop-cli"]) == cli.EXIT_FAILED
    finally:
        get_settings.cache_clear()


def test_a_listing_quoted_twice_has_two_quotes_in_its_history(served):
    client, url = served
    market = marketplace_key(url)
    first = client.post("/v1/quote", json={**LISTING, "listing_id": "H-1"}).json()
    second = client.post(
        "/v1/appraisal",
        json={"listing": {**LISTING, "fans": 52_000, "listing_id": "H-1"}, "asking_price": 100},
    ).json()["quote"]
    assert client.get("/v1/listings/H-1").status_code == 401
    assert client.get("/v1/listings/H-1", headers=marketplace_key(url, "quote")).status_code == 403
    history = client.get("/v1/listings/H-1", headers=market).json()
    assert history["listing_id"] == "H-1" and history["sale"] is None
    assert [q["endpoint"] for q in history["quotes"]] == ["quote", "appraisal"]  # oldest first
    for got, answered in zip(history["quotes"], (first, second), strict=True):
        assert (got["price_estimate"], got["price_low"], got["price_high"]) == (
            answered["price_estimate"],
            answered["price_low"],
            answered["price_high"],
        )
        assert got["model"] == answered["model"]
    sold = client.post(
        "/v1/sales", json={"listing_id": "H-1", "price": second["price_estimate"]}, headers=market
    )
    assert sold.status_code == 201
    history = client.get("/v1/listings/H-1", headers=market).json()
    assert history["sale"]["price"] == second["price_estimate"]
    assert history["sale"]["status"] == "accepted"
    assert client.get("/v1/listings/nobody", headers=market).status_code == 404
