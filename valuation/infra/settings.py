"""Service settings: one class, read lazily from `VALUATION_*` variables (and MLflow's own)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
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
    search_trials: int | None = Field(default=None, ge=1)
    """How many of the point model's candidate configurations are cross-fitted, the default's
    first (unset: all of them)."""
    cv_folds: int = Field(default=5, ge=2)
    seed: int = 0
    admin_token: SecretStr | None = None
    """A bearer token that counts as an admin API key (named `admin-token`): the way in before
    the first admin key exists (`valuation keys create --role admin` needs no server). Unset:
    only the record's keys are accepted."""
    quote_rate: float = Field(default=20.0, ge=0)
    """Quotes, batches and appraisals a second per client address without a key (bursts of
    `quote_burst`); 0 turns the limits off. Each server worker counts on its own."""
    quote_burst: int = Field(default=100, ge=1)
    key_quote_rate: float = Field(default=500.0, gt=0)
    """The same per API key, for callers that send one."""
    key_quote_burst: int = Field(default=2000, ge=1)
    quotes_need_key: bool = False
    """A private deployment: quotes and appraisals need a key (any role). Off: they are public,
    as the sellers' page needs."""
    reload_seconds: float = Field(default=0, ge=0)
    """Every this-many seconds the server checks the registry's champion and reloads when it
    moved; 0 = only on `POST /admin/reload`."""
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """Larger request bodies are refused (413). A full batch of 10,000 listings in marketplace
    spellings with listing ids is 1.7-2.7 MB as JSON (escaped, indented or not): 4 MiB holds it
    with room to spare, and little more."""
    database_url: str | None = None
    """Where quotes and sales are recorded (SQLAlchemy URL, e.g. postgresql+psycopg://...);
    unset means the embedded SQLite file `records.db` in `home`."""
    record_timeout: float = Field(default=10.0, gt=0)
    """Seconds an answer may wait for its record's commit; then it is a 503, not a 200."""
    live_window: int = Field(default=500, ge=1)
    """Live accuracy is the MdAPE of the last this-many reported sales."""
    compiled_trees: bool = True
    """Price with the models' trees compiled to machine code (lleaves), cached beside each bundle:
    the same prices as LightGBM, faster. Off, or where nothing compiles: LightGBM prices."""
    drift_window: int = Field(default=5000, ge=1)
    """Input drift compares the last this-many listings quoted with the training data."""

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
    def records(self) -> str:
        return self.database_url or f"sqlite:///{self.home.resolve() / 'records.db'}"

    @property
    def bundles(self) -> Path:
        return self.home.resolve() / "models"


@lru_cache
def get_settings() -> Settings:
    return Settings()
