"""The session's trained model, loaded from its exported bundle (as a deployment would)."""

from __future__ import annotations

import pytest

from valuation.valuer import Valuer


@pytest.fixture(scope="module")
def valuer(trained) -> Valuer:
    return Valuer.load(trained.bundle)
