"""Reading one export in each file format the loader takes, side by side, in one run.

The same simulated export (`data.simulator.generate`, its share of unreadable rows) is written
as CSV (the baseline), Parquet, an Excel workbook (.xlsx) and an Excel 97-2003 workbook (.xls,
at most 65,535 rows: its format's limit), every cell as the text the CSV holds. Each is read by
`load_listings` as training reads it (repeats searched), alternately, `--repeats` times; printed:
the median and the fastest read, the ratio of the median to the CSV's, and whether the listings
and the reject lines are the CSV's. SIMULATED data; the times are this machine's.

    .venv/bin/python benchmarks/formats.py [--rows 60000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import pandas as pd

from data.simulator import generate
from valuation.loading import load_listings, write_table

XLS_ROWS = 65_535


def _write_xls(frame: pd.DataFrame, path: Path) -> None:
    import xlwt

    book = xlwt.Workbook()
    sheet = book.add_sheet("sales")
    for r, row in enumerate([list(frame.columns), *frame.to_numpy().tolist()]):
        for c, value in enumerate(row):
            sheet.write(r, c, value)
    book.save(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    export = generate(args.rows, seed=3, bad_share=0.003)
    folder = Path(tempfile.mkdtemp(prefix="formats-"))
    files = {"csv": write_table(export, folder / "sales.csv")}
    files["parquet"] = write_table(export, folder / "sales.parquet")
    files["xlsx"] = folder / "sales.xlsx"
    export.to_excel(files["xlsx"], index=False)
    if args.rows <= XLS_ROWS:
        files["xls"] = folder / "sales.xls"
        _write_xls(export, files["xls"])
    seconds: dict[str, list[float]] = {name: [] for name in files}
    read = {}
    for _ in range(args.repeats):
        for name, path in files.items():
            started = time.perf_counter()
            read[name] = load_listings(path, require_price=True, drop_repeats=True)
            seconds[name].append(time.perf_counter() - started)
    baseline = statistics.median(seconds["csv"])
    print(f"{args.rows:,} rows, {args.repeats} reads each, alternated (SIMULATED export)")
    print(f"{'format':8} {'median s':>9} {'fastest s':>10} {'x CSV':>6}  same listings and rejects")
    for name, times in seconds.items():
        median = statistics.median(times)
        print(
            f"{name:8} {median:9.2f} {min(times):10.2f} {median / baseline:6.1f}  {_same(read, name)}"
        )


def _same(read: dict, name: str) -> bool:
    """The CSV's listings, and its rejects on the same rows (Parquet numbers rows from 1, the
    others by their file's lines, the header first)."""

    def rows(which: str) -> list[int]:
        return (read[which].rejects["line"] - (0 if which == "parquet" else 1)).tolist()

    listings = [read[which].listings.reset_index(drop=True) for which in (name, "csv")]
    return listings[0].equals(listings[1]) and rows(name) == rows("csv")


if __name__ == "__main__":
    main()
