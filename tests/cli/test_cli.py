"""The `valuation` command line: in process through `cli.main`, and as the installed console script."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import cli
from data.simulator import generate
from valuation.infra.settings import Settings, get_settings
from valuation.listing import Listing
from valuation.loading import parse_listings, read_export, rejects_path, write_table
from valuation.storage import registry

SCRIPT = Path(sys.executable).parent / "valuation"
QUOTE = [
    "quote",
    "--fans",
    "13.13W",
    "--violations",
    "有违规",
    "--live-permission",
    "未开通",
    "--verified",
    "已认证",
    "--category",
    "自媒体",
]
QUOTED = {
    "fans": "13.13W",
    "violations": "有违规",
    "live_permission": "未开通",
    "verified": "已认证",
    "category": "自媒体",
}


@pytest.fixture
def champion_home(trained, settings, use_home) -> Path:
    """The session's store, where `trained` registered the champion."""
    use_home(settings.home)
    return settings.home


def _one_error_line(err: str, command: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"valuation {command}: error: "), lines[0]
    assert "Traceback" not in err
    return lines[0]


# generate ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_generate_writes_the_rows_asked_for(tmp_path, capsys, suffix):
    out = tmp_path / "nested" / f"sales{suffix}"
    assert cli.main(["generate", "--rows", "120", "--out", str(out), "--seed", "3"]) == 0
    table = read_export(out)
    assert len(table) == 120
    assert {"粉丝数量", "成交价"} <= set(table.columns)
    assert f"wrote 120 simulated sales to {out}" in capsys.readouterr().out


def test_generate_with_truth_adds_the_true_quantiles(tmp_path):
    out = tmp_path / "sales.parquet"
    assert cli.main(["generate", "--rows", "30", "--out", str(out), "--truth"]) == 0
    table = pd.read_parquet(out)
    assert {"true_q10", "true_q50", "true_q90"} <= set(table.columns)
    assert (table["true_q10"] <= table["true_q90"]).all()


def test_generate_refuses_an_unsupported_suffix(tmp_path, capsys):
    out = tmp_path / "sales.xlsx"
    assert cli.main(["generate", "--rows", "10", "--out", str(out)]) == cli.EXIT_FAILED
    assert ".csv or .parquet" in _one_error_line(capsys.readouterr().err, "generate")
    assert not out.exists()


# train ---------------------------------------------------------------------------------------


def test_train_prints_the_holdout_table_then_keeps_the_champion(tmp_path, capsys, use_home):
    home, data = tmp_path / "home", tmp_path / "sales.csv"
    sales = generate(800, seed=21, bad_share=0.0)
    sales.loc[sales.index[::100], "成交价"] = "50万"  # 8 prices far beyond any sale's
    write_table(sales, data)
    use_home(home, trials=1)

    assert cli.main(["train", "--data", str(data), "--if-no-champion"]) == 0
    out = capsys.readouterr().out
    said = re.search(r"(\d+) sales priced 3.7x or more away .* price typos: not learned from", out)
    assert said and int(said[1]) >= 8
    typos = pd.read_csv(home / "models" / "sales.typos.csv")  # said where: "listed in ..."
    assert f"listed in {home / 'models' / 'sales.typos.csv'}" in out and len(typos) == int(said[1])
    planted = typos[typos["line"].isin(sales.index[::100] + 2)]
    assert len(planted) == 8 and (planted["price"] == 500_000).all()
    assert "holdout (time split):" in out
    assert "MdAPE" in out and "RMSLE" in out
    for who in ("model", "baseline_fans_band", "baseline_linear"):
        assert any(line.startswith(who) and "%" in line for line in out.splitlines()), who
    assert "80% range held" in out
    assert "model version 1" in out
    assert out.count("CV L1") == 1, "VALUATION_SEARCH_TRIALS=1 is one search trial"

    assert cli.main(["train", "--data", str(data), "--if-no-champion"]) == 0
    again = capsys.readouterr().out
    assert "is registered: not training" in again
    assert "holdout" not in again
    client = registry.client(Settings(home=home, tracking_uri=None))
    versions = client.search_model_versions("name = 'kuaishou-account-price'")
    assert [str(v.version) for v in versions] == ["1"]
    run = client.get_run(versions[0].run_id)
    assert run.data.params["screened_typos"] == said[1]


