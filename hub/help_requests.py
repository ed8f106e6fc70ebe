"""Help requests: the patient held the kiosk's button for 3 s on the home screen.

They arrive like every other record (`help_request` in `records`, through the outbox, so one
made while the home link was down still arrives). The care team sees the open ones on the
clinic page (`GET /api/help-requests`, newest first) and marks each one dealt with
(`POST /api/help-requests/{record_id}/done`; table `help_done`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel
from sqlalchemy import Column, Engine, String, Table, insert, select
from sqlalchemy.exc import IntegrityError

from porchlight.hub.auth import PersonIdentity, require_person
from porchlight.hub.db import UTCDateTime, metadata, patients
from porchlight.hub.inbox import records
from porchlight.hub.services import services
from porchlight.hub.store import Role, team_patients
from porchlight.hub.teams import can_see
from porchlight.kiosk.records import RecordKind

# Older requests than this are not shown as open (someone has surely been in touch since).
OPEN_FOR = timedelta(days=7)

help_done = Table(
    "help_done",
    metadata,
    Column("record_id", String(36), primary_key=True),
    Column("done_by", String(64), nullable=False),
    Column("done_at", UTCDateTime(), nullable=False),
)


def open_requests(engine: Engine, team_ids: frozenset[str], now: datetime) -> list[dict]:
    query = (
        select(
            records.c.id,
            records.c.patient_id,
            records.c.recorded_at,
            records.c.received_at,
            patients.c.display_name,
        )
        .join(patients, patients.c.id == records.c.patient_id)
        .join(team_patients, team_patients.c.patient_id == records.c.patient_id)
        .outerjoin(help_done, help_done.c.record_id == records.c.id)
        .where(
            records.c.kind == RecordKind.HELP_REQUEST.value,
            team_patients.c.team_id.in_(sorted(team_ids)),
            help_done.c.record_id.is_(None),
            records.c.recorded_at >= now - OPEN_FOR,
        )
        .order_by(records.c.recorded_at.desc(), records.c.id)
    )
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query).all()]


router = APIRouter()
CareTeam = Annotated[PersonIdentity, Depends(require_person(Role.CLINICIAN, Role.NURSE))]


class HelpRequestOut(BaseModel):
    record_id: str
    patient_id: str
    patient_name: str
    asked_at: datetime  # when the patient held the button (the kiosk's clock)
    received_at: datetime  # when it reached the hub


@router.get(
    "/api/help-requests",
    response_model=list[HelpRequestOut],
    summary="Open help requests from your care teams' patients, newest first",
)
def list_help_requests(request: Request, person: CareTeam) -> list[HelpRequestOut]:
    hub = services(request)
    return [
        HelpRequestOut(
            record_id=r["id"],
            patient_id=r["patient_id"],
            patient_name=r["display_name"],
            asked_at=r["recorded_at"],
            received_at=r["received_at"],
        )
        for r in open_requests(hub.store.engine, person.teams, hub.clock())
    ]


@router.post(
    "/api/help-requests/{record_id}/done",
    summary="Mark a help request dealt with (the patient has been called)",
)
def help_request_done(record_id: str, request: Request, person: CareTeam) -> dict[str, bool]:
    hub = services(request)
    engine = hub.store.engine
    with engine.connect() as conn:
        found = conn.execute(
            select(records.c.patient_id).where(
                records.c.id == record_id[:64], records.c.kind == RecordKind.HELP_REQUEST.value
            )
        ).first()
        team = hub.store.team_of_patient(found.patient_id) if found else None
        if found is None or not can_see(person.teams, team):
            raise HTTPException(404, "No such help request in your care teams.")
        already = conn.execute(
            select(help_done.c.record_id).where(help_done.c.record_id == record_id)
        ).first()
    if already is None:
        try:
            with engine.begin() as conn:
                conn.execute(
                    insert(help_done).values(
                        record_id=record_id, done_by=person.username, done_at=hub.clock()
                    )
                )
        except IntegrityError:
            pass  # marked done by someone else at the same moment: done is done
    return {"ok": True}
