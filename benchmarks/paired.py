"""Single-quote cost of this checkout against an earlier commit, measured side by side.

Both servers (one uvicorn worker each, same champion, same request) are pinned to the same CPU
core and driven at the same time by two wrk processes (-t1 -c4) pinned to another core. The core's
time is shared between them, so whatever slows the machine down slows both alike: the ratio of
their rates is the ratio of their costs per quote, steadier than two runs one after the other on
a shared, noisy machine. Medians over several rounds, each with fresh servers and an empty record.
With `--batch N`, batches of N listings instead, sent to the two servers in turn (one at a time,
so each has the core to itself while it answers), five of each a round: the ratio of their
median times. Needs wrk and taskset (Debian: apt-get install wrk util-linux) and two cores.

    .venv/bin/python benchmarks/paired.py --base b62275c [--rounds 5] [--seconds 8] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

from champion import BIN, ROOT, Server, batch_times, free_port, train_champion, wrk_post_script

from api.schemas import EXAMPLE_LISTING

SERVER_CORE, CLIENT_CORE = "1", "0"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per round")
    parser.add_argument("--batch", type=int, default=0, help="listings a batch (0: single quotes)")
    args = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"paired benchmark: {tool} is not installed")

    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "-q", str(base), args.base], cwd=ROOT, check=True
        )
        try:
            env = train_champion(str(Path(scratch) / "home"))
            body = Path(scratch) / "quote.lua"
            body.write_text(wrk_post_script(json.dumps(EXAMPLE_LISTING, ensure_ascii=False)))
            measure = (
                partial(_batches, size=args.batch) if args.batch else _quotes(body, args.seconds)
            )
            rounds = [_round(base, env, Path(scratch), measure) for _ in range(args.rounds)]
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)

    if args.batch:
        title = (
            f"batches of {args.batch:,} listings, both servers on core {SERVER_CORE}, sent to "
            f"each in turn, 5 a round, {args.rounds} rounds (simulated sample model)"
        )
        _report(title, "s", rounds, args.base, speed=lambda ours, theirs: theirs / ours)
    else:
        title = (
            f"single quotes, both servers on core {SERVER_CORE} at once, wrk -t1 -c4 each on "
            f"core {CLIENT_CORE}, {args.rounds} rounds of {args.seconds} s (simulated sample model)"
        )
        _report(title, "req/s", rounds, args.base, speed=lambda ours, theirs: ours / theirs)


def _report(title: str, unit: str, rounds, base: str, speed) -> None:
    """Each round's figures and speed ratio (this / base: above 1, this is faster), then the
    median ratio."""
    print(title)
    print(f"{'round':>5}{'this ' + unit:>12}{base[:10] + ' ' + unit:>18}{'ratio':>8}")
    for number, (ours, theirs) in enumerate(rounds, 1):
        figures = (
            f"{ours:>12.3f}{theirs:>18.3f}" if unit == "s" else f"{ours:>12.0f}{theirs:>18.0f}"
        )
        print(f"{number:>5}{figures}{speed(ours, theirs):>8.3f}")
    ratio = statistics.median(speed(ours, theirs) for ours, theirs in rounds)
    print(f"median speed ratio this / {base}: {ratio:.3f} (cost {1 / ratio:.2f}x the base's)")


def _quotes(script: Path, seconds: int):
    """Both servers loaded at once by their own wrk: each one's rate."""

    def measure(servers: list[str]) -> tuple[float, ...]:
        urls = [f"{server}/v1/quote" for server in servers]
        for url in urls:  # warm-up
            _wrk(url, script, 1).wait()
        runs = [_wrk(url, script, seconds) for url in urls]
        return tuple(_rate(run.communicate()[0]) for run in runs)

    return measure


def _batches(servers: list[str], size: int, repeats: int = 5) -> tuple[float, ...]:
    """Each server's median seconds for a batch, the two sent batches in turn."""
    batch_urls = [f"{server}/v1/quotes" for server in servers]
    times: list[list[float]] = [[], []]
    for url in batch_urls:  # warm-up
        batch_times(url, size, repeats=1)
    for _ in range(repeats):
        for taken, url in zip(times, batch_urls, strict=True):
            taken.extend(batch_times(url, size, repeats=1))
    return tuple(statistics.median(taken) for taken in times)


def _round(base: Path, env: dict, scratch: Path, measure) -> tuple[float, ...]:
    record = scratch / "records.db"
    for leftover in scratch.glob("records.db*"):
        leftover.unlink()
    servers, urls = [], []
    for checkout in (ROOT, base):
        port = free_port()
        command = [
            "taskset", "-c", SERVER_CORE, BIN / "uvicorn", "api.main:app", "--app-dir", checkout,
            "--port", str(port), "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        server_env = env | {"VALUATION_DATABASE_URL": f"sqlite:///{record}"}
        servers.append(Server(command, server_env, f"http://127.0.0.1:{port}/readyz"))
        urls.append(f"http://127.0.0.1:{port}")
    with servers[0], servers[1]:
        return measure(urls)


def _wrk(url: str, script: Path, seconds: int) -> subprocess.Popen:
    command = [
        "taskset",
        "-c",
        CLIENT_CORE,
        "wrk",
        "-t1",
        "-c4",
        f"-d{seconds}s",
        "-s",
        script,
        url,
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def _rate(output: str) -> float:
    if re.search(r"Non-2xx|Socket errors", output):
        sys.exit(f"paired benchmark: errors under load\n{output}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))


if __name__ == "__main__":
    main()
