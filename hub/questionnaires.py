"""Which check-in questionnaire each patient answers, and every version ever assigned.

A questionnaire version (url|version) is immutable once stored: the hub must still check
answers a kiosk recorded offline against the version it showed, after the care team moved the
patient on to a newer one. Patients with no assignment get the default check-in.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, Engine, ForeignKey, String, Table, Text, insert, select, update
from starlette.concurrency import run_in_threadpool

from porchlight.errors import BadInput
from porchlight.hub.auth import (
    DeviceIdentity,
    PersonIdentity,
    require_care_team_clinician,
    require_device,
)
from porchlight.hub.db import UTCDateTime, metadata
from porchlight.hub.services import services
from porchlight.kiosk.questionnaire import Questionnaire, default_checkin

questionnaires = Table(
    "questionnaires",
    metadata,
    Column("canonical", String(400), primary_key=True),  # url|version
    Column("resource", Text, nullable=False),  # FHIR Questionnaire JSON
    Column("created", UTCDateTime(), nullable=False),
)

questionnaire_assignments = Table(
    "questionnaire_assignments",
    metadata,
    Column(
        "patient_id",
        String(36),
        ForeignKey("patients.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "canonical",
        String(400),
        ForeignKey("questionnaires.canonical", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("assigned_by", String(64), nullable=False),
    Column("assigned_at", UTCDateTime(), nullable=False),
)


def _dump(q: Questionnaire) -> str:
    return json.dumps(q.to_fhir(), sort_keys=True, separators=(",", ":"))


def known_questionnaire(engine: Engine, canonical: str) -> Questionnaire | None:
    """The questionnaire version `canonical` names, if this hub has ever had it."""
    default = default_checkin()
    if canonical == default.canonical:
        return default
    with engine.connect() as conn:
        row = conn.execute(
            select(questionnaires.c.resource).where(questionnaires.c.canonical == canonical)
        ).first()
    return None if row is None else Questionnaire.from_fhir(json.loads(row[0]))


def assigned_questionnaire(engine: Engine, patient_id: str) -> Questionnaire:
    with engine.connect() as conn:
        row = conn.execute(
            select(questionnaires.c.resource)
            .join(
                questionnaire_assignments,
                questionnaire_assignments.c.canonical == questionnaires.c.canonical,
            )
            .where(questionnaire_assignments.c.patient_id == patient_id)
        ).first()
    return default_checkin() if row is None else Questionnaire.from_fhir(json.loads(row[0]))


def assign_questionnaire(
    engine: Engine, patient_id: str, questionnaire: Questionnaire, *, by: str, now: datetime
) -> None:
    """Assign `questionnaire` to the patient. A url|version already stored with different
    content is refused: versions are immutable (give the changed one a new version)."""
    resource = _dump(questionnaire)
    with engine.begin() as conn:
        existing = conn.execute(
            select(questionnaires.c.resource).where(
                questionnaires.c.canonical == questionnaire.canonical
            )
        ).first()
        default = default_checkin()
        if questionnaire.canonical == default.canonical and resource != _dump(default):
            raise BadInput("that url|version is the built-in check-in; give yours a new version")
        if existing is None:
            conn.execute(
                insert(questionnaires).values(
                    canonical=questionnaire.canonical, resource=resource, created=now
                )
            )
        elif existing[0] != resource:
            raise BadInput(
                "a different questionnaire is already stored under this url|version; "
                "give the changed questionnaire a new version"
            )
        values = {"canonical": questionnaire.canonical, "assigned_by": by, "assigned_at": now}
        done = conn.execute(
            update(questionnaire_assignments)
            .where(questionnaire_assignments.c.patient_id == patient_id)
            .values(**values)
        )
        if done.rowcount == 0:
            conn.execute(insert(questionnaire_assignments).values(patient_id=patient_id, **values))


router = APIRouter(tags=["questionnaires"])
# Who may call: FastAPI dependencies as types (shared by the inbox and FHIR routers).
Device = Annotated[DeviceIdentity, Depends(require_device)]
# A clinician of the care team of the patient the route is about (path or FHIR ?patient=).
Clinician = Annotated[PersonIdentity, Depends(require_care_team_clinician)]


def _fhir_json(q: Questionnaire) -> JSONResponse:
    return JSONResponse(q.to_fhir(), media_type="application/fhir+json")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


@router.get("/api/device/questionnaire", summary="The check-in this device's patient answers")
def device_questionnaire(request: Request, device: Device) -> JSONResponse:
    return _fhir_json(assigned_questionnaire(services(request).store.engine, device.patient_id))


@router.get("/api/patients/{patient_id}/questionnaire", summary="A patient's check-in")
def patient_questionnaire(patient_id: str, request: Request, person: Clinician) -> JSONResponse:
    hub = services(request)
    if hub.store.get_patient(patient_id) is None:
        return _error(404, "not_found", "No such patient. Check the patient id.")
    return _fhir_json(assigned_questionnaire(hub.store.engine, patient_id))


@router.put(
    "/api/patients/{patient_id}/questionnaire",
    summary="Assign a check-in (a FHIR Questionnaire) to a patient",
)
async def put_patient_questionnaire(
    patient_id: str, request: Request, person: Clinician
) -> JSONResponse:
    hub = services(request)
    try:
        body: Any = await request.json()
    except ValueError:
        return _error(400, "bad_input", "The body must be a FHIR Questionnaire in JSON.")

    def work() -> JSONResponse:
        if hub.store.get_patient(patient_id) is None:
            return _error(404, "not_found", "No such patient. Check the patient id.")
        try:
            questionnaire = Questionnaire.from_fhir(body)
            assign_questionnaire(
                hub.store.engine, patient_id, questionnaire, by=person.username, now=hub.clock()
            )
        except BadInput as exc:
            return _error(400, "bad_input", str(exc))
        return _fhir_json(questionnaire)

    return await run_in_threadpool(work)