def test_train_refuses_an_export_with_too_many_unreadable_rows(tmp_path, capsys, use_home):
    data = tmp_path / "sales.csv"
    write_table(generate(200, seed=2, bad_share=0.1), data)
    use_home(tmp_path / "home")
    code = cli.main(["train", "--data", str(data), "--max-reject-share", "0.01"])
    assert code == cli.EXIT_FAILED
    captured = capsys.readouterr()
    assert "could not be read" in _one_error_line(captured.err, "train")
    assert "rejected" in captured.out, "the rejects are listed before the refusal"


@pytest.mark.parametrize("name", ["missing.csv", "missing.parquet"])
def test_train_on_a_missing_file_is_one_line(tmp_path, capsys, use_home, name):
    use_home(tmp_path / "home")
    assert cli.main(["train", "--data", str(tmp_path / name)]) == cli.EXIT_FAILED
    assert "no such file" in _one_error_line(capsys.readouterr().err, "train")


def test_train_on_several_files_names_the_one_that_cannot_be_read(tmp_path, capsys, use_home):
    write_table(generate(100, seed=2), tmp_path / "2026-01.csv")
    use_home(tmp_path / "home")
    given = [str(tmp_path / "2026-01.csv"), str(tmp_path / "2026-02.csv")]
    assert cli.main(["train", "--data", *given]) == cli.EXIT_FAILED
    assert "2026-02.csv: no such file" in _one_error_line(capsys.readouterr().err, "train")
    (tmp_path / "empty").mkdir()
    assert cli.main(["train", "--data", str(tmp_path / "empty")]) == cli.EXIT_FAILED
    assert "without a CSV" in _one_error_line(capsys.readouterr().err, "train")
    english = generate(100, seed=3).drop(columns=["成交价"])
    write_table(english, tmp_path / "2026-02.csv")  # no price: which file is said
    assert cli.main(["train", "--data", *given, "--engine", "dask"]) == cli.EXIT_FAILED
    said = _one_error_line(capsys.readouterr().err, "train")
    assert "2026-02.csv: " in said and "missing column" in said


@pytest.mark.parametrize(
    ("name", "said"),
    [("sales.json", "unsupported file type"), ("sales.xls", "not an Excel workbook")],
)
def test_train_on_an_unsupported_file_is_one_line(tmp_path, capsys, use_home, name, said):
    data = tmp_path / name
    data.write_text("not a table")
    use_home(tmp_path / "home")
    assert cli.main(["train", "--data", str(data)]) == cli.EXIT_FAILED
    assert said in _one_error_line(capsys.readouterr().err, "train")


# quote ---------------------------------------------------------------------------------------


def test_quote_prints_the_estimate_of_the_champion(champion_home, settings, trained, capsys):
    assert cli.main(QUOTE) == 0
    out = capsys.readouterr().out
    valuation = registry.load_valuer(settings).value(Listing.parse(QUOTED))
    assert f"estimate  ¥{valuation.price_estimate:,.0f}" in out
    assert f"¥{valuation.price_low:,.0f} - ¥{valuation.price_high:,.0f}" in out
    assert f"version {trained.model_version}" in out


def test_quote_json_is_the_in_process_valuation(champion_home, settings, trained, capsys):
    assert cli.main([*QUOTE, "--json"]) == 0
    answer = json.loads(capsys.readouterr().out)
    valuation = registry.load_valuer(settings).value(Listing.parse(QUOTED))
    assert answer["price_low"] <= answer["price_estimate"] <= answer["price_high"]
    assert answer["price_estimate"] == valuation.price_estimate
    assert answer["price_low"] == valuation.price_low
    assert answer["price_high"] == valuation.price_high
    assert answer["model"]["version"] == trained.model_version  # the API's shape
    assert answer["known_category"] is True
    assert answer["currency"] == "CNY"
    assert answer["notes"] == []


