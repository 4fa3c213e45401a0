"""The registered model serves Spark users too: `mlflow.pyfunc.spark_udf` on a local Spark gives
the service's prices."""

from __future__ import annotations

import os
import shutil
import sys

import pandas as pd
import pytest

from valuation.listing import Listing
from valuation.storage.registry import load_valuer

pytestmark = pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs a Java runtime")

ROWS = pd.DataFrame(
    [
        {
            "fans": "13.13W",
            "violations": "有违规",
            "live_permission": "未开通",
            "verified": "已认证",
            "category": "自媒体",
        },
        {
            "fans": "5000",
            "violations": "no",
            "live_permission": "yes",
            "verified": "0",
            "category": "美食",
        },
        {
            "fans": "约10万",
            "violations": "no",
            "live_permission": "yes",
            "verified": "0",
            "category": "美食",
        },
    ]
)
RESULT = "price_estimate double, price_low double, price_high double, known_category boolean, error string"


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    os.environ["PYSPARK_PYTHON"] = sys.executable  # the workers need this venv's packages
    session = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    yield session
    session.stop()


def test_spark_udf_gives_the_service_prices(trained, settings, spark):
    import mlflow

    from valuation.storage import registry

    registry.client(settings)  # points MLflow at the test's store
    udf = mlflow.pyfunc.spark_udf(
        spark,
        f"models:/{settings.model_name}@{settings.model_alias}",
        env_manager="local",
        result_type=RESULT,
    )
    frame = spark.createDataFrame(ROWS)
    answers = frame.withColumn("p", udf(*[frame[c] for c in ROWS.columns])).select("p.*").toPandas()

    valuer = load_valuer(settings)
    for i in range(2):
        expected = valuer.value(Listing.parse(ROWS.iloc[i].to_dict()))
        assert answers.loc[i, "price_estimate"] == expected.price_estimate
        assert answers.loc[i, "price_low"] == expected.price_low
        assert answers.loc[i, "price_high"] == expected.price_high
    assert pd.isna(answers.loc[2, "price_estimate"])
    assert "fans" in answers.loc[2, "error"]
