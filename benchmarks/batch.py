"""`valuation batch` as a user runs it, against bare `lightgbm.Booster.predict` of the same models.

Trains a champion on the committed (simulated) sample in a throwaway project folder (its trees are
compiled there, as training does), writes simulated catalogues of 10k, 100k, 1M and 10M listings
as Parquet (marketplace spellings, a few unreadable rows), then for each size, alternated so all
see the same machine:
  - `valuation batch --input ... --output ...` as a process: wall seconds from launch to exit
    (start-up, resolving the champion, reading, parsing, pricing, writing), and its peak memory;
  - the same with `VALUATION_COMPILED_TREES=0` (LightGBM prices), up to 1M rows;
  - bare `Booster.predict` of the same two models (point and scale), loaded from the bundle's
    files, on the same rows already encoded as numpy matrices (read and encoded outside the
    timing, 1M rows at a time): only the predict calls are timed.
Medians of 3 runs (1 at 10M). `speed x` is bare predict's seconds over batch's: above 1, the
whole command is faster than LightGBM's prediction alone.

    .venv/bin/python benchmarks/batch.py [--sizes 10000,100000,1000000,10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from champion import (  # benchmarks/champion.py: scripts run from this folder
    BIN,
    MARKET_HELP,
    train_champion,
)

from data.simulator import generate
from valuation.loading import TableWriter, rejects_path

GENERATE_CHUNK = 500_000
LIGHTGBM_UP_TO = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000,10000000")
    parser.add_argument("--market", help=MARKET_HELP)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    with tempfile.TemporaryDirectory() as home:
        env = train_champion(home, args.market)
        print(f"{os.cpu_count()} cores; {_trees(home)}\n")
        print(
            f"{'rows':>11} {'batch s':>8} {'rows/s':>11} {'peak MB':>8} {'lgbm batch s':>13} "
            f"{'predict s':>10} {'speed x':>8} {'lgbm speed x':>13}"
        )
        for size in sizes:
            catalogue = Path(home) / f"catalogue-{size}.parquet"
            _write_catalogue(catalogue, size)
            output = Path(home) / f"priced-{size}.parquet"
            repeats = 3 if size <= 1_000_000 else 1
            batch, plain, predict, peak = [], [], [], 0.0
            for _ in range(repeats):
                seconds, peak_mb = _batch(catalogue, output, env)
                batch.append(seconds)
                peak = max(peak, peak_mb)
                _check(output, size)
                if size <= LIGHTGBM_UP_TO:
                    plain.append(
                        _batch(catalogue, output, env | {"VALUATION_COMPILED_TREES": "0"})[0]
                    )
                predict.append(_bare_predict(catalogue, env))
            batch_s, predict_s = statistics.median(batch), statistics.median(predict)
            plain_s = statistics.median(plain) if plain else float("nan")
            print(
                f"{size:11,} {batch_s:8.2f} {size / batch_s:11,.0f} {peak:8.0f} {plain_s:13.2f} "
                f"{predict_s:10.2f} {predict_s / batch_s:8.2f} {predict_s / plain_s:13.2f}"
            )
            catalogue.unlink()
    print(
        "\nspeed x: bare Booster.predict's seconds / `valuation batch`'s (start-up included); "
        "target >= 1.0.\nlgbm: the same command pricing with LightGBM (compiled trees off)."
    )


def _trees(home: str) -> str:
    from valuation.infra.settings import Settings
    from valuation.storage.registry import bundle_dir, registered_version

    settings = Settings(home=home, tracking_uri=None)
    bundle = bundle_dir(settings, registered_version(settings))
    counts = [
        sum(line.startswith("Tree=") for line in open(bundle / f"{name}.txt"))
        for name in ("point", "scale")
    ]
    return f"champion of {counts[0]} + {counts[1]} trees (point + scale)"


def _batch(catalogue: Path, output: Path, env: dict) -> tuple[float, float]:
    """Wall seconds and peak MB of one `valuation batch` process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [BIN / "valuation", "batch", "--input", catalogue, "--output", output],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode:
        raise SystemExit(f"valuation batch failed: {process.stderr.read().decode()[-2000:]}")
    process.stderr.close()
    return seconds, usage.ru_maxrss / 1024


def _check(output: Path, size: int) -> None:
    priced = pq.ParquetFile(output).metadata.num_rows
    rejects = rejects_path(output)
    rejected = sum(1 for _ in open(rejects, encoding="utf-8-sig")) - 1 if rejects.exists() else 0
    assert priced + rejected == size, f"{priced} + {rejected} != {size}"


def _write_catalogue(path: Path, rows: int) -> None:
    with TableWriter(path) as writer:
        for start in range(0, rows, GENERATE_CHUNK):
            chunk = generate(
                min(GENERATE_CHUNK, rows - start), seed=start // GENERATE_CHUNK, bad_share=0.001
            )
            writer.write(chunk.drop(columns=["成交价"]))  # a catalogue to price: no sale price yet


BARE = """
import json, sys, time
from pathlib import Path
import lightgbm as lgb
from valuation.infra.settings import Settings
from valuation.loading import parse_listings, read_export_chunks
from valuation.storage.registry import bundle_dir, registered_version
from valuation.valuer import Valuer

settings = Settings(home=sys.argv[1], tracking_uri=None)
bundle = bundle_dir(settings, registered_version(settings))
encoder = Valuer.load(bundle).encoder
boosters = [lgb.Booster(model_file=str(bundle / f"{name}.txt")) for name in ("point", "scale")]
seconds = 0.0
for raw, first in read_export_chunks(sys.argv[2], 1_000_000):
    matrix = encoder.matrix(parse_listings(raw, False, first).listings)
    started = time.perf_counter()
    for booster in boosters:
        booster.predict(matrix)
    seconds += time.perf_counter() - started
print(json.dumps({"predict": seconds}))
"""


def _bare_predict(catalogue: Path, env: dict) -> float:
    done = subprocess.run(
        [sys.executable, "-c", BARE, env["VALUATION_HOME"], catalogue],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["predict"]


if __name__ == "__main__":
    main()
