"""Whole-catalogue pricing against bare `lightgbm.Booster.predict`, and how it scales.

Trains a champion on the committed (simulated) sample in a throwaway project folder, writes
simulated catalogues of 10k, 100k, 1M and 10M listings as Parquet (marketplace spellings, a few
unreadable rows), then for each size, side by side in one run:
  - `price_file`, what `valuation batch` runs once the model is loaded (read, parse, encode,
    predict, write), in a fresh child process: seconds, rows/s and the child's peak memory;
  - bare `Booster.predict` of the same models (point and scale) on the same rows already encoded
    as a numpy matrix (encoded outside the timing): seconds and rows/s.
The 10M matrix is not built in memory for the baseline: its rate is the 1M rate (the cost is linear).

    .venv/bin/python benchmarks/batch.py [--sizes 10000,100000,1000000,10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from data.simulator import generate
from valuation.loading import TableWriter, parse_listings
from valuation.registry import load_valuer
from valuation.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
GENERATE_CHUNK = 500_000
BASELINE_MAX_ROWS = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000,10000000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    with tempfile.TemporaryDirectory() as home:
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
        env["VALUATION_HOME"] = home
        subprocess.run(
            [BIN / "valuation", "train", "--data", ROOT / "data/sample_sales.csv", "--trials", "2"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        valuer = load_valuer(Settings(home=home, tracking_uri=None))
        print(
            f"model: point {valuer.boosters['point'].num_trees()} trees, scale "
            f"{valuer.boosters['scale'].num_trees()} trees; {os.cpu_count()} cores\n"
        )
        print(
            f"{'rows':>11} {'batch s':>9} {'batch rows/s':>13} {'peak MB':>8} "
            f"{'predict s':>10} {'predict rows/s':>15} {'batch/predict':>14}"
        )
        baseline_rate = None
        for size in sizes:
            catalogue = Path(home) / f"catalogue-{size}.parquet"
            _write_catalogue(catalogue, size)
            seconds, peak_mb = _batch(catalogue, Path(home) / f"priced-{size}.parquet", env)
            priced = pq.ParquetFile(Path(home) / f"priced-{size}.parquet").metadata.num_rows
            rejects = Path(home) / f"priced-{size}.rejects.csv"
            rejected = (
                sum(1 for _ in open(rejects, encoding="utf-8-sig")) - 1 if rejects.exists() else 0
            )
            assert priced + rejected == size, f"{priced} + {rejected} != {size}"
            if size <= BASELINE_MAX_ROWS:
                predict_seconds = _bare_predict(valuer, catalogue)
                baseline_rate = size / predict_seconds
                shown = f"{predict_seconds:10.2f} {baseline_rate:15,.0f}"
            else:
                predict_seconds = size / baseline_rate
                shown = f"{'(1M rate)':>10} {baseline_rate:15,.0f}"
            print(
                f"{size:11,} {seconds:9.2f} {size / seconds:13,.0f} {peak_mb:8.0f} {shown} "
                f"{predict_seconds / seconds:13.0%}"
            )
            catalogue.unlink()
    print(
        "\nbatch/predict: whole-file pricing speed as a share of bare Booster.predict (target >= 80%)"
    )


def _write_catalogue(path: Path, rows: int) -> None:
    with TableWriter(path) as writer:
        for start in range(0, rows, GENERATE_CHUNK):
            chunk = generate(
                min(GENERATE_CHUNK, rows - start), seed=start // GENERATE_CHUNK, bad_share=0.001
            )
            writer.write(chunk.drop(columns=["成交价"]))  # a catalogue to price: no sale price yet


CHILD = """
import json, resource, sys, time
from valuation.pricing import price_file
from valuation.registry import load_valuer
from valuation.settings import Settings
valuer = load_valuer(Settings(home=sys.argv[1], tracking_uri=None))
started = time.perf_counter()
price_file(valuer, sys.argv[2], sys.argv[3])
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _batch(source: Path, output: Path, env: dict) -> tuple[float, float]:
    """`price_file` in a fresh process (what `valuation batch` runs once the model is loaded):
    its own seconds for the whole file, and the process's peak memory."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, env["VALUATION_HOME"], source, output],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return figures["seconds"], figures["peak_mb"]


def _bare_predict(valuer, source: Path) -> float:
    raw = pq.read_table(source).to_pandas()
    matrix = valuer.encoder.matrix(parse_listings(raw, require_price=False).listings)
    started = time.perf_counter()
    for name in ("point", "scale"):
        valuer.boosters[name].predict(matrix)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
