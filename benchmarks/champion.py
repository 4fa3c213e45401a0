"""A throwaway project folder with a champion trained on the committed (simulated) sample, for
benchmarks that must not touch the real store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def train_champion(home: str) -> dict[str, str]:
    """Trains in `home` (2 search trials) and returns the environment that points child
    processes at it: no inherited MLflow URIs, this venv's tools first on PATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    }
    env |= {"VALUATION_HOME": home, "PATH": f"{BIN}:{os.environ['PATH']}"}
    subprocess.run(
        [BIN / "valuation", "train", "--data", ROOT / "data/sample_sales.csv", "--trials", "2"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return env
