"""Where models live: the MLflow tracking store and registry, and the local bundle cache."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from valuation.settings import Settings
from valuation.valuer import Valuer


class NoModel(LookupError):
    """No model is registered under the configured name and alias."""


def client(settings: Settings):
    import mlflow
    from mlflow import MlflowClient

    mlflow.set_tracking_uri(settings.tracking)
    mlflow.set_registry_uri(settings.tracking)
    return MlflowClient(tracking_uri=settings.tracking, registry_uri=settings.tracking)


def bundle_dir(settings: Settings, version: str) -> Path:
    return settings.bundles / f"{settings.model_name}-v{version}"


def load_valuer(settings: Settings, alias: str | None = None) -> Valuer:
    """The valuer behind `models:/<name>@<alias>`, from the local bundle cache when present."""
    from mlflow.exceptions import MlflowException

    alias = alias or settings.model_alias
    registry = client(settings)
    try:
        version = registry.get_model_version_by_alias(settings.model_name, alias).version
    except MlflowException as error:
        raise NoModel(
            f"no model registered as {settings.model_name}@{alias} at {settings.tracking}; "
            "train one first: valuation train --data PATH"
        ) from error
    local = bundle_dir(settings, version)
    if not (local / "bundle.json").is_file():
        _download_bundle(settings, version, local)
    valuer = Valuer.load(local)
    valuer.version = str(version)
    valuer.card["model_name"] = settings.model_name
    return valuer


def _download_bundle(settings: Settings, version: str, local: Path) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as scratch:
        model = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{settings.model_name}/{version}", dst_path=scratch
        )
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(Path(model) / "artifacts" / "bundle", local, dirs_exist_ok=True)
