"""`create_app(config)`: the hub as one FastAPI application.

Routes: the JSON API (`porchlight.hub.api`), the WebSockets (`porchlight.hub.signalling`),
the clinic page and its static files. Every error leaves as `{"error", "message"}`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

import porchlight
from porchlight.errors import BadInput, NotAuthorised
from porchlight.hub import (
    accounts,
    api,
    appointments,
    device_plan,
    devices,
    evidence,
    fhir,
    fleet,
    health,
    help_requests,
    inbox,
    metrics,
    nurse,
    patient_settings,
    practice,
    questionnaires,
    releases,
    ringing,
    signalling,
    stills,
)
from porchlight.hub.auth import Forbidden
from porchlight.hub.bus import Bus
from porchlight.hub.cluster import Cluster
from porchlight.hub.config import HubConfig
from porchlight.hub.services import Clock, HubServices, utc_now
from porchlight.hub.store import Store
from porchlight.hub.throttle import Throttled

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"

_ERROR_CODES = {
    400: "bad_request",
    401: "not_authorised",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}

_PLAIN_MESSAGES = {
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
}


def error_response(
    status: int,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {"error": _ERROR_CODES.get(status, "error"), "message": message, **extra}
    return JSONResponse(body, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else None
        if detail in {s.phrase for s in HTTPStatus if s.value == exc.status_code}:
            detail = None  # Starlette's bare "Not Found": say it plainly instead
        # A route's own words ("No such patient in your care teams.") say more than ours.
        message = detail or _PLAIN_MESSAGES.get(exc.status_code) or "The request failed."
        return error_response(exc.status_code, message, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        # Only where and what; never the submitted values (they may be passwords).
        detail = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        fields = ", ".join(".".join(str(p) for p in e["loc"][1:]) or "body" for e in detail)
        return error_response(
            422, f"The request is not valid ({fields}). Fix it and send it again.", detail=detail
        )

    @app.exception_handler(NotAuthorised)
    async def not_authorised(_request: Request, exc: NotAuthorised) -> Response:
        return error_response(403 if isinstance(exc, Forbidden) else 401, str(exc))

    @app.exception_handler(Throttled)
    async def throttled(_request: Request, exc: Throttled) -> Response:
        return error_response(429, str(exc), headers={"Retry-After": exc.retry_after_header})

    @app.exception_handler(BadInput)
    async def bad_input(_request: Request, exc: BadInput) -> Response:
        return error_response(400, str(exc))

    @app.exception_handler(Exception)
    async def crashed(_request: Request, exc: Exception) -> Response:
        log.error("request failed with %s", type(exc).__name__)
        return error_response(
            500, "The hub hit an internal error. Try again; if it persists, tell support."
        )


def _install_security_headers(app: FastAPI) -> None:
    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        host = request.headers.get("host", "")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"media-src 'self' blob: mediastream:; connect-src 'self' ws://{host} wss://{host}; "
            "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def create_app(
    config: HubConfig,
    *,
    store: Store | None = None,
    clock: Clock = utc_now,
    bus: Bus | None = None,
) -> FastAPI:
    """Build the hub app. Without `store`, opens (and creates) the configured database."""
    if store is None:
        store = Store.open(config.resolved_database_url())
    # SQLite: one instance. PostgreSQL: LISTEN/NOTIFY bus and a shared room (hub/cluster.py).
    cluster = Cluster.create(config, store.engine, clock, bus=bus)
    hub = HubServices(
        config=config,
        store=store,
        clock=clock,
        signalling=signalling.Signalling(
            config,
            clock,
            bus=cluster.bus,
            room=cluster.room,
            room_sync=cluster.room_sync,
            events=appointments.CallEvents(store, clock),
            rings=ringing.RingBook(store),
        ),
    )

    # Each care team's practice patient and its on-demand kiosk process (issue 10).
    practice_kiosks = practice.PracticeKiosks(config, store, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await cluster.start(hub.signalling)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(hub.signalling.run_timers)
                yield
                cluster.draining = True
                tasks.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await practice_kiosks.stop_all()
                await cluster.stop()

    app = FastAPI(
        title="Porchlight hub",
        version=porchlight.__version__,
        description="Waiting room, signalling and device registry for Porchlight kiosks.",
        docs_url=None,  # Swagger UI loads scripts from a CDN; /openapi.json is the contract
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = hub
    app.state.cluster = cluster
    app.state.practice = practice_kiosks
    app.state.metrics = metrics.HubMetrics(cluster.room)
    app.add_middleware(metrics.MetricsMiddleware, metrics=app.state.metrics)
    _install_error_handlers(app)
    _install_security_headers(app)
    app.include_router(api.router)
    app.include_router(signalling.router)
    app.include_router(inbox.router)
    app.include_router(questionnaires.router)
    app.include_router(fhir.router)
    app.include_router(devices.router)
    app.include_router(nurse.router)
    app.include_router(accounts.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(fleet.router)  # heartbeats, rollouts, diagnostics, /support
    # Appointments, kiosk settings, the kiosk's plan, help requests (issue 8).
    app.include_router(appointments.router)
    app.include_router(patient_settings.router)
    app.include_router(device_plan.router)
    app.include_router(help_requests.router)
    app.include_router(evidence.router)  # /evidence and its figures
    app.include_router(practice.router)  # practice patients (issue 10)
    app.include_router(stills.router)  # still uploads and reading them (issue 10)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/clinic", status_code=307)

    @app.get("/clinic", include_in_schema=False)
    async def clinic_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "clinic.html", media_type="text/html")

    releases.mount(app, config)  # TUF metadata and release files under /releases
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
