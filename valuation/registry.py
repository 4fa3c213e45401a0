"""Where models live: the MLflow tracking store and registry, and the local bundle cache."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from valuation.settings import Settings
from valuation.valuer import Valuer

_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


class NoModel(LookupError):
    """No model is registered under the configured name and alias."""


def client(settings: Settings):
    import mlflow
    from mlflow import MlflowClient

    # MLflow's setters also write MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI into os.environ, where
    # later Settings (and child processes) would take them for a team's server: keep them out.
    saved = {name: os.environ.get(name) for name in _URI_VARIABLES}
    mlflow.set_tracking_uri(settings.tracking)
    mlflow.set_registry_uri(settings.tracking)
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    return MlflowClient(tracking_uri=settings.tracking, registry_uri=settings.tracking)


def bundle_dir(settings: Settings, version: str) -> Path:
    return settings.bundles / f"{settings.model_name}-v{version}"


def registered_version(settings: Settings, alias: str | None = None) -> str | None:
    """The version behind `<name>@<alias>`, or None when there is none (or no store at all)."""
    from mlflow.exceptions import MlflowException

    if not settings.tracking_uri and not settings.store_path.is_file():
        return None  # reading must not create an empty store (nor MLflow's chatter about it)
    alias = alias or settings.model_alias
    try:
        model = client(settings).get_model_version_by_alias(settings.model_name, alias)
    except MlflowException:
        return None
    return str(model.version)


def load_valuer(settings: Settings, alias: str | None = None, version: str | None = None) -> Valuer:
    """The valuer behind `models:/<name>@<alias>` (or that `version`), from the local bundle cache
    when present."""
    version = version or registered_version(settings, alias)
    if version is None:
        raise NoModel(
            f"no model registered as {settings.model_name}@{alias or settings.model_alias} at "
            f"{settings.tracking}; train one first: valuation train --data PATH"
        )
    local = bundle_dir(settings, version)
    if not (local / "bundle.json").is_file():
        _download_bundle(settings, version, local)
    valuer = Valuer.load(local)
    valuer.version = version
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
