"""What the quote record costs a quote, without HTTP: the app driven in process by four concurrent
clients posting /v1/quote, with its record, with the record's commit skipped, and without the
record at all, alternated in one run (medians of 3 x 3 s).

    .venv/bin/python benchmarks/record_cost.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time

from champion import train_champion  # benchmarks/champion.py, beside this script

from api.schemas import EXAMPLE_LISTING

BODY = json.dumps(EXAMPLE_LISTING, ensure_ascii=False).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def quote(app) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/quote",
        "raw_path": b"/v1/quote",
        "query_string": b"",
        "root_path": "",
        "headers": HEADERS,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    given = False

    async def receive():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": BODY, "more_body": False}
        await asyncio.sleep(3600)

    statuses = []

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    if statuses != [200]:
        raise RuntimeError(f"quote answered {statuses}")


async def rate(app, seconds: float, clients: int = 4) -> float:
    done, stop = 0, time.perf_counter() + seconds

    async def client():
        nonlocal done
        while time.perf_counter() < stop:
            await quote(app)
            done += 1

    await asyncio.gather(*(client() for _ in range(clients)))
    return done / seconds


async def measure(home: str) -> dict[str, list[float]]:
    from api.main import create_app
    from valuation.infra.settings import Settings

    app = create_app(Settings(home=home))
    rates: dict[str, list[float]] = {"with the record": [], "commit skipped": [], "no record": []}
    async with app.router.lifespan_context(app):
        record = app.state.record
        commit, write = record._commit, record.write

        async def no_write(table, rows):
            return None

        await rate(app, 1)  # warm-up
        for _ in range(3):
            record._commit, record.write = commit, write
            rates["with the record"].append(await rate(app, 3))
            record._commit = lambda group, *args: [None] * len(group)
            rates["commit skipped"].append(await rate(app, 3))
            record.write = no_write
            rates["no record"].append(await rate(app, 3))
        record._commit, record.write = commit, write
    return rates


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        train_champion(home)
        rates = asyncio.run(measure(home))
    base = statistics.median(rates["no record"])
    print("in-process quotes, 4 concurrent clients, no HTTP (medians of 3 x 3 s)")
    print(f"{'':18}{'quotes/s':>10}{'us/quote':>10}{'vs no record':>14}")
    for name, values in rates.items():
        median = statistics.median(values)
        print(f"{name:18}{median:10.0f}{1e6 / median:10.0f}{median / base:14.2f}")


if __name__ == "__main__":
    main()
