"""The endpoints. Quote and appraisal are `async def` on purpose: their work (~50 us, no I/O) costs
less than the hop to a worker thread that a plain `def` would take. The batch's valuation, which
can run for a noticeable time, and the sales route's lookup run in the thread pool. Every answer
waits for its record's commit on the event loop (`api.recording.record`)."""

from api.routes import admin, appraisals, listings, model, operations, quotes, sales

ROUTERS = tuple(
    module.router for module in (quotes, appraisals, sales, listings, model, operations, admin)
)
QUOTING = (quotes.router, appraisals.router)
"""Public by default; behind a key in a private deployment (`quotes_need_key`)."""
