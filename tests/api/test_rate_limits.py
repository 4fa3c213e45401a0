"""Limits on public quoting: per client address without a key, per key with an active one; over
the limit a 429 in the error shape with Retry-After. Made-up keys buy no bucket of their own."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app
from api.schemas import EXAMPLE_LISTING
from tests.conftest import marketplace_key

LISTING = EXAMPLE_LISTING


def test_quotes_over_the_limit_are_429_with_retry_after(trained, settings, tmp_path):
    url = f"sqlite:///{tmp_path / 'records.db'}"
    limited = settings.model_copy(
        update={
            "database_url": url,
            "quote_rate": 0.01,
            "quote_burst": 3,
            "key_quote_rate": 0.01,
            "key_quote_burst": 2,
        }
    )
    header = marketplace_key(url, role="quote")
    app = create_app(settings=limited)
    with TestClient(app, raise_server_exceptions=False, client=("10.0.0.1", 1)) as client:
        answers = [client.post("/v1/quote", json=LISTING) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200]
        refused = client.post("/v1/appraisal", json={"listing": LISTING, "asking_price": 100})
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert int(refused.headers["Retry-After"]) >= 1
        # Made-up keys are counted by address: no fresh bucket each.
        faked = client.post("/v1/quote", json=LISTING, headers={"Authorization": "Bearer vk_x"})
        assert faked.status_code == 429
        # Other endpoints are not limited.
        assert client.get("/v1/model").status_code == 200
        # A real key has a bucket of its own.
        keyed = [client.post("/v1/quote", json=LISTING, headers=header) for _ in range(3)]
        assert [a.status_code for a in keyed] == [200, 200, 429]
        metrics = client.get("/metrics").text
        assert 'endpoint="/v1/quote",method="POST",status="429"' in metrics
    # Another address has its own bucket.
    with TestClient(app, raise_server_exceptions=False, client=("10.0.0.2", 1)) as other:
        assert other.post("/v1/quote", json=LISTING).status_code == 200


def test_limits_are_on_by_default():
    from valuation.infra.settings import Settings

    defaults = Settings.model_fields
    assert defaults["quote_rate"].default > 0 and defaults["quote_burst"].default > 0


def test_importing_the_app_reads_no_settings():
    """Settings are read lazily: the limits and the private switch on the first request."""
    import subprocess
    import sys

    code = (
        "import api.main\n"
        "from valuation.infra.settings import get_settings\n"
        "print(get_settings.cache_info().currsize)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0"
