"""Operations: liveness, readiness, Prometheus figures."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.answers import ERRORS
from api.deps import MetricsDep, ValuerDep
from api.errors import ServiceError
from valuation.quoting import model_ref
from valuation.smoke import smoke_problems

router = APIRouter()


@router.get("/healthz", tags=["operations"])
async def healthz():
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: ERRORS[503]}, tags=["operations"])
async def readyz(valuer: ValuerDep):
    """A model is loaded and answers the smoke listings with sane prices."""
    problems = smoke_problems(valuer)
    if problems:
        raise ServiceError(503, "model_unhealthy", "; ".join(problems))
    return {"status": "ready", "model": model_ref(valuer)}


@router.get("/metrics", tags=["operations"], response_class=Response)
def metrics(served: MetricsDep):
    """Prometheus exposition: requests and latency by endpoint and status, quotes, model loaded."""
    return Response(generate_latest(served.registry), media_type=CONTENT_TYPE_LATEST)
