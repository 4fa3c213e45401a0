"""`POST /admin/reload`: a new champion served without a restart, a bad one refused while the old one
keeps serving, behind a bearer token; and no quote fails while models are swapped under load."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter
from contextlib import contextmanager

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api import model_updates
from api.main import create_app
from api.schemas import EXAMPLE_LISTING
from data.simulator import generate
from tests.api.server import running_server
from training.pipeline import train
from training.promotion import promote
from valuation.infra.settings import Settings
from valuation.loading import write_table
from valuation.storage import bundles, keys, registry
from valuation.storage.records import Record

TOKEN = "reload-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LISTING = EXAMPLE_LISTING


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Settings:
    """A store of its own with two registered versions ("1" and "2"): the session's champion must
    stay put for the other API tests."""
    home = tmp_path_factory.mktemp("admin-home")
    data = tmp_path_factory.mktemp("admin-market") / "sales.csv"
    write_table(generate(800, seed=31, bad_share=0.0), data)
    own = Settings(home=home, tracking_uri=None, search_trials=1, cv_folds=2)
    versions = [train(data, own).model_version for _ in range(2)]
    assert versions == ["1", "2"]
    return own


def champion(settings: Settings, version: str) -> None:
    if registry.registered_version(settings) != version:
        promote(settings, version, "admin reload test")


@contextmanager
def serving(settings: Settings, token: str | None = TOKEN, **changes):
    changes["admin_token"] = SecretStr(token) if token else None
    app = create_app(settings=settings.model_copy(update=changes))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def served_version(client) -> str:
    return client.post("/v1/quote", json=LISTING).json()["model"]["version"]


def test_without_the_token_only_an_admin_key_reloads(store):
    champion(store, "1")
    with serving(store, token=None) as client:
        for headers in ({}, AUTH):  # the token counts for nothing once unset
            answer = client.post("/admin/reload", headers=headers, params={"version": "2"})
            assert answer.status_code == 401
        engine = Record(store.records).engine
        admin = keys.create(engine, f"ops-{uuid.uuid4().hex[:8]}", "admin")
        market = keys.create(engine, f"shop-{uuid.uuid4().hex[:8]}", "marketplace")
        client.app.state.keys._read_at = -float("inf")  # as if REFRESH_SECONDS had passed
        refused = client.post(
            "/admin/reload", headers={"Authorization": f"Bearer {market}"}, params={"version": "2"}
        )
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "forbidden"
        assert served_version(client) == "1"
        answer = client.post(
            "/admin/reload", headers={"Authorization": f"Bearer {admin}"}, params={"version": "2"}
        )
        assert answer.status_code == 200
        assert served_version(client) == "2"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ],
    ids=["missing", "wrong", "longer", "basic", "no-scheme"],
)
def test_a_missing_or_wrong_token_is_401(store, headers):
    champion(store, "1")
    with serving(store) as client:
        answer = client.post("/admin/reload", headers=headers, params={"version": "2"})
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"] == "Bearer"
        assert answer.json()["error"]["code"] == "unauthorized"
        assert served_version(client) == "1"


def test_the_admin_route_is_documented_with_its_bearer_scheme(store):
    with serving(store) as client:
        schema = client.get("/openapi.json").json()
    assert schema["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    operation = schema["paths"]["/admin/reload"]["post"]
    assert operation["security"] == [{"ApiKey": []}]
    assert {"200", "401", "403", "409"} <= set(operation["responses"])


def test_reload_serves_a_newly_promoted_champion_without_a_restart(store):
    champion(store, "1")
    with serving(store) as client:
        assert served_version(client) == "1"
        promote(store, "2", "admin reload test")
        answer = client.post("/admin/reload", headers=AUTH)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "name": store.model_name,
            "previous_version": "1",
            "version": "2",
            "changed": True,
        }
        assert served_version(client) == "2"
        model = client.get("/v1/model").json()
        assert model["version"] == "2"
        assert model["promotion"] == {
            "decision": "promoted_by_hand",
            "reasons": "admin reload test",
        }
        metrics = client.get("/metrics").text
        assert f'valuation_model_info{{name="{store.model_name}",version="2"}} 1.0' in metrics
        assert f'valuation_model_info{{name="{store.model_name}",version="1"}}' not in metrics

        again = client.post("/admin/reload", headers=AUTH).json()
        assert (again["previous_version"], again["version"], again["changed"]) == ("2", "2", False)


@contextmanager
def tampered(path):
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    try:
        yield
    finally:
        path.write_bytes(data)


def refused(client, version: str, code: str) -> dict:
    """Asks for `version`, expects the refusal, and checks the old model still answers."""
    before = served_version(client)
    answer = client.post("/admin/reload", headers=AUTH, params={"version": version})
    assert answer.status_code == 409, answer.text
    error = answer.json()["error"]
    assert error["code"] == code
    assert served_version(client) == before
    assert client.get("/readyz").status_code == 200
    return error


def test_a_tampered_bundle_is_refused_and_the_old_model_keeps_serving(store, caplog):
    champion(store, "2")
    with serving(store) as client:
        with tampered(registry.bundle_dir(store, "1") / "bundle.json"):
            with caplog.at_level(logging.WARNING, logger="api"):
                error = refused(client, "1", "bundle_rejected")
        assert f"{store.model_name} version 1" in error["message"]
        assert "changed: bundle.json" in error["message"]
        assert any("refused" in r.getMessage() for r in caplog.records)
        # Restored, the same version is served: the refusal was the bundle's, not the version's.
        answer = client.post("/admin/reload", headers=AUTH, params={"version": "1"})
        assert answer.status_code == 200
        assert served_version(client) == "1"


def test_a_version_without_a_recorded_digest_is_refused(store):
    champion(store, "2")
    mlflow = registry.client(store)
    recorded = mlflow.get_model_version(store.model_name, "1").tags[bundles.DIGEST_TAG]
    mlflow.delete_model_version_tag(store.model_name, "1", bundles.DIGEST_TAG)
    try:
        with serving(store) as client:
            error = refused(client, "1", "bundle_rejected")
    finally:
        mlflow.set_model_version_tag(store.model_name, "1", bundles.DIGEST_TAG, recorded)
    assert "no bundle_sha256" in error["message"]


def test_a_model_failing_the_smoke_check_is_refused(store, monkeypatch):
    champion(store, "2")
    monkeypatch.setattr(model_updates, "smoke_problems", lambda valuer: ["an estimate of nan"])
    with serving(store) as client:
        error = refused(client, "1", "smoke_failed")
    assert "version 1 failed the smoke check: an estimate of nan" in error["message"]


def test_an_unknown_or_malformed_version_is_refused(store):
    champion(store, "2")
    with serving(store) as client:
        assert "no version 999" in refused(client, "999", "no_model")["message"]
        answer = client.post("/admin/reload", headers=AUTH, params={"version": "../1"})
        assert answer.status_code == 422
        assert answer.json()["error"]["fields"][0]["field"] == "version"


def test_polling_follows_the_champion_and_tries_each_move_once(store, caplog):
    champion(store, "2")
    with serving(store, reload_seconds=0.05) as client:
        promote(store, "1", "admin polling test")
        assert wait_for(lambda: served_version(client) == "1")

        updates = client.app.state.model_updates
        with tampered(registry.bundle_dir(store, "2") / "point.txt"):
            with caplog.at_level(logging.WARNING, logger="api"):
                promote(store, "2", "admin polling test: a tampered champion")
                assert wait_for(lambda: "2" in updates.refused)
                time.sleep(0.5)  # ten more polls, none of which may try "2" again
                refusals = [r for r in caplog.records if "refused" in r.getMessage()]
                assert len(refusals) == 1
                assert served_version(client) == "1"

                # The champion moves away and back: the move back is tried (and refused) again.
                promote(store, "1", "admin polling test: back")
                time.sleep(0.3)
                promote(store, "2", "admin polling test: the tampered one again")
                assert wait_for(
                    lambda: len([r for r in caplog.records if "refused" in r.getMessage()]) == 2
                )
            assert served_version(client) == "1"


def wait_for(condition, within: float = 60) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_no_quote_fails_while_the_model_is_swapped_under_load(store):
    """A real server, quoted from four threads while the champion flips between two versions and
    is reloaded each time: every answer must be a 200, and both versions must have answered."""
    champion(store, "1")
    answers: Counter = Counter()
    stop = threading.Event()
    lock = threading.Lock()

    def hammer(base: str) -> None:
        with httpx.Client(base_url=base, timeout=60) as http:
            while not stop.is_set():
                try:
                    answer = http.post("/v1/quote", json=LISTING)
                    ok = answer.status_code == 200
                    seen = (answer.status_code, answer.json()["model"]["version"] if ok else None)
                except Exception as error:  # a dropped connection is a failure too
                    seen = (type(error).__name__, None)
                with lock:
                    answers[seen] += 1

    def quoted() -> int:
        with lock:
            return sum(answers.values())

    with running_server(store, {"VALUATION_ADMIN_TOKEN": TOKEN}) as base:
        threads = [threading.Thread(target=hammer, args=(base,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            with httpx.Client(base_url=base, timeout=60, headers=AUTH) as http:
                for version in ["2", "1", "2", "1", "2", "1"]:
                    before = quoted()
                    assert wait_for(lambda before=before: quoted() >= before + 50)
                    promote(store, version, "admin reload under load")
                    answer = http.post("/admin/reload")
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["version"] == version and answer.json()["changed"]
                before = quoted()
                assert wait_for(lambda: quoted() >= before + 50)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
    failures = {seen: count for seen, count in answers.items() if seen[0] != 200}
    assert not failures
    assert {version for _, version in answers} == {"1", "2"}
