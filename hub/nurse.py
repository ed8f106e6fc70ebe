"""The nurse's page (`/nurse`) and its API: patients of the nurse's care teams, one-time
enrolment codes with their QR code, and the teams' devices with their last self-test.

Nurses see a patient's name, care team and NHS number (they enrol for that patient), never
clinical records. A code is shown once, when it is made: the hub keeps only its hash.
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path
from typing import Annotated

import qrcode
import qrcode.image.svg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from porchlight.errors import BadInput
from porchlight.hub import enrolment
from porchlight.hub.api import _FORBIDDEN, _INVALID, _UNAUTHORISED, ErrorBody
from porchlight.hub.auth import PersonIdentity, require_person
from porchlight.hub.devices import DeviceOut, device_out, not_found
from porchlight.hub.nhs_number import format_nhs_number, normalise_nhs_number
from porchlight.hub.practice import practice_ids
from porchlight.hub.services import HubServices, services
from porchlight.hub.store import Enrolment, Role
from porchlight.hub.teams import can_see

STATIC_DIR = Path(__file__).parent / "static"

router = APIRouter()
Nurse = Annotated[PersonIdentity, Depends(require_person(Role.NURSE))]
_NOT_FOUND = {404: {"model": ErrorBody, "description": "no such patient in your care teams"}}
_BAD = {400: {"model": ErrorBody, "description": "the input is not valid"}}


class TeamOut(BaseModel):
    team_id: str
    name: str


class NewPatient(BaseModel):
    display_name: str = Field(
        min_length=1, max_length=200, description="how the clinic and kiosk show the patient"
    )
    nhs_number: str | None = Field(
        default=None, max_length=20, description="optional; 10 digits with a valid check digit"
    )
    team_id: str = Field(min_length=1, max_length=36)


class EnrolmentOut(BaseModel):
    enrolment_id: str
    created: datetime
    expires: datetime
    status: str = Field(description='"waiting", "used", "expired" or "cancelled"')
    device_id: str | None


class PatientOut(BaseModel):
    patient_id: str
    display_name: str
    team_id: str | None
    team_name: str | None
    nhs_number: str | None = Field(description="formatted 3-3-4, or null")
    enrolments: list[EnrolmentOut]


class NewEnrolment(BaseModel):
    enrolment_id: str
    patient_id: str
    patient_name: str
    code: str = Field(description="shown once: the hub keeps only its hash")
    code_display: str = Field(description="the code as printed: ABCD-EFGH")
    expires: datetime
    hub_url: str
    enrol_uri: str = Field(description="what the QR code carries")
    qr_svg: str = Field(description="the QR code as an SVG data: URI")


def _teams_out(hub: HubServices, team_ids: frozenset[str]) -> list[TeamOut]:
    return [TeamOut(team_id=t.id, name=t.name) for t in hub.store.list_teams() if t.id in team_ids]


def _status(e: Enrolment, now: datetime) -> str:
    if e.used_at is not None:
        return "used"
    if e.cancelled_at is not None:
        return "cancelled"
    return "expired" if now >= e.expires else "waiting"


def _enrolment_out(e: Enrolment, now: datetime) -> EnrolmentOut:
    return EnrolmentOut(
        enrolment_id=e.id,
        created=e.created,
        expires=e.expires,
        status=_status(e, now),
        device_id=e.device_id,
    )


def qr_svg_data_uri(text: str) -> str:
    """`text` as a QR code in an SVG data: URI (the page shows it as an image, CSP allows it)."""
    image = qrcode.make(
        text,
        image_factory=qrcode.image.svg.SvgPathImage,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
        box_size=10,
        border=4,
    )
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()


def hub_url(request: Request) -> str:
    """The address kiosks reach this hub at: the configured public URL, else this request's."""
    public = services(request).config.public_url
    return (public or str(request.base_url)).rstrip("/")


@router.get("/nurse", include_in_schema=False)
async def nurse_page() -> FileResponse:
    return FileResponse(STATIC_DIR / "nurse.html", media_type="text/html")


@router.get("/api/teams", response_model=list[TeamOut], responses=_UNAUTHORISED, tags=["people"])
def my_teams(
    request: Request, person: Annotated[PersonIdentity, Depends(require_person())]
) -> list[TeamOut]:
    """Your care teams (an admin sees every team)."""
    hub = services(request)
    if person.role is Role.ADMIN:
        return [TeamOut(team_id=t.id, name=t.name) for t in hub.store.list_teams()]
    return _teams_out(hub, person.teams)


