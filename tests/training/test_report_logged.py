"""Each training run carries its evaluation report; `report` rewrites it for any version."""

from __future__ import annotations

import pandas as pd

from cli import main
from training.report import report
from valuation.storage import registry


def test_the_run_logs_the_report_and_the_holdout_predictions(trained, settings):
    client = registry.client(settings)
    listed = {a.path for a in client.list_artifacts(trained.run_id, "report")}
    assert "report/index.html" in listed
    assert {f"report/{name}.png" for name in ("predicted_vs_actual", "coverage_by_band")} <= listed
    assert [a.path for a in client.list_artifacts(trained.run_id, "evaluation")] == [
        "evaluation/holdout.parquet"
    ]


def test_report_rewrites_the_champions_report(trained, settings, tmp_path):
    page = report(settings, tmp_path / "out")
    text = page.read_text(encoding="utf-8")
    assert f"version {trained.model_version}" in text
    assert f"{trained.metrics['model']['mdape']:.1%}" in text
    assert (page.parent / "coverage_by_band.png").stat().st_size > 1000


def test_report_command(trained, settings, tmp_path, monkeypatch, capsys):
    from valuation.infra.settings import get_settings

    monkeypatch.setenv("VALUATION_HOME", str(settings.home))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    try:
        assert main(["report", "--out", str(tmp_path / "r")]) == 0
        assert (tmp_path / "r" / "index.html").is_file()
        assert main(["report", "--version", "999", "--out", str(tmp_path / "x")]) == 1
        assert "999" in capsys.readouterr().err
    finally:
        get_settings.cache_clear()


def test_holdout_predictions_match_the_metrics(trained, settings, tmp_path):
    import mlflow

    local = mlflow.artifacts.download_artifacts(
        run_id=trained.run_id, artifact_path="evaluation/holdout.parquet", dst_path=str(tmp_path)
    )
    predictions = pd.read_parquet(local)
    relative = (predictions["price_estimate"] - predictions["price"]).abs() / predictions["price"]
    assert relative.median() == trained.metrics["model"]["mdape"]
