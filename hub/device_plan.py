"""`GET /api/device/plan`: what the kiosk needs to know about its patient's care.

The patient's kiosk settings (hub/patient_settings.py) and their upcoming appointments
(hub/appointments.py), in the shape kiosk/patient_plan.py reads. The kiosk asks on start, on
every reconnect, when told `plan_changed`, and every few minutes; it keeps the answer, so
reminders work through an outage. Each appointment carries `clinician_name`, the display name
of who will call ("Nurse Patel"), or null when none is named (the kiosk says "your nurse").
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from porchlight.hub.appointments import caller_names, rules_of, upcoming_for_patient
from porchlight.hub.auth import DeviceIdentity, require_device
from porchlight.hub.messages import iso
from porchlight.hub.patient_settings import get_settings
from porchlight.hub.services import services

router = APIRouter()
Device = Annotated[DeviceIdentity, Depends(require_device)]


@router.get("/api/device/plan", summary="This device's patient: kiosk settings and appointments")
def device_plan(request: Request, device: Device) -> dict[str, Any]:
    hub = services(request)
    now = hub.clock()
    engine = hub.store.engine
    upcoming = upcoming_for_patient(engine, device.patient_id, now, rules_of(request))
    callers = caller_names(engine, {a.clinician for a in upcoming if a.clinician})
    return {
        "settings": asdict(get_settings(engine, device.patient_id)),
        "appointments": [
            {
                "id": a.id,
                "starts_at": iso(a.starts_at),
                # Who will call, as the team wants the patient to see it; never a username.
                "clinician_name": callers.get(a.clinician or ""),
            }
            for a in upcoming
        ],
    }
