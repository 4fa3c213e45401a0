"""Where models live: the MLflow tracking store and registry, and the local bundle cache."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from valuation.infra.settings import Settings
from valuation.storage import bundles
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


def plain_version(version: str | int) -> str:
    """A registry version as MLflow numbers them; anything else (a path, a URI) is refused, so
    nothing but a number ever becomes part of a cache path or a `models:/` URI."""
    text = str(version)
    if not re.fullmatch(r"[1-9][0-9]{0,11}", text):  # as MLflow writes it: no leading zero
        raise ValueError(f"{text!r} is not a registered model version (a number)")
    return text


def bundle_dir(settings: Settings, version: str) -> Path:
    return settings.bundles / f"{settings.model_name}-v{plain_version(version)}"


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
    when present; `bundles.BundleRejected` when the bundle is not the one registered."""
    version = version or registered_version(settings, alias)
    if version is None:
        raise NoModel(
            f"no model registered as {settings.model_name}@{alias or settings.model_alias} at "
            f"{settings.tracking}; train one first: valuation train --data PATH"
        )
    version = plain_version(version)
    what = f"{settings.model_name} version {version}"
    recorded = _recorded_tags(settings, version)
    local = bundle_dir(settings, version)
    if not (local / "bundle.json").is_file():
        _download_bundle(settings, version, local, recorded, what)
    # Checked against the registry's record every time, the cache included: the cache is only a
    # copy, and a file in it may have changed since it was downloaded.
    valuer = bundles.load_checked(local, recorded, what)
    valuer.version = version
    valuer.name = settings.model_name
    return valuer


def _recorded_tags(settings: Settings, version: str) -> dict[str, str]:
    """The version's tags, where training recorded its bundle's digest."""
    from mlflow.exceptions import MlflowException

    missing = NoModel(f"no version {version} of {settings.model_name} at {settings.tracking}")
    if not settings.tracking_uri and not settings.store_path.is_file():
        raise missing  # reading must not create an empty store
    try:
        return dict(client(settings).get_model_version(settings.model_name, version).tags)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise missing from None
        raise


def _download_bundle(
    settings: Settings, version: str, local: Path, recorded: dict[str, str], what: str
) -> None:
    """The registered artifact, checked before it enters the cache, then moved in whole: a
    download cut short leaves no half bundle behind."""
    import mlflow

    local.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        model = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{settings.model_name}/{version}", dst_path=scratch
        )
        downloaded = Path(model) / "artifacts" / "bundle"
        bundles.check(downloaded, recorded, f"{what} (as downloaded from the registry)")
        staging = Path(tempfile.mkdtemp(prefix=f".{local.name}-", dir=local.parent))
        try:
            shutil.copytree(downloaded, staging, dirs_exist_ok=True)
            if local.exists():
                shutil.rmtree(local)  # an incomplete cache (no bundle.json)
            staging.rename(local)
        except OSError:
            if not (local / "bundle.json").is_file():
                raise
            # Another process cached it first; what it wrote is checked before loading anyway.
        finally:
            shutil.rmtree(staging, ignore_errors=True)
