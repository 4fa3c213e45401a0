"""Whole-catalogue pricing against bare `lightgbm.Booster.predict`, and how it scales.

Trains a champion on the committed (simulated) sample in a throwaway project folder, writes
simulated catalogues of 10k, 100k, 1M and 10M listings as Parquet (marketplace spellings, a few
unreadable rows), then for each size, in one fresh process, alternated so both see the same machine:
  - `price_file`, what `valuation batch` runs once the model is loaded (read, parse, encode,
    predict, write): seconds and rows/s;
  - bare `Booster.predict` of the same two models (point and scale) on the same rows, already
    encoded as numpy matrices (encoded outside the timing, 1M rows at a time): seconds and rows/s.
Medians of 3 runs (1 at 10M); peak memory is that process's.

    .venv/bin/python benchmarks/batch.py [--sizes 10000,100000,1000000,10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from champion import train_champion  # benchmarks/champion.py: scripts run from this folder

from data.simulator import generate
from valuation.loading import TableWriter

GENERATE_CHUNK = 500_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000,10000000")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    with tempfile.TemporaryDirectory() as home:
        env = train_champion(home)
        print(f"{os.cpu_count()} cores\n")
        print(
            f"{'rows':>11} {'batch s':>9} {'batch rows/s':>13} {'peak MB':>8} "
            f"{'predict s':>10} {'predict rows/s':>15} {'batch/predict':>14}"
        )
        for size in sizes:
            catalogue = Path(home) / f"catalogue-{size}.parquet"
            _write_catalogue(catalogue, size)
            output = Path(home) / f"priced-{size}.parquet"
            figures = _measure(catalogue, output, env, repeats=3 if size <= 1_000_000 else 1)
            priced = pq.ParquetFile(output).metadata.num_rows
            rejects = Path(home) / f"priced-{size}.rejects.csv"
            rejected = (
                sum(1 for _ in open(rejects, encoding="utf-8-sig")) - 1 if rejects.exists() else 0
            )
            assert priced + rejected == size, f"{priced} + {rejected} != {size}"
            batch, predict = figures["batch"], figures["predict"]
            print(
                f"{size:11,} {batch:9.2f} {size / batch:13,.0f} {figures['peak_mb']:8.0f} "
                f"{predict:10.2f} {size / predict:15,.0f} {predict / batch:13.0%}"
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
import json, resource, statistics, sys, time
from valuation.loading import parse_listings, read_export_chunks
from valuation.pricing import price_file
from valuation.storage.registry import load_valuer
from valuation.infra.settings import Settings

home, source, output, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
valuer = load_valuer(Settings(home=home, tracking_uri=None))


def bare_predict():
    seconds = 0.0
    for raw, first in read_export_chunks(source, 1_000_000):
        matrix = valuer.encoder.matrix(parse_listings(raw, False, first).listings)
        started = time.perf_counter()
        for name in ("point", "scale"):
            valuer.boosters[name].predict(matrix)
        seconds += time.perf_counter() - started
    return seconds


batch, predict = [], []
for _ in range(repeats):
    started = time.perf_counter()
    price_file(valuer, source, output)
    batch.append(time.perf_counter() - started)
    predict.append(bare_predict())
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"batch": statistics.median(batch), "predict": statistics.median(predict),
                  "peak_mb": peak_mb}))
"""


def _measure(source: Path, output: Path, env: dict, repeats: int) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, env["VALUATION_HOME"], source, output, str(repeats)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
