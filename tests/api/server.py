"""A real uvicorn server in a child process, on a free loopback port, for tests that need HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager

from valuation.infra.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(settings: Settings, extra_env: dict[str, str] | None = None):
    """`extra_env`: more variables for the server (e.g. VALUATION_ADMIN_TOKEN)."""
    process, base = start_server(settings, extra_env)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def start_server(
    settings: Settings, extra_env: dict[str, str] | None = None, port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """The server process, once it answers /readyz, and its address; the caller stops it."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env |= {"VALUATION_HOME": str(settings.home), "VALUATION_MODEL_NAME": settings.model_name}
    env |= extra_env or {}
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "api.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,  # a file, not a pipe: a pipe nobody reads would block a chatty server
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{base}/readyz", timeout=1)
            return process, base
        except OSError:
            if process.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"server exited: {log.read().decode()[-2000:]}") from None
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError("server not ready within 60 s") from None
            time.sleep(0.2)
