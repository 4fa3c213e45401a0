"""The body size limit (`api.limits`): 413 before a body over `max_body_bytes` is read, whether
it declares its length or streams in chunks; 400 for a Content-Length that is not one; and a
default that holds the largest batch the API takes."""

from __future__ import annotations

import asyncio
import json

import pytest
from fastapi.testclient import TestClient

from api.limits import BodyLimitMiddleware, BodyTooLarge
from api.main import create_app
from api.schemas import MAX_BATCH
from valuation.infra.settings import Settings

LIMIT = 2048
SPELLED = {
    "fans": "13.13W",
    "violations": "有违规",
    "live_permission": "未开通",
    "verified": "已认证",
    "category": "自媒体",
}


# --- the middleware on its own, at the ASGI level -------------------------------------------------


class Echo:
    """An app that reads the whole body and answers its length; remembers whether it ran."""

    def __init__(self):
        self.called = False

    async def __call__(self, scope, receive, send):
        self.called = True
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})


def call(app, headers: list[tuple[bytes, bytes]], chunks: list[bytes]):
    """One POST through `app`: (status, headers, body) of its answer."""
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    answer = {}

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = dict(message["headers"])
        else:
            answer["body"] = answer.get("body", b"") + message.get("body", b"")

    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["headers"], answer["body"]


def limited(app) -> BodyLimitMiddleware:
    return BodyLimitMiddleware(app, settings=Settings(max_body_bytes=LIMIT))


def error_of(body: bytes) -> dict:
    answer = json.loads(body)
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message", "fields"}
    return answer["error"]


@pytest.mark.parametrize("size", [0, 1, LIMIT])
def test_a_declared_length_within_the_limit_goes_through_untouched(size):
    app = Echo()
    status, _, body = call(limited(app), [(b"content-length", str(size).encode())], [b"x" * size])
    assert (status, body) == (200, str(size).encode())


@pytest.mark.parametrize("declared", [LIMIT + 1, 10**9, "9" * 40])
def test_a_declared_length_over_the_limit_is_413_before_the_app_runs(declared):
    app = Echo()
    status, headers, body = call(limited(app), [(b"content-length", str(declared).encode())], [b""])
    assert status == 413 and not app.called
    error = error_of(body)
    assert error["code"] == "too_large" and f"{LIMIT:,} bytes" in error["message"]
    assert headers[b"connection"] == b"close"  # the unread body is left on the connection


def test_leading_zeros_are_still_a_length():
    app = Echo()
    status, _, _ = call(limited(app), [(b"content-length", b"0" * 30 + b"12")], [b"x" * 12])
    assert status == 200


@pytest.mark.parametrize(
    "declared",
    [b"abc", b"-1", b"+5", b" 5", b"5 ", b"1e3", b"0x10", b"", "５".encode(), b"1,000", b"\x00"],
)
def test_a_malformed_length_is_400(declared):
    app = Echo()
    status, _, body = call(limited(app), [(b"content-length", declared)], [b""])
    assert status == 400 and not app.called
    assert error_of(body)["code"] == "bad_request"


def test_two_different_lengths_are_400_and_two_equal_ones_are_one():
    app = Echo()
    twice = [(b"content-length", b"3"), (b"content-length", b"5")]
    assert call(limited(app), twice, [b"xxx"])[0] == 400 and not app.called
    same = [(b"content-length", b"3"), (b"content-length", b"3")]
    assert call(limited(app), same, [b"xxx"]) == (200, {}, b"3")


def test_a_chunked_body_is_counted_as_it_streams():
    app = Echo()
    assert call(limited(app), [], [b"x" * 1000, b"x" * 1000])[2] == b"2000"
    status, _, body = call(limited(app), [], [b"x" * 1000] * 3)
    # Echo has no handler for BodyTooLarge: the middleware answers it itself.
    assert status == 413 and error_of(body)["code"] == "too_large"


