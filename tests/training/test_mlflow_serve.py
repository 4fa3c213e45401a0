"""`mlflow models serve` on the registered champion answers raw rows with the service's prices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from valuation.listing import Listing
from valuation.storage.registry import load_valuer

ROWS = [
    {
        "fans": "13.13W",
        "violations": "有违规",
        "live_permission": "未开通",
        "verified": "已认证",
        "category": "自媒体",
    },
    {
        "fans": 5000,
        "violations": False,
        "live_permission": True,
        "verified": "no",
        "category": "美食",
    },
    {
        "fans": "x",
        "violations": False,
        "live_permission": True,
        "verified": "no",
        "category": "美食",
    },
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def mlflow_server(trained, settings):
    port = _free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": settings.tracking,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
    }
    uri = f"models:/{settings.model_name}@{settings.model_alias}"
    server = subprocess.Popen(
        [
            f"{bin_dir}/mlflow",
            "models",
            "serve",
            "-m",
            uri,
            "--env-manager",
            "local",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/ping", timeout=1)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail("mlflow models serve exited before answering")
                time.sleep(0.5)
        else:
            pytest.fail("mlflow models serve did not answer /ping within 60 s")
        yield base
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


def test_mlflow_models_serve_gives_the_service_prices(mlflow_server, settings):
    body = json.dumps({"dataframe_records": ROWS}).encode()
    request = urllib.request.Request(
        f"{mlflow_server}/invocations", data=body, headers={"Content-Type": "application/json"}
    )
    answers = json.loads(urllib.request.urlopen(request, timeout=30).read())["predictions"]

    valuer = load_valuer(settings)
    for row, answer in zip(ROWS[:2], answers[:2], strict=True):
        expected = valuer.value(Listing.parse(row))
        assert answer["error"] is None
        assert answer["price_estimate"] == expected.price_estimate
        assert answer["price_low"] == expected.price_low
        assert answer["price_high"] == expected.price_high
    assert answers[2]["price_estimate"] is None
    assert "fans" in answers[2]["error"]
