"""A model must earn `champion`: the gate's rule, its record in MLflow, and the override."""

from __future__ import annotations

import pytest

from data.simulator import generate
from training import steps
from training.pipeline import train
from training.promotion import promote
from valuation.infra.settings import Settings
from valuation.loading import write_table
from valuation.storage import registry


def errors(mdape: float, coverage: float = 0.8) -> dict[str, float]:
    return {"mdape": mdape, "interval_coverage": coverage}


def test_first_model_is_promoted_when_its_range_holds():
    decision = steps.decide(errors(0.2), None)
    assert decision.promote
    assert any("no champion" in reason for reason in decision.reasons)


@pytest.mark.parametrize(
    ("candidate", "champion", "promote"),
    [
        (0.150, 0.150, True),  # as good
        (0.1515, 0.150, True),  # 1% worse: within tolerance
        (0.1516, 0.150, False),  # just beyond 1%
        (0.140, 0.150, True),  # better
    ],
)
def test_mdape_may_be_at_most_one_percent_worse(candidate, champion, promote):
    assert steps.decide(errors(candidate), errors(champion)).promote is promote


@pytest.mark.parametrize(
    ("coverage", "promote"), [(0.76, True), (0.84, True), (0.75, False), (0.86, False)]
)
def test_range_coverage_must_be_within_tolerance(coverage, promote):
    decision = steps.decide(errors(0.1, coverage), errors(0.2))
    assert decision.promote is promote
    assert any(f"{coverage:.1%}" in reason for reason in decision.reasons)


def test_the_tolerance_counts_the_calibration_s_draw_as_well_as_the_holdout_s():
    """A sound range calibrated on 4,000 sales, measured on 1,000: 75.9% is within three standard
    errors of both draws (4.24 points), not of the holdout's alone (the 4-point floor)."""
    measured = {**errors(0.1, 0.759), "holdout_rows": 1000.0}
    assert not steps.decide(measured, None).promote
    decision = steps.decide({**measured, "calibration_rows": 4000.0}, None)
    assert decision.promote
    assert "75.8%-84.2%" not in decision.reasons[0]  # said only when refused
    refused = steps.decide(
        {**measured, "interval_coverage": 0.757, "calibration_rows": 4000.0}, None
    )
    assert not refused.promote
    assert "75.8%-84.2%" in refused.reasons[0]
    # plenty of sales on both sides: the floor
    assert steps.coverage_tolerance(40_000, 160_000) == steps.COVERAGE_TOLERANCE


@pytest.fixture
def store(tmp_path):
    settings = Settings(home=tmp_path, tracking_uri=None, search_trials=1, cv_folds=2)
    good, poor = tmp_path / "good.csv", tmp_path / "poor.csv"
    write_table(generate(1500, seed=21, bad_share=0.0), good)
    write_table(generate(300, seed=22, bad_share=0.0), poor)
    return settings, good, poor


def test_a_worse_candidate_is_registered_but_not_served(store):
    settings, good, poor = store
    first = train(good, settings)
    assert first.decision.promote
    # the gate's tolerance counts the evaluated model's calibration sales (1,200 trained on)
    assert 1000 < first.metrics["model"]["calibration_rows"] <= 1200
    assert registry.registered_version(settings) == first.model_version

    second = train(poor, settings)  # 300 sales: a clearly worse model on the same kind of market
    client = registry.client(settings)
    assert client.get_model_version(settings.model_name, second.model_version)  # registered
    champion = second.decision.champion
    assert champion is not None
    if second.decision.promote:  # the gate must be consistent with its own rule
        assert second.metrics["model"]["mdape"] <= champion["mdape"] * 1.01
    else:
        assert registry.registered_version(settings) == first.model_version
    tags = client.get_model_version(settings.model_name, second.model_version).tags
    assert tags["promotion.decision"] == (
        "promoted" if second.decision.promote else "kept_champion"
    )
    assert tags["promotion.reasons"] == "; ".join(second.decision.reasons)
    run = client.get_run(second.run_id)
    assert run.data.tags["promotion.decision"] == tags["promotion.decision"]


def test_promote_overrides_and_records_the_reason(store):
    settings, good, _ = store
    first = train(good, settings)
    second = train(good, settings)
    target = first.model_version if second.decision.promote else second.model_version
    previous = registry.registered_version(settings)
    assert promote(settings, target, "broker review: keep the older model") == previous
    assert registry.registered_version(settings) == target
    client = registry.client(settings)
    tags = client.get_model_version(settings.model_name, target).tags
    assert tags["promotion.decision"] == "promoted_by_hand"
    assert tags["promotion.reasons"] == "broker review: keep the older model"
    runs = client.search_runs(
        [client.get_experiment_by_name(settings.experiment).experiment_id],
        filter_string="tags.`promotion.decision` = 'promoted_by_hand'",
    )
    assert [r.data.params["reason"] for r in runs] == ["broker review: keep the older model"]


def test_promoting_a_missing_version_fails_and_keeps_the_champion(store):
    from mlflow.exceptions import MlflowException

    settings, good, _ = store
    first = train(good, settings)
    with pytest.raises(MlflowException):
        promote(settings, "99", "no such version")
    assert registry.registered_version(settings) == first.model_version


def test_a_champion_that_fails_its_checksum_is_not_replaced_by_the_gate(store):
    """It cannot be measured against the candidate; the gate refuses rather than guessing."""
    settings, good, _ = store
    first = train(good, settings)
    registry.client(settings).delete_model_version_tag(
        settings.model_name, first.model_version, "bundle_sha256"
    )
    second = train(good, settings)
    assert not second.decision.promote
    assert "the champion cannot be compared" in second.decision.reasons[0]
    assert registry.registered_version(settings) == first.model_version
    tags = (
        registry.client(settings).get_model_version(settings.model_name, second.model_version).tags
    )
    assert tags["promotion.decision"] == "kept_champion"
