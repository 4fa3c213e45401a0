"""The smoke check fails on what a broken model would do, and passes a healthy one."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from valuation.smoke import SMOKE_LISTINGS, smoke_problems
from valuation.valuer import Valuer


def _copy(valuer: Valuer, **card) -> Valuer:
    return Valuer(valuer.boosters, valuer.encoder, replace(valuer.card, **card))


def test_a_healthy_model_passes(valuer):
    assert valuer.card.price_span is not None
    assert smoke_problems(valuer) == []


def test_estimates_far_outside_the_training_prices_fail(valuer):
    broken = _copy(valuer, price_span=(1e7, 2e7))
    problems = smoke_problems(broken)
    assert len(problems) == len(SMOKE_LISTINGS)
    assert all("far outside the training prices" in p for p in problems)


def test_a_model_against_market_logic_fails(valuer):
    broken = _copy(valuer)
    honest = broken.value

    def backwards(listing, *args, **kwargs):  # more fans, a lower price: a reversed model
        valuation = honest(listing, *args, **kwargs)
        flipped = 1e8 / max(listing.fans, 1)
        return replace(
            valuation, price_estimate=flipped, price_low=flipped / 2, price_high=flipped * 2
        )

    broken.value = backwards
    assert any("fans" in p and "lowers the estimate" in p for p in smoke_problems(broken))


def test_non_finite_contributions_fail(valuer):
    broken = _copy(valuer)
    broken.contributions = lambda listing: np.full(6, np.nan)
    assert any("contribution is not finite" in p for p in smoke_problems(broken))


def test_an_old_bundle_without_a_span_is_checked_on_the_rest(valuer):
    assert smoke_problems(_copy(valuer, price_span=None)) == []
