"""The hub's JSON HTTP API (docs/protocol.md, "HTTP"), with response models for OpenAPI."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

import porchlight
from porchlight.hub import auth, turn
from porchlight.hub import messages as m
from porchlight.hub.auth import (
    CLINICAL_ROLES,
    DeviceIdentity,
    PersonIdentity,
    require_clinician_or_device,
    require_device,
    require_person,
)
from porchlight.hub.services import services
from porchlight.protocol import SESSION_COOKIE

router = APIRouter()


class ErrorBody(BaseModel):
    error: str = Field(description="machine-readable code, e.g. not_authorised")
    message: str = Field(description="what is wrong and what to do, in plain words")
    detail: list[dict[str, Any]] | None = Field(default=None, description="field errors (422 only)")


class Health(BaseModel):
    ok: bool
    version: str


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class Me(BaseModel):
    username: str
    display_name: str
    role: str


class Ok(BaseModel):
    ok: bool = True


class WaitingPatientOut(BaseModel):
    patient_id: str
    display_name: str
    state: str = Field(description='"waiting" or "in_call"')
    since: str = Field(description="ISO 8601 time the patient joined")
    device_online: bool


class WaitingRoomOut(BaseModel):
    patients: list[WaitingPatientOut]


class IceServers(BaseModel):
    ice_servers: list[dict[str, Any]] = Field(
        description="RTCIceServer dictionaries; empty on a LAN. TURN entries from a hub with "
        "turn_secret carry a credential minted for this request (docs/turn.md)"
    )
    ice_transport_policy: str = Field(
        default="all", description='RTCConfiguration.iceTransportPolicy: "all" or "relay"'
    )


class DeviceMe(BaseModel):
    device_id: str
    patient_id: str
    display_name: str
    ice_servers: list[dict[str, Any]]


_UNAUTHORISED = {401: {"model": ErrorBody, "description": "missing or bad credential"}}
_FORBIDDEN = {403: {"model": ErrorBody, "description": "this role may not do that"}}
_THROTTLED = {429: {"model": ErrorBody, "description": "too many failed attempts; see Retry-After"}}
_INVALID = {422: {"model": ErrorBody, "description": "the request body is not valid"}}


def client_source(request: Request) -> str:
    """Who is asking, for throttling: the peer address (the hub's own proxy, if any, is
    trusted to be the only peer; see docs/threat-model.md)."""
    return request.client.host if request.client else "unknown"


@router.get("/healthz", response_model=Health, tags=["ops"])
async def healthz() -> Health:
    return Health(ok=True, version=porchlight.__version__)


@router.post(
    "/api/login",
    response_model=Me,
    responses={**_UNAUTHORISED, **_THROTTLED, **_INVALID},
    tags=["people"],
)
def login(body: LoginRequest, request: Request, response: Response) -> Me:
    """Log in. Wrong passwords are limited per username and per source address (429)."""
    # Sync on purpose: argon2 is slow CPU work; FastAPI runs this in its threadpool.
    hub = services(request)
    token, person = auth.login(
        hub.store,
        body.username,
        body.password,
        now=hub.clock(),
        ttl_s=hub.config.session_ttl_s,
        guard=hub.guards.login,
        source=client_source(request),
    )
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(hub.config.session_ttl_s),
        httponly=True,
        samesite="strict",
        secure=hub.config.uses_https or request.url.scheme == "https",
        path="/",
    )
    return Me(username=person.username, display_name=person.display_name, role=person.role.value)


@router.post("/api/logout", response_model=Ok, tags=["people"])
async def logout(request: Request, response: Response) -> Ok:
    """End this browser's session (if any) and close its clinic sockets."""
    hub = services(request)
    ended = await run_in_threadpool(auth.logout, hub.store, request.cookies.get(SESSION_COOKIE))
    if ended is not None:
        await hub.signalling.session_ended(ended)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return Ok()


@router.get("/api/me", response_model=Me, responses=_UNAUTHORISED, tags=["people"])
async def me(person: Annotated[PersonIdentity, Depends(require_person())]) -> Me:
    return Me(username=person.username, display_name=person.display_name, role=person.role.value)


@router.get(
    "/api/waiting-room",
    response_model=WaitingRoomOut,
    responses={**_UNAUTHORISED, **_FORBIDDEN},
    tags=["clinic"],
)
async def waiting_room(
    request: Request,
    person: Annotated[PersonIdentity, Depends(require_person(*CLINICAL_ROLES))],
) -> WaitingRoomOut:
    """The patients of your care teams who are waiting or in a call."""
    rows = services(request).signalling.visible_snapshot(person.teams)
    return WaitingRoomOut(patients=[WaitingPatientOut(**m.waiting_room_row(r)) for r in rows])


@router.get(
    "/api/ice-servers",
    response_model=IceServers,
    responses={**_UNAUTHORISED, **_FORBIDDEN},
    tags=["clinic", "device"],
)
async def ice_servers(
    request: Request,
    who: Annotated[DeviceIdentity | PersonIdentity, Depends(require_clinician_or_device)],
) -> IceServers:
    """The ICE servers and transport policy for a peer connection; fetch afresh for each call
    (TURN credentials are short-lived)."""
    hub = services(request)
    kind = "kiosk" if isinstance(who, DeviceIdentity) else "clinic"
    now = hub.clock().timestamp()
    return IceServers(**hub.config.rtc_configuration(now=now, label=turn.new_label(kind)))


@router.get("/api/device/me", response_model=DeviceMe, responses=_UNAUTHORISED, tags=["device"])
async def device_me(
    request: Request, device: Annotated[DeviceIdentity, Depends(require_device)]
) -> DeviceMe:
    return DeviceMe(
        device_id=device.device_id,
        patient_id=device.patient_id,
        display_name=device.display_name,
        ice_servers=services(request).config.ice_server_dicts(
            now=services(request).clock().timestamp(), label=turn.new_label("kiosk")
        ),
    )