def test_a_body_too_large_after_the_answer_started_cannot_be_answered_413():
    async def answers_first(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        while (await receive()).get("more_body"):
            pass

    with pytest.raises(BodyTooLarge):
        call(limited(answers_first), [], [b"x" * 1000] * 3)


def test_other_scopes_pass_untouched():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    middleware = limited(app)
    asyncio.run(middleware({"type": "lifespan"}, None, None))
    asyncio.run(middleware({"type": "websocket", "headers": []}, None, None))
    assert seen == ["lifespan", "websocket"]


def test_the_limit_is_a_setting(monkeypatch):
    monkeypatch.setenv("VALUATION_MAX_BODY_BYTES", "12345")
    assert Settings().max_body_bytes == 12345


# --- in the served app -------------------------------------------------------------------------


def served(settings, tmp_path_factory, **changes):
    """The session's champion, with `changes` to its settings and a quote record of its own."""
    records = tmp_path_factory.mktemp("limits") / "records.db"
    changed = settings.model_copy(update={**changes, "database_url": f"sqlite:///{records}"})
    return TestClient(create_app(settings=changed), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def small(trained, settings, tmp_path_factory):
    """The champion served with a limit of LIMIT bytes."""
    with served(settings, tmp_path_factory, max_body_bytes=LIMIT) as client:
        yield client


@pytest.fixture(scope="module")
def default(trained, settings, tmp_path_factory):
    """The champion served with the default limit."""
    with served(settings, tmp_path_factory) as client:
        yield client


def status_count(client, status: int, endpoint: str) -> float:
    text = client.get("/metrics").text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("valuation_requests_total{")
        and f'status="{status}"' in line
        and f'endpoint="{endpoint}"' in line
    )


@pytest.mark.parametrize("path", ["/v1/quote", "/v1/quotes", "/v1/appraisal", "/v1/sales"])
def test_the_served_app_refuses_a_large_body_in_the_error_shape(small, path):
    before = status_count(small, 413, path)
    body = json.dumps({"listings": [SPELLED] * 100}).encode()
    assert len(body) > LIMIT
    response = small.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"
    # Counted (the limit runs inside the metrics), under the route it was sent to.
    assert status_count(small, 413, path) == before + 1


def test_the_served_app_refuses_a_large_chunked_body_in_the_error_shape(small):
    def chunks():
        yield b'{"listings": ['
        for _ in range(100):
            yield json.dumps(SPELLED).encode() + b","
        yield b"{}]}"

    response = small.post(
        "/v1/quotes", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["code"] == "too_large" and f"{LIMIT:,} bytes" in error["message"]


def test_the_served_app_quotes_a_body_just_under_the_limit(small):
    body = json.dumps(SPELLED).encode()
    padded = body[:-1] + b" " * (LIMIT - len(body)) + b"}"
    assert len(padded) == LIMIT
    response = small.post("/v1/quote", content=padded, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text


def full_batch(count: int) -> bytes:
    """`count` listings in marketplace spellings with 36-character ids, as a client that escapes
    non-ASCII and indents would send them: the largest realistic body of a batch."""
    listings = [
        {**SPELLED, "fans": f"{i * 7919 % 3_000_000:,}", "listing_id": f"{i:036d}"}
        for i in range(count)
    ]
    return json.dumps({"listings": listings}, ensure_ascii=True, indent=2).encode()


def test_the_default_limit_holds_a_full_batch_with_room_and_not_much_more():
    default = Settings.model_fields["max_body_bytes"].default
    size = len(full_batch(MAX_BATCH))
    assert 1.4 * size <= default <= 3 * size, (size, default)


def test_a_full_batch_is_quoted_and_one_more_listing_is_422_not_413(default):
    body = full_batch(MAX_BATCH)
    headers = {"content-type": "application/json"}
    answer = default.post("/v1/quotes", content=body, headers=headers)
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["quoted"] == MAX_BATCH
    over = default.post("/v1/quotes", content=full_batch(MAX_BATCH + 1), headers=headers)
    assert over.status_code == 422
    assert [problem["field"] for problem in over.json()["error"]["fields"]] == ["listings"]
