"""Device registry routes: enrolment with a one-time code, self-test reports, the link speed
test, and revoking a device.

Enrolment: the kiosk sends the code, the Ed25519 public key it made for itself and its
signature of `enrolment.proof_message(code, key)`. The hub checks the proof, uses the code
once (a conditional UPDATE, so two racing kiosks cannot both win), registers the device with
its key, and answers a fresh bearer token (only its SHA-256 is kept). Everything after that
presents the token exactly as before (docs/protocol.md), so the rest of the system is
unchanged. Wrong codes are throttled per source address and across the hub (429).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from porchlight.errors import NotAuthorised
from porchlight.hub import auth, enrolment
from porchlight.hub.api import (
    _FORBIDDEN,
    _INVALID,
    _THROTTLED,
    _UNAUTHORISED,
    ErrorBody,
    client_source,
)
from porchlight.hub.auth import DeviceIdentity, PersonIdentity, require_device, require_person
from porchlight.hub.enrolment import EnrolmentState
from porchlight.hub.services import services
from porchlight.hub.store import DeviceRow, Role
from porchlight.hub.teams import can_see

router = APIRouter()

MAX_SPEED_TEST_BYTES = 1024 * 1024
DEFAULT_SPEED_TEST_BYTES = 256 * 1024
MAX_RESULTS = 20


class EnrolRequest(BaseModel):
    code: str = Field(min_length=1, max_length=32, description="the one-time code, as typed")
    public_key: str = Field(
        min_length=43, max_length=44, description="the device's raw Ed25519 public key, base64url"
    )
    proof: str = Field(
        min_length=86,
        max_length=88,
        description="base64url Ed25519 signature of enrolment.proof_message(code, public_key)",
    )


class EnrolResult(BaseModel):
    device_id: str
    patient_id: str
    display_name: str = Field(
        description="so the nurse can see the kiosk is set up for the right person"
    )
    token: str = Field(description="the device's bearer token: store it 0600, never log it")


class CheckResult(BaseModel):
    check: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")
    status: Literal["ok", "problem", "not_checked"]
    words: str = Field(min_length=1, max_length=300, description="the result in plain words")
    value: float | None = None


class SelfTestReport(BaseModel):
    ran_at: datetime
    trigger: Literal["setup", "daily", "manual"]
    results: list[CheckResult] = Field(min_length=1, max_length=MAX_RESULTS)


class SelfTestOut(BaseModel):
    ran_at: datetime
    received_at: datetime
    trigger: str
    results: list[CheckResult]


class DeviceOut(BaseModel):
    device_id: str
    patient_id: str | None = Field(description="left out for support staff")
    patient_name: str | None = Field(description="left out for support staff")
    team_id: str | None
    created: datetime
    last_seen: datetime | None
    revoked_at: datetime | None
    has_key: bool = Field(description="enrolled with a device-made key pair")
    self_test: SelfTestOut | None


class Received(BaseModel):
    received: int


def device_out(row: DeviceRow, *, clinical: bool) -> DeviceOut:
    """A device as a page shows it; `clinical` False leaves out who the patient is."""
    d = row.device
    test = row.self_test
    return DeviceOut(
        device_id=d.id,
        patient_id=d.patient_id if clinical else None,
        patient_name=row.patient_name if clinical else None,
        team_id=row.team_id,
        created=d.created,
        last_seen=d.last_seen,
        revoked_at=d.revoked_at,
        has_key=row.has_key,
        self_test=None
        if test is None
        else SelfTestOut(
            ran_at=test.ran_at,
            received_at=test.received_at,
            trigger=test.trigger,
            results=[CheckResult(**r) for r in test.results],
        ),
    )


# -- enrolment ----------------------------------------------------------------------------


@router.post(
    "/api/enrol",
    response_model=EnrolResult,
    responses={
        400: {"model": ErrorBody, "description": "bad key or proof"},
        **_UNAUTHORISED,
        **_THROTTLED,
        **_INVALID,
    },
    tags=["device"],
)
def enrol(body: EnrolRequest, request: Request) -> EnrolResult:
    """Enrol a device with a one-time code and its own public key; answers its bearer token."""
    hub = services(request)
    now = hub.clock()
    keys = enrolment.guard_keys(client_source(request))
    hub.guards.enrolment.check(keys, now)
    code = enrolment.normalise_code(body.code)
    public_key = enrolment.b64encode(enrolment.verify_proof(code, body.public_key, body.proof))
    found = hub.store.enrolment_by_code_hash(enrolment.code_hash(code))
    state = None
    if found is not None:
        state = EnrolmentState(found.expires, found.used_at, found.cancelled_at is not None)
    try:
        enrolment.check_usable(state, now)
    except NotAuthorised:
        hub.guards.enrolment.failed(keys, now)
        raise
    token = auth.new_token()
    device = hub.store.enrol_device(found.id, auth.hash_token(token), public_key, now=now)
    if device is None:  # another kiosk used the code a moment ago
        enrolment.check_usable(EnrolmentState(found.expires, now), now)
    hub.guards.enrolment.succeeded(keys)
    patient = hub.store.get_patient(device.patient_id)
    return EnrolResult(
        device_id=device.id,
        patient_id=device.patient_id,
        display_name=patient.display_name if patient else "",
        token=token,
    )


# -- what an enrolled device reports ------------------------------------------------------


@router.post(
    "/api/device/self-test",
    response_model=SelfTestOut,
    responses={**_UNAUTHORISED, **_INVALID},
    tags=["device"],
)
def post_self_test(
    body: SelfTestReport,
    request: Request,
    device: Annotated[DeviceIdentity, Depends(require_device)],
) -> SelfTestOut:
    """Store this device's latest self-test (shown on the nurse page)."""
    hub = services(request)
    now = hub.clock()
    results = [r.model_dump() for r in body.results]
    hub.store.save_self_test(
        device.device_id, ran_at=body.ran_at, trigger=body.trigger, results=results, now=now
    )
    return SelfTestOut(
        ran_at=body.ran_at, received_at=now, trigger=body.trigger, results=body.results
    )


