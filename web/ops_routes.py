"""Operations routes: ``/healthz`` (200 or 503 with the failing part named) and ``/metrics``."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from exporthub import health, metrics
from exporthub.db import get_database
from exporthub.settings import get_settings


def _queue() -> health.QueueProbe:
    import worker  # the edge: the web server's own handle on the queue

    return worker.HueyDispatcher()


async def healthz(_request: Request) -> JSONResponse:
    settings = get_settings()

    def run() -> health.HealthReport:
        try:
            db = get_database(settings)
        except Exception as exc:  # the database cannot even be opened
            return health.HealthReport((health.Check("database", False, f"{type(exc).__name__}: {exc}", 0.0),))
        return health.check(db, settings, _queue())

    report = await run_in_threadpool(run)
    return JSONResponse(report.to_json(), status_code=200 if report.ok else 503)


async def prometheus(_request: Request) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    settings = get_settings()
    body = await run_in_threadpool(lambda: metrics.render(get_database(settings), settings, _queue()))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


ROUTES = [Route("/healthz", healthz), Route("/metrics", prometheus)]
