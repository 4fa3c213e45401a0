"""Shared fixtures: a tiny simulated market and one small model trained on it, per test session."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from data.simulator import generate
from valuation.infra.settings import Settings, get_settings
from valuation.loading import write_table

# The suite quotes hundreds of times a second from one address: the quote limits are off for it
# (a setting any test may turn back on; tests/api/test_rate_limits.py does).
os.environ.setdefault("VALUATION_QUOTE_RATE", "0")
# Compiling a model's trees costs a training a few seconds: the session's champion (`settings`)
# and tests/valuation/test_compiled.py compile theirs; the many side trainings price with
# LightGBM, which keeps that path (the fallback) covered too.
os.environ.setdefault("VALUATION_COMPILED_TREES", "0")


@pytest.fixture
def use_home(monkeypatch):
    """Points the CLI's settings at a project folder through its environment variables (a
    search of `trials`, and `folds` when given), as a user's shell would."""

    def use(home: Path, trials: int = 1, folds: int | None = None) -> None:
        monkeypatch.setenv("VALUATION_HOME", str(home))
        monkeypatch.setenv("VALUATION_SEARCH_TRIALS", str(trials))
        if folds is not None:
            monkeypatch.setenv("VALUATION_CV_FOLDS", str(folds))
        monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
        get_settings.cache_clear()

    get_settings.cache_clear()
    yield use
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def sales_csv(tmp_path_factory) -> Path:
    """1,500 simulated sales in the marketplace's spellings, a few rows unreadable."""
    path = tmp_path_factory.mktemp("market") / "sales.csv"
    write_table(generate(1500, seed=5, bad_share=0.01), path)
    return path


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    """A project folder of its own: embedded MLflow store, artifacts and bundles under tmp."""
    home = tmp_path_factory.mktemp("home")
    return Settings(home=home, tracking_uri=None, search_trials=2, cv_folds=2, compiled_trees=True)


@pytest.fixture(scope="session")
def trained(sales_csv, settings):
    """The outcome of one real training run, registered as champion in `settings`' store."""
    from training.pipeline import train

    return train(sales_csv, settings)


@contextmanager
def throwaway_postgres():
    """A database of its own on the machine's PostgreSQL (`make test` starts it when it is down;
    VALUATION_TEST_POSTGRES names another server), dropped afterwards."""
    import os
    import uuid

    from sqlalchemy import create_engine, text

    server = os.environ.get(
        "VALUATION_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432"
    )
    name = f"valuation_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway database for the session."""
    with throwaway_postgres() as url:
        yield url


def marketplace_key(database_url: str, role: str = "marketplace") -> dict[str, str]:
    """The Authorization header of a new key made in the record at `database_url`."""
    import uuid

    from valuation.storage import keys
    from valuation.storage.records import Record

    record = Record(database_url)
    key = keys.create(record.engine, f"{role}-{uuid.uuid4().hex[:8]}", role)
    record.engine.dispose()
    return {"Authorization": f"Bearer {key}"}
