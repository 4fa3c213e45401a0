"""Where training and promotion runs are tracked: the settings' MLflow experiment."""

from __future__ import annotations

from valuation.infra.settings import Settings


def use_experiment(settings: Settings) -> None:
    import mlflow

    if mlflow.get_experiment_by_name(settings.experiment) is None:
        mlflow.create_experiment(settings.experiment, artifact_location=settings.artifact_location)
    mlflow.set_experiment(settings.experiment)
