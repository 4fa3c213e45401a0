"""Shared fixtures: a tiny simulated market and one small model trained on it, per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from data.simulator import generate
from valuation.loading import write_table
from valuation.settings import Settings


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
    return Settings(home=home, tracking_uri=None, search_trials=2, cv_folds=2)


@pytest.fixture(scope="session")
def trained(sales_csv, settings):
    """The outcome of one real training run, registered as champion in `settings`' store."""
    from training.pipeline import train

    return train(sales_csv, settings)
