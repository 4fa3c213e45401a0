"""Which version serves: the gate's decision on record, the champion measured on a candidate's
holdout, and promotion by hand."""

from __future__ import annotations

from training import steps
from training.tracking import use_experiment
from valuation.infra.settings import Settings
from valuation.storage import registry


def champion_errors(settings: Settings, split: steps.Split, card: dict) -> dict[str, float] | None:
    """The current champion measured on the candidate's holdout, or None without a champion.

    A champion is served fitted on all of its sales: trained on this very export with the same
    split, it has seen this holdout, and its own holdout figures (from its fit that did not see
    it) are the honest ones to compare with. On other data it is measured on this holdout, where
    any sale it trained on flatters it: the gate then leans towards keeping it."""
    try:
        champion = registry.load_valuer(settings)
    except registry.NoModel:
        return None
    same = ("data_sha256", "split_seed", "holdout_share")
    if all(getattr(champion.card, key) == card[key] for key in same):
        return champion.card.holdout_metrics["model"]
    return steps.champion_errors(champion, split)


def record_decision(client, settings: Settings, version: str, decision: steps.Decision) -> None:
    """Every decision is on record: on the run, as an artifact, and on the model version."""
    import mlflow

    outcome = "kept_champion"
    if decision.promote:
        outcome = "promoted_with_warning" if decision.warning else "promoted"
    mlflow.set_tags(
        {"promotion.decision": outcome, "promotion.reasons": "; ".join(decision.reasons)}
    )
    mlflow.log_dict(
        {"version": version, "decision": outcome, **decision.__dict__}, "promotion/decision.json"
    )
    client.set_model_version_tag(settings.model_name, version, "promotion.decision", outcome)
    client.set_model_version_tag(
        settings.model_name, version, "promotion.reasons", "; ".join(decision.reasons)
    )


def promote(settings: Settings, version: str, reason: str) -> str | None:
    """Points `champion` at `version` by hand, whatever the gate said; the reason is recorded in
    MLflow (a run of its own and tags on the version). Returns the previous champion's version."""
    import mlflow

    client = registry.client(settings)
    client.get_model_version(settings.model_name, version)  # raises when there is no such version
    previous = registry.registered_version(settings)
    use_experiment(settings)
    with mlflow.start_run(run_name=f"promote-v{version}"):
        mlflow.log_params({"version": version, "previous_champion": previous, "reason": reason})
        mlflow.set_tags({"promotion.decision": "promoted_by_hand", "promotion.reasons": reason})
    client.set_model_version_tag(
        settings.model_name, version, "promotion.decision", "promoted_by_hand"
    )
    client.set_model_version_tag(settings.model_name, version, "promotion.reasons", reason)
    client.set_registered_model_alias(settings.model_name, settings.model_alias, version)
    return previous
