"""The patient's plan as the hub sends it: kiosk settings and upcoming appointments.

`GET /api/device/plan` (device token) answers::

    {"settings": {"language": "cy", "spoken_prompts": true, "auto_answer": false},
     "appointments": [{"id": "...", "starts_at": "2025-03-04T14:30:00.000Z",
                       "clinician_name": "Nurse Patel"}]}

`clinician_name` (who will call, as the team wants the patient to see it) may be null or
missing (a hub from before it was named): the kiosk then says "your nurse".

The nurse chooses the settings per patient on the hub. The kiosk keeps the last plan it got in
`<data dir>/plan.json` (atomic, 0600), so reminders and the patient's language survive a
restart without the hub. `PatientPlan.from_json` is pure validation; `load_plan`,
`save_plan` and `fetch_plan` do the file and HTTP work (call them off the event loop).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from porchlight.atomic import write_json
from porchlight.errors import BadInput, HubRefused, TransportFailed
from porchlight.kiosk.appointments import Appointment
from porchlight.kiosk.i18n import DEFAULT_LANGUAGE, LANGUAGES

log = logging.getLogger(__name__)

PLAN_PATH = "/api/device/plan"
PLAN_FILE = "plan.json"
MAX_APPOINTMENTS = 50
MAX_NAME_CHARS = 200  # the hub's limit on a display name


@dataclass(frozen=True)
class PatientPlan:
    language: str = DEFAULT_LANGUAGE
    spoken_prompts: bool = True
    auto_answer: bool = False
    appointments: tuple[Appointment, ...] = field(default_factory=tuple)

    @classmethod
    def from_json(cls, data: Any) -> PatientPlan:
        """Check what the hub sent (or the cache held); BadInput says what is wrong."""
        if not isinstance(data, dict):
            raise BadInput("a plan must be a JSON object")
        settings = data.get("settings", {})
        if not isinstance(settings, dict):
            raise BadInput("settings must be an object")
        language = settings.get("language", DEFAULT_LANGUAGE)
        if language not in LANGUAGES:
            raise BadInput(f"language must be one of {', '.join(LANGUAGES)}")
        spoken = settings.get("spoken_prompts", True)
        auto = settings.get("auto_answer", False)
        if not isinstance(spoken, bool) or not isinstance(auto, bool):
            raise BadInput("spoken_prompts and auto_answer must be true or false")
        raw = data.get("appointments", [])
        if not isinstance(raw, list) or len(raw) > MAX_APPOINTMENTS:
            raise BadInput(f"appointments must be a list of at most {MAX_APPOINTMENTS}")
        appointments = []
        for item in raw:
            if not isinstance(item, dict):
                raise BadInput("each appointment must be an object")
            appt_id, starts = item.get("id"), item.get("starts_at")
            if not isinstance(appt_id, str) or not 0 < len(appt_id) <= 64:
                raise BadInput("an appointment id must be text of 1 to 64 characters")
            appointments.append(Appointment(appt_id, _time(starts), _caller(item)))
        return cls(language, spoken, auto, tuple(appointments))

    def to_json(self) -> dict[str, Any]:
        return {
            "settings": {
                "language": self.language,
                "spoken_prompts": self.spoken_prompts,
                "auto_answer": self.auto_answer,
            },
            "appointments": [
                {
                    "id": a.id,
                    "starts_at": a.starts_at.astimezone(UTC).isoformat(),
                    "clinician_name": a.caller,
                }
                for a in self.appointments
            ],
        }


def _caller(item: dict[str, Any]) -> str | None:
    name = item.get("clinician_name")
    if name is None:
        return None
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise BadInput(f"clinician_name must be text of at most {MAX_NAME_CHARS} characters")
    # One line of plain words: no control characters from the hub reach the screen or voice.
    name = " ".join("".join(ch if ch.isprintable() else " " for ch in name).split())
    return name or None


def _time(value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise BadInput("starts_at must be an ISO 8601 time")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput("starts_at must be an ISO 8601 time") from None
    if when.tzinfo is None:
        raise BadInput("starts_at must carry a time zone")
    return when


def load_plan(data_dir: Path) -> PatientPlan:
    """The plan kept on the device, or the defaults (English, spoken, no auto-answer)."""
    path = Path(data_dir) / PLAN_FILE
    try:
        return PatientPlan.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return PatientPlan()
    except (OSError, ValueError) as exc:
        log.warning("the kept plan is unreadable (%s); using the defaults", type(exc).__name__)
        return PatientPlan()


def save_plan(data_dir: Path, plan: PatientPlan) -> None:
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    write_json(Path(data_dir) / PLAN_FILE, plan.to_json())


def fetch_plan(session: requests.Session, base_url: str, timeout: float = 10.0) -> PatientPlan:
    """Ask the hub for the plan (the session carries the device's bearer token)."""
    try:
        resp = session.get(base_url.rstrip("/") + PLAN_PATH, timeout=(3.0, timeout))
    except requests.RequestException as exc:
        raise TransportFailed(
            f"the hub did not answer for the plan ({type(exc).__name__})"
        ) from None
    if resp.status_code != 200:
        raise HubRefused(f"the hub refused the plan request ({resp.status_code})", resp.status_code)
    try:
        return PatientPlan.from_json(resp.json())
    except ValueError as exc:
        raise HubRefused(f"the hub's plan is not usable: {exc}") from None