@router.get(
    "/api/nurse/patients",
    response_model=list[PatientOut],
    responses={**_UNAUTHORISED, **_FORBIDDEN},
    tags=["nurse"],
)
def list_patients(request: Request, person: Nurse) -> list[PatientOut]:
    """The patients of your care teams, with their enrolments."""
    hub = services(request)
    now = hub.clock()
    names = {t.id: t.name for t in hub.store.list_teams()}
    # The teams' practice patients are for clinicians to rehearse on; a nurse has nothing to
    # enrol or look after there (hub/practice.py runs their simulated kiosks).
    practice = {practice_ids(t).patient_id for t in person.teams}
    patients = [p for p in hub.store.patients_in_teams(person.teams) if p.id not in practice]
    by_patient: dict[str, list[EnrolmentOut]] = {}
    for e in hub.store.enrolments_for_patients([p.id for p in patients]):
        by_patient.setdefault(e.patient_id, []).append(_enrolment_out(e, now))
    return [
        PatientOut(
            patient_id=p.id,
            display_name=p.display_name,
            team_id=p.team_id,
            team_name=names.get(p.team_id or ""),
            nhs_number=format_nhs_number(p.nhs_number) if p.nhs_number else None,
            enrolments=by_patient.get(p.id, []),
        )
        for p in patients
    ]


@router.post(
    "/api/nurse/patients",
    response_model=PatientOut,
    status_code=201,
    responses={**_BAD, **_UNAUTHORISED, **_FORBIDDEN, **_INVALID},
    tags=["nurse"],
)
def create_patient(body: NewPatient, request: Request, person: Nurse) -> PatientOut:
    """Register a patient in one of your care teams: a name, and an NHS number if known."""
    hub = services(request)
    if body.team_id not in person.teams:
        raise BadInput("Choose one of your own care teams for this patient.")
    nhs = normalise_nhs_number(body.nhs_number) if body.nhs_number else None
    patient = hub.store.add_patient(
        body.display_name, now=hub.clock(), team_id=body.team_id, nhs_number=nhs
    )
    team = hub.store.get_team(body.team_id)
    return PatientOut(
        patient_id=patient.id,
        display_name=patient.display_name,
        team_id=body.team_id,
        team_name=team.name if team else None,
        nhs_number=format_nhs_number(nhs) if nhs else None,
        enrolments=[],
    )


@router.post(
    "/api/nurse/patients/{patient_id}/enrolments",
    response_model=NewEnrolment,
    status_code=201,
    responses={**_BAD, **_UNAUTHORISED, **_FORBIDDEN, **_NOT_FOUND},
    tags=["nurse"],
)
async def create_enrolment(
    patient_id: str, request: Request, person: Nurse
) -> NewEnrolment | JSONResponse:
    """A one-time code (and QR code) that enrols one kiosk for this patient within 30 minutes."""
    hub = services(request)
    base = hub_url(request)

    def work() -> NewEnrolment | None:
        patient = hub.store.get_patient(patient_id)
        team = hub.store.team_of_patient(patient_id)
        if patient is None or not can_see(person.teams, team):
            return None
        if team is not None and practice_ids(team).patient_id == patient_id:
            raise BadInput(
                "This is the team's practice patient: it has its own simulated kiosk and "
                "cannot be given a device. Choose a real patient."
            )
        now = hub.clock()
        code = enrolment.new_code()
        made = hub.store.add_enrolment(
            enrolment.code_hash(code),
            patient_id,
            by=person.username,
            now=now,
            expires=enrolment.expires_at(now),
        )
        uri = enrolment.enrolment_uri(base, code)
        return NewEnrolment(
            enrolment_id=made.id,
            patient_id=patient_id,
            patient_name=patient.display_name,
            code=code,
            code_display=enrolment.format_code(code),
            expires=made.expires,
            hub_url=base,
            enrol_uri=uri,
            qr_svg=qr_svg_data_uri(uri),
        )

    made = await run_in_threadpool(work)
    if made is None:
        return not_found("No such patient in your care teams.")
    return made


@router.post(
    "/api/nurse/enrolments/{enrolment_id}/cancel",
    response_model=EnrolmentOut,
    responses={**_UNAUTHORISED, **_FORBIDDEN, **_NOT_FOUND},
    tags=["nurse"],
)
def cancel_enrolment(
    enrolment_id: str, request: Request, person: Nurse
) -> EnrolmentOut | JSONResponse:
    """Stop a code that has not been used (a lost sheet)."""
    hub = services(request)
    found = hub.store.get_enrolment(enrolment_id)
    if found is None or not can_see(person.teams, hub.store.team_of_patient(found.patient_id)):
        return not_found("No such enrolment in your care teams.")
    now = hub.clock()
    hub.store.cancel_enrolment(enrolment_id, now=now)
    return _enrolment_out(hub.store.get_enrolment(enrolment_id) or found, now)


@router.get(
    "/api/nurse/devices",
    response_model=list[DeviceOut],
    responses={**_UNAUTHORISED, **_FORBIDDEN},
    tags=["nurse"],
)
def list_devices(request: Request, person: Nurse) -> list[DeviceOut]:
    """Your care teams' kiosks, newest first, with their last self-test."""
    hub = services(request)
    practice = {practice_ids(t).device_id for t in person.teams}
    rows = hub.store.device_rows(person.teams)
    return [device_out(r, clinical=True) for r in rows if r.device.id not in practice]
