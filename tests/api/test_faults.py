"""The fault test: the server is killed with `kill -9` in the middle of a load; after a restart,
every quote it answered 200 is on record."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
from sqlalchemy import create_engine, func, select

from api.schemas import EXAMPLE_LISTING
from tests.api.server import start_server
from valuation.storage.records import quotes

LISTING = EXAMPLE_LISTING  # the API's own documented example
MIX = [
    ("/v1/quote", {**LISTING, "listing_id": "F-1"}, 1),
    ("/v1/appraisal", {"listing": LISTING, "asking_price": "¥3,800"}, 1),
    ("/v1/quotes", {"listings": [{**LISTING, "fans": 1000 + i} for i in range(20)]}, 20),
]


def load(base: str, answered: dict[str, int], stop: threading.Event, worker: int) -> None:
    """Posts the mix until the server is gone; keeps the request id of every 200 and the rows it
    must have written."""
    with httpx.Client(base_url=base, timeout=10) as client:
        i = worker
        while not stop.is_set():
            path, body, rows = MIX[i % len(MIX)]
            i += 1
            try:
                answer = client.post(path, json=body)
            except httpx.HTTPError:
                return  # killed: whatever was not answered was not promised
            if answer.status_code == 200:
                answered[answer.headers["x-request-id"]] = rows


def test_every_200_is_on_record_after_kill_9(trained, settings, tmp_path):
    home_settings = settings  # the session's champion; the record is a file of this test's own
    database = tmp_path / "records.db"
    env = {"VALUATION_DATABASE_URL": f"sqlite:///{database}"}
    process, base = start_server(home_settings, env)
    answered: dict[str, int] = {}
    stop = threading.Event()
    workers = [threading.Thread(target=load, args=(base, answered, stop, n)) for n in range(4)]
    try:
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 30
        while len(answered) < 300 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)  # mid-load: requests are in flight right now
        process.wait(timeout=30)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    assert len(answered) >= 300, "the load did not get going before the kill"

    # Restarted on the same record: it opens (WAL recovery) and serves again.
    process, base = start_server(home_settings, env)
    try:
        after = httpx.post(f"{base}/v1/quote", json=LISTING, timeout=10)
        assert after.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=30)

    engine = create_engine(f"sqlite:///{database}")
    query = select(quotes.c.request_id, func.count()).group_by(quotes.c.request_id)
    with engine.connect() as connection:
        on_record = dict(connection.execute(query).all())
    missing = {rid: rows for rid, rows in answered.items() if on_record.get(rid) != rows}
    assert not missing, f"{len(missing)} of {len(answered)} answers are not on record"
    assert after.headers["x-request-id"] in on_record
