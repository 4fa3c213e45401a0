"""A sale whose date was mistyped years ahead (2062 for 2026) must not become the market date:
every other sale would be restated to a level decades away, and quotes valued there."""

from __future__ import annotations

import datetime as dt

import pandas as pd

import cli
from data.simulator import generate
from valuation.infra.settings import get_settings
from valuation.storage import registry


def test_a_sale_dated_decades_ahead_is_said_and_not_the_market_date(tmp_path, capsys, use_home):
    export = generate(1500, seed=41, bad_share=0)
    latest = pd.to_datetime(export["成交日期"]).max().date()
    export.loc[7, "成交日期"] = "2062-01-01"
    data = tmp_path / "sales.csv"
    export.to_csv(data, index=False)

    home = tmp_path / "home"
    home.mkdir()
    use_home(home, trials=1, folds=2)
    assert cli.main(["train", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    valuer = registry.load_valuer(get_settings())
    assert f"1 sales dated after the market date {latest} (latest 2062-01-01)" in out
    assert valuer.market_date == latest
    # the index spans the real sales' dates, not decades of empty months
    assert valuer.market.days[-1] < 2 * 365
    assert valuer.market.market_date - valuer.market.start < dt.timedelta(days=2 * 365)
