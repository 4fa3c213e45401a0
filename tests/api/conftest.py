"""API fixtures: the app served through TestClient, its lifespan loading the champion from the
session's real MLflow registry, and the same app over an empty home (no model registered)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from valuation.infra.settings import Settings
from valuation.storage.registry import load_valuer
from valuation.valuer import Valuer


@pytest.fixture(scope="module")
def client(trained, settings):
    """Server errors come back as 500 answers (not raised) so that "never 500" is an assertion."""
    with TestClient(create_app(settings=settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def valuer(trained, settings) -> Valuer:
    """The champion as the registry hands it out, outside any app."""
    return load_valuer(settings)


@pytest.fixture
def modelless(tmp_path):
    settings = Settings(home=tmp_path, tracking_uri=None)
    with TestClient(create_app(settings=settings), raise_server_exceptions=False) as client:
        yield client
