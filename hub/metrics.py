"""Prometheus metrics at `/metrics`, one registry per app (several apps share a test process).

- porchlight_websockets_open{kind="device"|"clinician"}: sockets open on this instance
  (connected kiosks, clinic pages);
- porchlight_waiting_patients{state="waiting"|"in_call"}, porchlight_calls: the room as this
  instance sees it (with PostgreSQL, the shared room: the same on every instance);
- porchlight_sync_records_total{status}: records received through /api/records by result
  (stored, duplicate, conflict, invalid, forbidden — the last three are rejections);
- porchlight_sync_batches_total{outcome="accepted"|"refused"}: whole batches;
- porchlight_http_request_duration_seconds{method,route,status}: request latency by route
  template (never the raw path, which can carry ids).

Counting happens in an ASGI middleware, so no feature module needs to know about metrics.
No label carries patient data.
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest

from porchlight.hub.waiting_room import PatientState, WaitingRoom
from porchlight.protocol import CLINIC_WS_PATH, DEVICE_WS_PATH

log = logging.getLogger(__name__)

RECORDS_PATH = "/api/records"
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_MAX_ANSWER_BYTES = 4 * 1024 * 1024

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class _RoomCollector:
    def __init__(self, room: WaitingRoom) -> None:
        self._room = room

    def collect(self) -> Iterator[GaugeMetricFamily]:
        rows = self._room.snapshot()
        waiting = GaugeMetricFamily(
            "porchlight_waiting_patients", "Patients in the waiting room", labels=["state"]
        )
        for state in PatientState:
            waiting.add_metric([state.value], sum(1 for r in rows if r.state is state))
        yield waiting
        yield GaugeMetricFamily(
            "porchlight_calls", "Calls in progress", value=len(self._room.calls)
        )


class HubMetrics:
    def __init__(self, room: WaitingRoom) -> None:
        self.registry = CollectorRegistry()
        self.sockets = Gauge(
            "porchlight_websockets_open",
            "WebSockets open on this instance",
            ["kind"],
            registry=self.registry,
        )
        for kind in ("device", "clinician"):
            self.sockets.labels(kind)
        self.records = Counter(
            "porchlight_sync_records",
            "Records received from kiosks, by result",
            ["status"],
            registry=self.registry,
        )
        for status in ("stored", "duplicate", "conflict", "invalid", "forbidden"):
            self.records.labels(status)
        self.batches = Counter(
            "porchlight_sync_batches",
            "Record batches received, accepted or refused whole",
            ["outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "porchlight_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route", "status"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_RoomCollector(room))  # type: ignore[arg-type]

    def count_records_answer(self, body: bytes, encoding: str) -> None:
        """Count the per-record results of a 200 answer from /api/records."""
        try:
            if encoding == "gzip":
                body = zlib.decompress(body, wbits=16 + zlib.MAX_WBITS)
            results = json.loads(body)["results"]
            for result in results:
                self.records.labels(str(result["status"])[:16]).inc()
        except (ValueError, KeyError, TypeError, zlib.error):
            log.warning("could not count a records answer")

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """Pure ASGI: socket counts, request latency and sync results, without touching bodies
    other than /api/records answers."""

    def __init__(self, app: Any, metrics: HubMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path")
        kind = {DEVICE_WS_PATH: "device", CLINIC_WS_PATH: "clinician"}.get(path)
        if kind is None:
            await self.app(scope, receive, send)
            return
        gauge = self.metrics.sockets.labels(kind)
        open_ = False

        async def counting_send(message: Message) -> None:
            nonlocal open_
            if message["type"] == "websocket.accept" and not open_:
                open_ = True
                gauge.inc()
            elif message["type"] == "websocket.close" and open_:
                open_ = False
                gauge.dec()
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if open_:
                gauge.dec()

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        status = 500
        records = scope["method"] == "POST" and scope.get("path") == RECORDS_PATH
        body: list[bytes] = []
        size = 0
        encoding = ""

        async def watching_send(message: Message) -> None:
            nonlocal status, size, encoding
            if message["type"] == "http.response.start":
                status = message["status"]
                if records:
                    headers = dict(message.get("headers") or [])
                    encoding = headers.get(b"content-encoding", b"").decode("latin-1")
            elif message["type"] == "http.response.body" and records and status == 200:
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= _MAX_ANSWER_BYTES:
                    body.append(chunk)
            await send(message)

        try:
            await self.app(scope, receive, watching_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.latency.labels(scope["method"], template, str(status)).observe(
                time.perf_counter() - started
            )
            if records:
                self.metrics.batches.labels("accepted" if status == 200 else "refused").inc()
                if status == 200 and size <= _MAX_ANSWER_BYTES:
                    self.metrics.count_records_answer(b"".join(body), encoding)


router = APIRouter(tags=["ops"])


@router.get("/metrics", summary="Prometheus metrics for this instance", include_in_schema=True)
async def metrics(request: Request) -> Response:
    hub_metrics: HubMetrics = request.app.state.metrics
    return Response(hub_metrics.render(), media_type=CONTENT_TYPE_LATEST)
