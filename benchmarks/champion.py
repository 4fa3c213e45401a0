"""A throwaway project folder with a champion trained on the committed (simulated) sample, and a
real server over it, for benchmarks that must not touch the real store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def train_champion(home: str, market: str | None = None) -> dict[str, str]:
    """Trains in `home` and returns the environment that points child processes at it: no
    inherited MLflow URIs, this venv's tools first on PATH. `market`: a market of
    data/markets.py, trained as a user trains it (its 20,000-sale export, the default search);
    None: the committed sample, with 2 search trials."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    }
    env |= {"VALUATION_HOME": home, "PATH": f"{BIN}:{os.environ['PATH']}"}
    # The quote limits on (each request pays for its check) but never reached: the benchmarks
    # send thousands of quotes a second from one address.
    env.setdefault("VALUATION_QUOTE_RATE", "1e9")
    if market:
        from data.markets import BY_NAME

        data = Path(home) / f"{market}.csv"
        BY_NAME[market].export(seed=11).to_csv(data, index=False)
        search = []
    else:
        data, search = ROOT / "data/sample_sales.csv", ["--trials", "2"]
    subprocess.run(
        [BIN / "valuation", "train", "--data", data, *search],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return env


def wrk_post_script(body: str) -> str:
    """wrk's Lua for a POST of `body` as JSON on every request."""
    return (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body, ensure_ascii=False)}\n"
    )


def batch_times(url: str, size: int, repeats: int = 5) -> list[float]:
    """Seconds for each of `repeats` POSTs of a batch of `size` listings (the API's example with
    varied fans) to `url`, a /v1/quotes, every listing checked to have been quoted."""
    from api.schemas import EXAMPLE_LISTING

    listings = [{**EXAMPLE_LISTING, "fans": 1000 + 37 * i} for i in range(size)]
    body = json.dumps({"listings": listings}).encode()
    times = []
    for _ in range(repeats):
        request = urllib.request.Request(
            url, data=body, headers={"Content-Type": "application/json"}
        )
        started = time.perf_counter()
        answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
        times.append(time.perf_counter() - started)
        assert answer["quoted"] == size, answer["failed"]
    return times


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server process (its own session, so stopping it stops its children) that is ready once
    `ready_url` answers; `log`, an open file, takes its output (discarded by default)."""

    def __init__(self, command, env, ready_url, log=None):
        self.command, self.env, self.ready_url = [str(c) for c in command], env, ready_url
        self.log = log if log is not None else subprocess.DEVNULL

    def __enter__(self):
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=ROOT,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.ready_url, timeout=1)
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.command[0]} exited") from None
                time.sleep(0.3)
        raise TimeoutError(f"{self.ready_url} not ready")

    def __exit__(self, *exc):
        os.killpg(self.process.pid, 15)
        self.process.wait(timeout=30)


MARKET_HELP = (
    "train on this market of data/markets.py (its 20,000-sale export, the default search, as a "
    "user runs it) instead of the sample (2 trials)"
)