@router.get(
    "/api/device/speed-test",
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "random bytes"},
        **_UNAUTHORISED,
        **_INVALID,
    },
    response_class=Response,
    tags=["device"],
)
def speed_test_down(
    _device: Annotated[DeviceIdentity, Depends(require_device)],
    size: Annotated[int, Query(ge=1, le=MAX_SPEED_TEST_BYTES)] = DEFAULT_SPEED_TEST_BYTES,
) -> Response:
    """Random (incompressible) bytes, for the self-test's rough download rate."""
    return Response(os.urandom(size), media_type="application/octet-stream")


@router.post(
    "/api/device/speed-test",
    response_model=Received,
    responses={
        413: {"model": ErrorBody, "description": "more than 1 MiB"},
        **_UNAUTHORISED,
    },
    tags=["device"],
)
async def speed_test_up(
    request: Request, _device: Annotated[DeviceIdentity, Depends(require_device)]
) -> Response:
    """Takes up to 1 MiB and throws it away, for the self-test's rough upload rate."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_SPEED_TEST_BYTES:
            return JSONResponse(
                {"error": "too_large", "message": "Send at most 1 MiB for a speed test."},
                status_code=413,
            )
    return JSONResponse({"received": size})


# -- revoking ----------------------------------------------------------------------------


@router.post(
    "/api/devices/{device_id}/revoke",
    response_model=DeviceOut,
    responses={
        **_UNAUTHORISED,
        **_FORBIDDEN,
        404: {"model": ErrorBody, "description": "no such device (in your teams)"},
    },
    tags=["devices"],
)
async def revoke(
    device_id: str,
    request: Request,
    person: Annotated[PersonIdentity, Depends(require_person(Role.NURSE, Role.SUPPORT))],
) -> DeviceOut | JSONResponse:
    """Withdraw a device (lost, returned): its next request is refused, its socket closed.

    Nurses revoke their teams' devices; support staff any device."""
    hub = services(request)

    def work() -> DeviceRow | None:
        rows = hub.store.device_rows(None, device_id=device_id)
        if not rows or (person.role is Role.NURSE and not can_see(person.teams, rows[0].team_id)):
            return None
        hub.store.revoke_device(device_id, now=hub.clock())
        return hub.store.device_rows(None, device_id=device_id)[0]

    row = await run_in_threadpool(work)
    if row is None:
        return not_found("No such device in your care teams. Check the list and try again.")
    await hub.signalling.revoke_device(device_id)
    return device_out(row, clinical=person.role is Role.NURSE)


def not_found(message: str) -> JSONResponse:
    return JSONResponse({"error": "not_found", "message": message}, status_code=404)
