"""Where models live: the MLflow tracking store and registry, and the local bundle cache.

Resolving the champion is read straight from the embedded SQLite store (MLflow's own tables, read
only) when that is the store: the same rows MLflow reads, without importing MLflow (seconds on
these machines) for a one-listing `valuation quote`. Any other store, or a store whose tables
are not as expected, is read through MLflow's client.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import tempfile
from contextlib import closing
from pathlib import Path

from valuation.infra.settings import Settings
from valuation.storage import bundles, compiled_cache
from valuation.valuer import BOOSTERS, Valuer

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
    if not settings.tracking_uri and not settings.store_path.is_file():
        return None  # reading must not create an empty store (nor MLflow's chatter about it)
    alias = alias or settings.model_alias
    try:
        rows = _read_store(
            settings,
            "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?",
            (settings.model_name, alias),
        )
        return str(rows[0][0]) if rows else None
    except _NotReadable:
        pass
    from mlflow.exceptions import MlflowException

    try:
        model = client(settings).get_model_version_by_alias(settings.model_name, alias)
    except MlflowException:
        return None
    return str(model.version)


def load_valuer(settings: Settings, alias: str | None = None, version: str | None = None) -> Valuer:
    """The valuer behind `models:/<name>@<alias>` (or that `version`), from the local bundle cache
    when present; `bundles.BundleRejected` when the bundle is not the one registered. Its trees
    are compiled for this machine (cached beside the bundle, checked against the registry's
    record) unless `compiled_trees` is off or nothing compiles here."""
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
    if "promotion.decision" in recorded:
        valuer.promotion = {
            "decision": recorded["promotion.decision"],
            "reasons": recorded.get("promotion.reasons", ""),
        }
    if settings.compiled_trees:
        attach_compiled(settings, valuer, local, recorded)
    return valuer


def attach_compiled(settings: Settings, valuer: Valuer, local: Path, recorded: dict) -> None:
    """`valuer` prices with its trees compiled for this machine: from the cache beside its bundle
    when the registry vouches for it, else compiled now and recorded on the version."""

    def record(tag: str, value: str) -> None:
        client(settings).set_model_version_tag(settings.model_name, valuer.version, tag, value)

    models = {name: valuer.model_text(name) for name in BOOSTERS}
    valuer.use_compiled(compiled_cache.load(local, models, recorded, record))


def _recorded_tags(settings: Settings, version: str) -> dict[str, str]:
    """The version's tags, where training recorded its bundle's digest."""
    missing = NoModel(f"no version {version} of {settings.model_name} at {settings.tracking}")
    if not settings.tracking_uri and not settings.store_path.is_file():
        raise missing  # reading must not create an empty store
    try:
        found = _read_store(
            settings,
            "SELECT version FROM model_versions WHERE name = ? AND version = ? "
            "AND current_stage != 'Deleted_Internal'",
            (settings.model_name, int(version)),
        )
        if not found:
            raise missing
        return dict(
            _read_store(
                settings,
                'SELECT "key", value FROM model_version_tags WHERE name = ? AND version = ?',
                (settings.model_name, int(version)),
            )
        )
    except _NotReadable:
        pass
    from mlflow.exceptions import MlflowException

    try:
        return dict(client(settings).get_model_version(settings.model_name, version).tags)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise missing from None
        raise


class _NotReadable(Exception):
    """The store is not the embedded SQLite file, or not as expected: ask MLflow's client."""


def _read_store(settings: Settings, query: str, parameters: tuple) -> list[tuple]:
    """Rows of a query on the embedded store, opened read-only, in MLflow's default workspace."""
    uri = settings.tracking
    if not uri.startswith("sqlite:///"):
        raise _NotReadable(uri)
    path = Path(uri.removeprefix("sqlite:///"))
    if not path.is_file():
        raise _NotReadable(uri)
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        with closing(connection):
            tables = ("registered_model_aliases", "model_versions", "model_version_tags")
            if all(_has_workspaces(connection, table) for table in tables):
                query += " AND workspace = 'default'"
            return connection.execute(query, parameters).fetchall()
    except sqlite3.Error as error:
        raise _NotReadable(str(error)) from None


def _has_workspaces(connection: sqlite3.Connection, table: str) -> bool:
    columns = [row[1] for row in connection.execute(f"PRAGMA table_info({table})")]
    if not columns:
        raise _NotReadable(f"no table {table}")
    return "workspace" in columns


def _download_bundle(
    settings: Settings, version: str, local: Path, recorded: dict[str, str], what: str
) -> None:
    """The registered artifact, checked before it enters the cache, then moved in whole: a
    download cut short leaves no half bundle behind."""
    import mlflow

    client(settings)  # MLflow's registry is process state: this one's, not the last one used
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