def test_quote_json_is_the_apis_answer(champion_home, settings, capsys):
    """One answer shape, written once (`valuation.quoting`): the CLI's --json is what
    POST /v1/quote answers for the same listing, reasons and comparable sales included."""
    from fastapi.testclient import TestClient

    from api.main import create_app

    assert cli.main([*QUOTE, "--json", "--explain", "--comparables", "2", "--advice"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with TestClient(create_app(settings)) as client:
        answered = client.post("/v1/quote?explain=true&comparables=2&advice=true", json=QUOTED)
    assert answered.status_code == 200
    assert printed == json.loads(json.dumps(answered.json(), default=str))
    assert set(printed) >= {"price_estimate", "model", "as_of", "reasons", "comparables", "advice"}


def test_quote_notes_an_unknown_category(champion_home, capsys):
    args = [*QUOTE[:-1], "没听过的类目", "--json"]
    assert cli.main(args) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["known_category"] is False
    assert len(answer["notes"]) == 1


def test_quote_with_a_bad_fans_spelling_is_one_line(champion_home, capsys):
    args = [*QUOTE]
    args[args.index("13.13W")] = "十万"
    assert cli.main(args) == cli.EXIT_FAILED
    line = _one_error_line(capsys.readouterr().err, "quote")
    assert "fans" in line and "十万" in line


def test_quote_without_a_registered_model_is_one_line(tmp_path, capsys, use_home):
    home = tmp_path / "home"
    home.mkdir()
    use_home(home)
    registry.client(get_settings()).search_registered_models()  # the empty store exists
    capsys.readouterr()
    assert cli.main(QUOTE) == cli.EXIT_FAILED
    assert "no model registered" in _one_error_line(capsys.readouterr().err, "quote")


# batch ---------------------------------------------------------------------------------------


def test_batch_prices_every_readable_row_and_lists_the_rest(
    champion_home, settings, tmp_path, capsys
):
    source = tmp_path / "listings.csv"
    write_table(generate(80, seed=12, bad_share=0.15).drop(columns="成交价"), source)
    output = tmp_path / "out" / "prices.parquet"
    assert cli.main(["batch", "--input", str(source), "--output", str(output)]) == 0

    raw = read_export(source)
    priced = pd.read_parquet(output)
    rejects = read_export(rejects_path(output))
    assert len(rejects) > 0
    assert len(priced) + len(rejects) == len(raw) == 80
    new = ["price_estimate", "price_low", "price_high", "model_version", "as_of"]
    assert list(priced.columns) == [*raw.columns, *new]
    market_date = registry.load_valuer(settings).market_date
    assert set(priced["as_of"]) == {market_date.isoformat()}  # the sample is dated
    assert (priced["price_low"] <= priced["price_estimate"]).all()
    assert (priced["price_estimate"] <= priced["price_high"]).all()

    readable = parse_listings(raw, require_price=False)
    expected = registry.load_valuer(settings).value_frame(readable.listings)
    assert priced["price_estimate"].tolist() == expected["price_estimate"].tolist()
    assert priced["账号ID"].tolist() == raw.loc[readable.listings.index, "账号ID"].tolist()
    assert set(priced["model_version"]) == {registry.load_valuer(settings).version}
    out = capsys.readouterr().out
    assert f"priced {len(priced)} of 80 listings" in out


def test_batch_reads_an_excel_workbook(champion_home, settings, tmp_path):
    """A catalogue exported as .xlsx or as Excel 97-2003's .xls: priced as the same rows in a
    CSV are."""
    import xlwt

    listings = generate(40, seed=13, bad_share=0.0).drop(columns="成交价")
    csv_source, xlsx_source = tmp_path / "listings.csv", tmp_path / "listings.xlsx"
    write_table(listings, csv_source)
    listings.to_excel(xlsx_source, index=False)
    book = xlwt.Workbook()
    sheet = book.add_sheet("listings")
    for r, row in enumerate([list(listings.columns), *listings.to_numpy().tolist()]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    xls_source = tmp_path / "listings.xls"
    book.save(str(xls_source))
    for source in (csv_source, xlsx_source, xls_source):
        output = tmp_path / f"{source.suffix[1:]}.csv"
        assert cli.main(["batch", "--input", str(source), "--output", str(output)]) == 0
    from_csv = pd.read_csv(tmp_path / "csv.csv")
    for workbook in ("xlsx", "xls"):
        from_workbook = pd.read_csv(tmp_path / f"{workbook}.csv")
        assert len(from_workbook) == 40
        for column in ("price_estimate", "price_low", "price_high"):
            assert from_workbook[column].tolist() == from_csv[column].tolist()


def test_batch_as_of_an_earlier_date_values_every_row_then(champion_home, settings, tmp_path):
    source = tmp_path / "listings.csv"
    write_table(generate(40, seed=13, bad_share=0.0).drop(columns="成交价"), source)
    valuer = registry.load_valuer(settings)
    earlier = valuer.market.start + dt.timedelta(days=45)
    output = tmp_path / "then.csv"
    argv = ["batch", "--input", str(source), "--output", str(output), "--as-of", str(earlier)]
    assert cli.main(argv) == 0
    priced = pd.read_csv(output)
    readable = parse_listings(read_export(source), require_price=False).listings
    expected = valuer.value_frame(readable, as_of=earlier)
    assert priced["price_estimate"].tolist() == expected["price_estimate"].tolist()
    assert set(priced["as_of"]) == {earlier.isoformat()}


def test_batch_after_the_market_date_is_refused_in_one_line(
    champion_home, settings, tmp_path, capsys
):
    source = tmp_path / "listings.csv"
    write_table(generate(5, seed=1, bad_share=0.0), source)
    later = registry.load_valuer(settings).market_date + dt.timedelta(days=1)
    output = tmp_path / "o.csv"
    argv = ["batch", "--input", str(source), "--output", str(output), "--as-of", str(later)]
    assert cli.main(argv) == cli.EXIT_FAILED
    assert "after the market date" in _one_error_line(capsys.readouterr().err, "batch")
    assert not output.exists()


def test_quote_as_of_says_the_date_it_values_at(champion_home, settings, capsys):
    valuer = registry.load_valuer(settings)
    earlier = valuer.market.start + dt.timedelta(days=45)
    assert cli.main([*QUOTE, "--json", "--as-of", str(earlier)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["as_of"] == str(earlier)
    assert answer["market_date"] == str(valuer.market_date)
    expected = valuer.value(Listing.parse(QUOTED), as_of=earlier)
    assert answer["price_estimate"] == expected.price_estimate
    later = valuer.market_date + dt.timedelta(days=1)
    assert cli.main([*QUOTE, "--as-of", str(later)]) == cli.EXIT_FAILED
    assert "after the market date" in _one_error_line(capsys.readouterr().err, "quote")


def test_batch_on_a_missing_input_is_one_line(champion_home, tmp_path, capsys):
    args = ["batch", "--input", str(tmp_path / "nope.csv"), "--output", str(tmp_path / "o.csv")]
    assert cli.main(args) == cli.EXIT_FAILED
    assert "no such file" in _one_error_line(capsys.readouterr().err, "batch")
    assert not (tmp_path / "o.csv").exists()


def test_batch_to_an_unsupported_suffix_is_one_line(champion_home, tmp_path, capsys):
    source = tmp_path / "listings.csv"
    write_table(generate(5, seed=1, bad_share=0.0), source)
    args = ["batch", "--input", str(source), "--output", str(tmp_path / "o.json")]
    assert cli.main(args) == cli.EXIT_FAILED
    assert ".csv or .parquet" in _one_error_line(capsys.readouterr().err, "batch")


# argument errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["appraise"],
        ["generate"],
        ["generate", "--rows", "0", "--out", "x.csv"],
        ["generate", "--rows", "many", "--out", "x.csv"],
        ["train", "--data", "x.csv", "--trials", "-1"],
        QUOTE[:-2],  # no --category
    ],
)
def test_argument_errors_exit_2_with_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("valuation") and "error:" in err and "(see --help)" in err
    assert not list(tmp_path.iterdir()), "nothing is written"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["--help"])
    assert exit.value.code == 0
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert command in out


# the installed console script ----------------------------------------------------------------


def _script(*args: str, home: Path) -> subprocess.CompletedProcess:
    assert SCRIPT.is_file(), f"the console script is not installed next to {sys.executable}"
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["VALUATION_HOME"] = str(home)
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=home, timeout=120
    )


def test_the_console_script_answers_help(tmp_path):
    done = _script("--help", home=tmp_path)
    assert done.returncode == 0, done.stderr
    for command in cli.COMMANDS:
        assert command in done.stdout
    assert done.stderr == ""
    sub = _script("quote", "--help", home=tmp_path)
    assert sub.returncode == 0 and "--live-permission" in sub.stdout


def test_the_console_script_reports_a_bad_value_in_one_line(tmp_path):
    args = [*QUOTE]
    args[args.index("有违规")] = "不详"
    done = _script(*args, home=tmp_path)
    assert done.returncode == cli.EXIT_FAILED
    assert "violations" in _one_error_line(done.stderr, "quote")
    assert done.stdout == ""


def test_the_console_script_reports_a_usage_error_in_one_line(tmp_path):
    done = _script("generate", "--rows", "0", "--out", "x.csv", home=tmp_path)
    assert done.returncode == cli.EXIT_USAGE
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--rows" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_the_console_script_without_a_model_says_so_in_one_line(tmp_path):
    done = _script(*QUOTE, home=tmp_path)
    assert done.returncode == cli.EXIT_FAILED
    assert "no model registered" in _one_error_line(done.stderr, "quote")


def test_batch_rates_a_catalogues_asking_prices_as_the_api_does(
    champion_home, settings, tmp_path, capsys
):
    from fastapi.testclient import TestClient

    from api.main import create_app

    listing = {
        "粉丝数量": "13.13WW",
        "有无违规": "有违规",
        "直播权限": "未开通",
        "认证状态": "已认证",
    }
    with TestClient(create_app(settings)) as client:
        body = {**{k: v for k, v in QUOTED.items()}}
        estimate = client.post("/v1/quote", json=body).json()["price_estimate"]
        asked = [estimate * 0.3, estimate, estimate * 3]
        answers = [
            client.post("/v1/appraisal", json={"listing": body, "asking_price": a}).json()
            for a in asked
        ]
    rows = [{**listing, "类目": QUOTED["category"], "报价": a} for a in asked]
    rows.append({**listing, "类目": QUOTED["category"], "报价": "面议"})  # no price at all
    source, out = tmp_path / "catalogue.csv", tmp_path / "rated.csv"
    pd.DataFrame(rows).to_csv(source, index=False)
    assert (
        cli.main(
            ["batch", "--input", str(source), "--output", str(out), "--asking-price-column", "报价"]
        )
        == 0
    )
    rated = pd.read_csv(out)
    assert len(rated) == 4  # the row whose asking price cannot be read is priced all the same
    assert list(rated["deal_rating"][:3]) == ["great", "fair", "overpriced"]
    assert list(rated["deal_rating"][:3]) == [a["deal_rating"] for a in answers]
    assert rated["asking_percentile"][:3].tolist() == pytest.approx(
        [a["percentile"] for a in answers], abs=1e-9
    )
    assert pd.isna(rated["deal_rating"][3]) and "price" in rated["asking_price_error"][3]
    missing = ["batch", "--input", str(source), "--output", str(out), "--asking-price-column", "x"]
    capsys.readouterr()
    assert cli.main(missing) == cli.EXIT_FAILED
    assert "no column 'x'" in _one_error_line(capsys.readouterr().err, "batch")
