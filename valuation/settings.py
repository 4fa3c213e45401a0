"""Service settings: one class, read lazily from `VALUATION_*` variables (and MLflow's own)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VALUATION_", extra="ignore", populate_by_name=True
    )

    home: Path = Field(default_factory=Path.cwd)
    """The project folder: the embedded MLflow store and the exported bundles live under it."""
    model_name: str = "kuaishou-account-price"
    model_alias: str = "champion"
    experiment: str = "kuaishou-account-price"
    tracking_uri: str | None = Field(default=None, validation_alias="MLFLOW_TRACKING_URI")
    """A team's MLflow server; unset means the embedded SQLite store in `home`."""
    max_reject_share: float = Field(default=0.05, ge=0.0, le=1.0)
    holdout_share: float = Field(default=0.2, gt=0.0, lt=0.9)
    search_trials: int = Field(default=8, ge=1)
    cv_folds: int = Field(default=3, ge=2)
    seed: int = 0

    @property
    def store_path(self) -> Path:
        """The embedded SQLite store, used when no tracking server is configured."""
        return self.home.resolve() / "mlflow.db"

    @property
    def tracking(self) -> str:
        return self.tracking_uri or f"sqlite:///{self.store_path}"

    @property
    def artifact_location(self) -> str | None:
        """Local artifacts at a fixed place, whatever the working directory of a later process."""
        if self.tracking_uri:
            return None  # a tracking server decides where its artifacts go
        return (self.home.resolve() / "mlartifacts").as_uri()

    @property
    def bundles(self) -> Path:
        return self.home.resolve() / "models"


@lru_cache
def get_settings() -> Settings:
    return Settings()
