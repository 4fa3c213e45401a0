"""The transport floor: a bare ASGI app that reads a request's body and answers a constant JSON
quote-sized body. Served by the same uvicorn as our API, it is the most any route could do on the
day's machine (`benchmarks/serving.py` prints our API's share of it)."""

ANSWER = (
    b'{"price_estimate":5222.0,"price_low":4096.0,"price_high":6585.0,"interval":0.8,'
    b'"currency":"CNY","model":{"name":"kuaishou-account-price","version":"1"},"notes":[]}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})
