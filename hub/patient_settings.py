"""Each patient's kiosk settings, chosen by the nurse: language, spoken prompts, auto-answer.

Stored per patient (table `patient_settings`; a patient without a row has the defaults:
English, spoken prompts on, auto-answer off). Clinicians and nurses of the patient's care team
read and change them; the kiosk gets them in its plan (hub/device_plan.py) and is told at once
over its WebSocket (`plan_changed`) when they change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import Boolean, Column, Engine, ForeignKey, String, Table, select
from starlette.concurrency import run_in_threadpool

from porchlight.errors import BadInput
from porchlight.hub.auth import PersonIdentity, require_patient_access
from porchlight.hub.bus import device_topic
from porchlight.hub.db import UTCDateTime, metadata
from porchlight.hub.services import services
from porchlight.hub.store import Role
from porchlight.kiosk.i18n import DEFAULT_LANGUAGE, LANGUAGES

PLAN_CHANGED = {"type": "plan_changed"}

patient_settings = Table(
    "patient_settings",
    metadata,
    Column(
        "patient_id",
        String(36),
        ForeignKey("patients.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("language", String(8), nullable=False),
    Column("spoken_prompts", Boolean, nullable=False),
    Column("auto_answer", Boolean, nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
    Column("updated_by", String(64), nullable=False),
)


@dataclass(frozen=True)
class KioskSettings:
    language: str = DEFAULT_LANGUAGE
    spoken_prompts: bool = True
    auto_answer: bool = False

    def __post_init__(self) -> None:
        if self.language not in LANGUAGES:
            raise BadInput(
                f"language {self.language!r} is not one the kiosk speaks; "
                f"choose one of {', '.join(LANGUAGES)}"
            )


def get_settings(engine: Engine, patient_id: str) -> KioskSettings:
    with engine.connect() as conn:
        row = conn.execute(
            select(
                patient_settings.c.language,
                patient_settings.c.spoken_prompts,
                patient_settings.c.auto_answer,
            ).where(patient_settings.c.patient_id == patient_id)
        ).first()
    return KioskSettings(*row) if row else KioskSettings()


def put_settings(
    engine: Engine, patient_id: str, settings: KioskSettings, *, by: str, now: datetime
) -> None:
    values = {**asdict(settings), "updated": now, "updated_by": by}
    with engine.begin() as conn:
        done = conn.execute(
            patient_settings.update()
            .where(patient_settings.c.patient_id == patient_id)
            .values(**values)
        )
        if done.rowcount == 0:
            conn.execute(patient_settings.insert().values(patient_id=patient_id, **values))


# -- HTTP --------------------------------------------------------------------------------

router = APIRouter()
CareTeam = Annotated[PersonIdentity, Depends(require_patient_access(Role.CLINICIAN, Role.NURSE))]


class LanguageOut(BaseModel):
    code: str
    name: str = Field(description="in its own words")
    english_name: str


class SettingsIn(BaseModel):
    language: str = Field(min_length=2, max_length=8, description="a code from `languages`")
    spoken_prompts: bool = Field(description="the kiosk speaks every prompt aloud")
    auto_answer: bool = Field(
        description="the care team's calls are answered by themselves after a 10 s countdown"
    )


class SettingsOut(SettingsIn):
    patient_id: str
    languages: list[LanguageOut]


def _out(patient_id: str, settings: KioskSettings) -> SettingsOut:
    return SettingsOut(
        patient_id=patient_id,
        **asdict(settings),
        languages=[
            LanguageOut(code=lang.code, name=lang.name, english_name=lang.english_name)
            for lang in LANGUAGES.values()
        ],
    )


def _known(request: Request, patient_id: str) -> None:
    if services(request).store.get_patient(patient_id) is None:
        raise HTTPException(404, "No such patient. Check the patient id.")


@router.get(
    "/api/patients/{patient_id}/kiosk-settings",
    response_model=SettingsOut,
    summary="A patient's kiosk settings (care team's clinicians and nurses)",
)
def read_settings(patient_id: str, request: Request, person: CareTeam) -> SettingsOut:
    _known(request, patient_id)
    return _out(patient_id, get_settings(services(request).store.engine, patient_id))


@router.put(
    "/api/patients/{patient_id}/kiosk-settings",
    response_model=SettingsOut,
    summary="Change a patient's kiosk settings; the kiosk takes them up at once",
)
async def write_settings(
    patient_id: str, body: SettingsIn, request: Request, person: CareTeam
) -> SettingsOut:
    hub = services(request)
    settings = KioskSettings(body.language, body.spoken_prompts, body.auto_answer)

    def work() -> None:
        _known(request, patient_id)
        put_settings(hub.store.engine, patient_id, settings, by=person.username, now=hub.clock())

    await run_in_threadpool(work)
    await hub.signalling.bus.publish(device_topic(patient_id), PLAN_CHANGED)
    return _out(patient_id, settings)
