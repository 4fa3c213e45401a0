"""docs/fields.md's recipe, followed: a copy of the code where one field (账号等级, the account's
level) is added to valuation/schema.py and nowhere else. A model trained on sales that carry it
learns it; the listing, the API's description of a listing, the explanation, comparables, the
smoke check and the record all take it; a client or an export that leaves it out still prices."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FIELD = """ACCOUNT_LEVEL = Field(
    "account_level",
    "count",
    ("账号等级", "等级"),
    "The account's level on Kuaishou, 0 to 100.",
    english="account level",
    examples=(5, "12", 30),
    monotone=+1,
    maximum=100,
    similarity_weight=0.5,
    default=0,
    smoke=(1, 5, 40),
)
"""

# Runs inside the copy: sales with a level worth 2% of the price per level, then every part that
# handles a listing. Prints one JSON line of findings.
SCRIPT = r"""
import json, sys
from pathlib import Path

import numpy as np

from data.simulator import simulate_sales, to_marketplace
from valuation.schema import FEATURES, PRICE
from valuation.infra.settings import Settings

home = Path(sys.argv[1])
sales = simulate_sales(2500, seed=3)
level = np.random.default_rng(3).integers(0, 50, len(sales))
sales[PRICE.name] = np.round(sales[PRICE.name] * (1 + 0.02 * level))
export = to_marketplace(sales, seed=3)
export["账号等级"] = level
export.to_csv(home / "sales.csv", index=False)
without = export.drop(columns=["账号等级", "成交价"]).head(50)
without.to_csv(home / "old-listings.csv", index=False)

from training.pipeline import train
from valuation.storage.registry import load_valuer

settings = Settings(home=home, tracking_uri=None, search_trials=1, cv_folds=2)
train(home / "sales.csv", settings)
valuer = load_valuer(settings)

from api.schemas import ListingIn
from valuation.encoding import FEATURE_NAMES
from valuation.listing import Listing
from valuation.loading import load_listings
from valuation.reasons import explain
from valuation.storage.records import quotes, sales as sold
from valuation.smoke import SMOKE_LISTINGS, smoke_problems

base = {"fans": "13.13W", "violations": "无违规", "live_permission": "未开通",
        "verified": "未认证", "category": "美食"}
low = valuer.value(Listing.parse({**base, "账号等级": "0"})).price_estimate
high = valuer.value(Listing.parse({**base, "account_level": 45})).price_estimate
left_out = valuer.value(Listing.parse(base)).price_estimate
listing = Listing.parse({**base, "account_level": 45})
steps = explain(valuer, listing, high).steps
schema = ListingIn.model_json_schema()
loaded = load_listings(home / "old-listings.csv", require_price=False)
print(json.dumps({
    "features": list(FEATURE_NAMES),
    "model_inputs": valuer.boosters["point"].num_feature(),
    "low": low, "high": high, "left_out": left_out,
    "steps": [step.feature for step in steps],
    "required": schema["required"],
    "label": schema["properties"]["account_level"]["x-label"],
    "comparables": [c.listing.account_level for c in valuer.comparables.find(listing, 3)],
    "smoke": [s.account_level for s in SMOKE_LISTINGS],
    "smoke_problems": smoke_problems(valuer),
    "record_columns": [c.name for c in (*quotes.columns, *sold.columns)],
    "old_export": {"rows": len(loaded.listings), "rejects": len(loaded.rejects),
                   "levels": sorted(set(loaded.listings["account_level"].tolist()))},
}, ensure_ascii=False))
"""


def _copy_with_the_field(destination: Path) -> None:
    for package in ("valuation", "training", "api", "data"):
        shutil.copytree(
            ROOT / package, destination / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    schema = destination / "valuation" / "schema.py"
    text = schema.read_text(encoding="utf-8")
    for old, new in (
        ("PRICE = Field(", FIELD + "PRICE = Field("),
        ("VERIFIED, CATEGORY)\n", "VERIFIED, CATEGORY, ACCOUNT_LEVEL)\n"),
        ("(FANS, CATEGORY, VIOLATIONS", "(FANS, CATEGORY, ACCOUNT_LEVEL, VIOLATIONS"),
    ):
        assert text.count(old) == 1, f"the recipe's edit no longer applies: {old!r}"
        text = text.replace(old, new)
    schema.write_text(text, encoding="utf-8")


@pytest.fixture(scope="module")
def findings(tmp_path_factory):
    code = tmp_path_factory.mktemp("copy")
    home = tmp_path_factory.mktemp("home")
    _copy_with_the_field(code)
    env = {**os.environ, "PYTHONPATH": str(code), "VALUATION_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(home)],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_model_learns_the_new_field_in_its_market_direction(findings):
    assert findings["features"][-1] == "account_level"
    assert findings["model_inputs"] == len(findings["features"])
    assert findings["high"] > findings["low"] * 1.3  # 45 levels at 2% each: about 2.4x


def test_a_listing_that_leaves_it_out_is_read_with_its_default(findings):
    assert findings["left_out"] == findings["low"]
    assert findings["old_export"] == {"rows": 50, "rejects": 0, "levels": [0]}


def test_the_api_explanation_comparables_smoke_and_record_take_it(findings):
    assert "account_level" not in findings["required"]  # old clients keep working
    assert findings["label"] == "账号等级 · account level"
    assert findings["steps"][:3] == ["fans", "category", "account_level"]
    assert len(findings["comparables"]) == 3
    assert findings["smoke"] == [1, 5, 40]
    assert findings["smoke_problems"] == []
    assert "account_level" in findings["record_columns"]
