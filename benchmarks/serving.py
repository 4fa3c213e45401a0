"""Serving speed: our API against `mlflow models serve` on the same champion, one after the other.

Trains a champion on the committed (simulated) sample in a throwaway project folder, then:
  1. a valuation inside the process (no HTTP): median over many calls;
  2. single quotes over HTTP with wrk (-t1 -c4) against one uvicorn worker of our API, alternated
     with the transport floor (benchmarks/floor.py: a bare ASGI app answering a constant, on the
     same uvicorn), three runs each: our share of the floor is the median ratio of neighbours;
  3. the same listing through `mlflow models serve` (its pyfunc, same model) with the same wrk load;
  4. batches of 10,000 listings through /v1/quotes.
Needs wrk on the PATH (Debian: apt-get install wrk).

    .venv/bin/python benchmarks/serving.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from champion import (  # benchmarks/champion.py, beside this script
    BIN,
    MARKET_HELP,
    Server,
    batch_times,
    train_champion,
    wrk_post_script,
)

from api.schemas import EXAMPLE_LISTING

LISTING = EXAMPLE_LISTING  # the API's own documented example


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk duration per server")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--market", help=MARKET_HELP)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("serving benchmark: wrk is not installed (Debian: apt-get install wrk)")

    with tempfile.TemporaryDirectory() as home:
        env = train_champion(home, args.market)
        in_process = _in_process(home)
        body = json.dumps(LISTING, ensure_ascii=False)
        # The quote limits' cost: our API with them on (the default; set too high to refuse
        # anything) and off, alternated twice.
        runs, floors = [], []
        for _ in range(3):
            with _our_server(env):
                runs.append(
                    _wrk("http://127.0.0.1:8471/v1/quote", body, args.seconds, args.connections)
                )
            with _floor_server(env):
                floors.append(
                    _wrk("http://127.0.0.1:8473/v1/quote", body, args.seconds, args.connections)
                )
        ours = sorted(runs, key=lambda run: run["rps"])[1]  # the median run
        floor = sorted(floors, key=lambda run: run["rps"])[1]
        shares = [run["rps"] / bare["rps"] for run, bare in zip(runs, floors, strict=True)]
        with _our_server(env):
            batch = batch_times("http://127.0.0.1:8471/v1/quotes", 10_000)
        limits = {"on": [ours["rps"]], "off": []}
        for state in ("off", "on", "off"):
            quote_rate = env["VALUATION_QUOTE_RATE"] if state == "on" else "0"
            with _our_server(env | {"VALUATION_QUOTE_RATE": quote_rate}):
                url = "http://127.0.0.1:8471/v1/quote"
                limits[state].append(_wrk(url, body, args.seconds, args.connections)["rps"])
        mlflow_env = env | {"MLFLOW_TRACKING_URI": f"sqlite:///{home}/mlflow.db"}
        mlflow_body = json.dumps({"dataframe_records": [LISTING]}, ensure_ascii=False)
        command = [
            BIN / "mlflow",
            "models",
            "serve",
            "-m",
            "models:/kuaishou-account-price@champion",
            "--env-manager",
            "local",
            "-p",
            "8472",
            "-h",
            "127.0.0.1",
        ]
        with Server(command, mlflow_env, "http://127.0.0.1:8472/ping"):
            theirs = _wrk(
                "http://127.0.0.1:8472/invocations", mlflow_body, args.seconds, args.connections
            )

    trained_on = f"market {args.market}" if args.market else "the sample"
    print(
        f"single quote, one worker, wrk -t1 -c{args.connections} -d{args.seconds}s, loopback "
        f"(model trained on {trained_on}, simulated)\n"
    )
    print(f"{'server':34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for name, figures in (
        ("our API (uvicorn, 1 worker)", ours),
        ("transport floor (bare ASGI)", floor),
        ("mlflow models serve (pyfunc)", theirs),
    ):
        print(f"{name:34}{figures['rps']:10.0f}{figures['p50']:10.2f}{figures['p99']:10.2f}")
    print(
        f"\nshare of the transport floor: {statistics.median(shares):.3f} "
        f"(runs {', '.join(f'{share:.3f}' for share in shares)}; target >= 0.15)"
    )
    print(f"throughput ratio ours / mlflow: {ours['rps'] / theirs['rps']:.1f}x  (target >= 20x)")
    on, off = statistics.median(limits["on"]), statistics.median(limits["off"])
    print(
        f"quote limits on / off (alternated, median of 2 runs each): {on:.0f} / {off:.0f} req/s "
        f"= {on / off:.3f}"
    )
    print(
        f"in-process valuation: median {in_process['value_us']:.1f} us (target <= 100 us); "
        f"Booster.predict of both models on the same row: {in_process['booster_us']:.1f} us"
    )
    print(
        f"batch of 10,000 listings over HTTP: median {statistics.median(batch):.3f} s of {len(batch)} "
        f"(min {min(batch):.3f} s)"
    )


def _our_server(env: dict) -> Server:
    command = [BIN / "uvicorn", "api.main:app", "--port", "8471", "--no-access-log"]
    return Server([*command, "--log-level", "warning"], env, "http://127.0.0.1:8471/readyz")


def _floor_server(env: dict) -> Server:
    command = [BIN / "uvicorn", "floor:app", "--app-dir", Path(__file__).parent, "--port", "8473"]
    ready = "http://127.0.0.1:8473/"
    return Server([*command, "--no-access-log", "--log-level", "warning"], env, ready)


def _in_process(home: str) -> dict[str, float]:
    os.environ["VALUATION_HOME"] = home
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from valuation.infra.settings import Settings
    from valuation.listing import Listing
    from valuation.storage.registry import load_valuer

    valuer = load_valuer(Settings())
    listing = Listing.parse(LISTING)
    row = valuer.encoder.row(listing)
    value_times, booster_times = [], []
    for _ in range(20_000):
        started = time.perf_counter()
        valuer.value(listing)
        value_times.append(time.perf_counter() - started)
    for _ in range(5_000):
        started = time.perf_counter()
        for booster in valuer.boosters.values():
            booster.predict(row)
        booster_times.append(time.perf_counter() - started)
    return {
        "value_us": statistics.median(value_times) * 1e6,
        "booster_us": statistics.median(booster_times) * 1e6,
    }


def _wrk(url: str, body: str, seconds: int, connections: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False, encoding="utf-8") as script:
        script.write(wrk_post_script(body))
    subprocess.run(
        ["wrk", "-t1", f"-c{connections}", "-d2s", "-s", script.name, url],
        check=True,
        capture_output=True,
    )  # warm up
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name, url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    os.unlink(script.name)
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load:\n{out}")
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        "p50": _ms(out, "50%"),
        "p99": _ms(out, "99%"),
    }


def _ms(out: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


if __name__ == "__main__":
    main()
