"""Liveness and readiness for load balancers and orchestrators.

`/livez`: the process answers (restart it if not). `/readyz`: send it traffic — the database
answers, and on PostgreSQL the message bus and shared room are connected; it fails while the
instance starts and once it begins shutting down, so a load balancer moves kiosks elsewhere.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from porchlight.hub.cluster import Cluster
from porchlight.hub.services import services

router = APIRouter(tags=["ops"])

DATABASE_TIMEOUT_S = 2.0


def cluster_of(request: Request) -> Cluster:
    return request.app.state.cluster


@router.get("/livez", summary="The process is alive")
async def livez(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, "instance": cluster_of(request).instance_id})


@router.get(
    "/readyz",
    summary="Ready for traffic (database, bus and shared room connected; not shutting down)",
    responses={503: {"description": "not ready; `problems` says why"}},
)
async def readyz(request: Request) -> JSONResponse:
    cluster = cluster_of(request)
    problems = cluster.problems()
    engine = services(request).store.engine

    def ping() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    try:
        with anyio.fail_after(DATABASE_TIMEOUT_S):
            await anyio.to_thread.run_sync(ping, abandon_on_cancel=True)
    except Exception:
        problems.append("database not answering")
    body = {"ready": not problems, "instance": cluster.instance_id}
    if problems:
        message = "Not ready: " + "; ".join(problems) + "."
        return JSONResponse(
            {"error": "unavailable", "message": message, "problems": problems, **body},
            status_code=503,
        )
    return JSONResponse(body)
