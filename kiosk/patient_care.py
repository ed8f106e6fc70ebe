"""The patient's side of the kiosk around the call: their plan, reminders, help and ratings.

`PatientCare` is what KioskCore hands these jobs to. It keeps the patient's plan (language,
spoken prompts, auto-answer, appointments: kiosk/patient_plan.py) and refreshes it from the
hub, turns it into state-machine events (`Settings`, `Agenda`, `Remind`), turns the hub's
`ring` / `ring_stopped` messages into events, and makes the outbox records for help requests,
survey answers and call quality. Blocking work (`refresh`, file reads) belongs on a thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import requests

from porchlight.errors import BadInput, PorchlightError
from porchlight.kiosk import state as sm
from porchlight.kiosk.appointments import Reminders, home_line
from porchlight.kiosk.i18n import N_, Words, english, words_for
from porchlight.kiosk.outbox import new_record_id
from porchlight.kiosk.patient_plan import PatientPlan, fetch_plan, load_plan, save_plan
from porchlight.kiosk.records import Record, call_quality_record, help_record, survey_record
from porchlight.kiosk.sync import http_base

log = logging.getLogger(__name__)

# Hub → kiosk messages for ringing and plan changes (docs/protocol.md).
RING = "ring"
RING_STOPPED = "ring_stopped"
PLAN_CHANGED = "plan_changed"
# Kiosk → hub: the patient answered (a press, or the auto-answer countdown ran out).
RING_ACCEPT = "ring_accept"

# Said when a help request could not even be kept on the device (no outbox).
HELP_NOT_SENT = N_("Sorry, your care team could not be asked. Please use your telephone.")


def local_zone() -> tzinfo:
    zone = datetime.now().astimezone().tzinfo
    return zone if zone is not None else UTC


class PatientCare:
    def __init__(
        self,
        data_dir: Path,
        *,
        hub_url: str,
        token: str,
        patient_id: str,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        tz: tzinfo | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.patient_id = patient_id
        self._base = http_base(hub_url)
        self._session = session or requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"
        self._wall = wall_clock
        self.tz = tz or local_zone()
        self.plan = PatientPlan()
        self.words: Words = english()
        self.reminders = Reminders()
        self._line: str | None = None
        self._lock = threading.Lock()  # refresh runs on a thread; the loop reads the plan

    # -- the plan ----------------------------------------------------------------------

    def load(self) -> None:
        """Take up the plan kept on the device (blocking: a small file)."""
        self._adopt(load_plan(self.data_dir))

    def refresh(self) -> bool:
        """Fetch the plan from the hub and keep it; True when it changed. Blocking."""
        try:
            plan = fetch_plan(self._session, self._base)
        except PorchlightError as exc:
            log.info("plan not refreshed: %s", exc)
            return False
        with self._lock:
            if plan == self.plan:
                return False
        try:
            save_plan(self.data_dir, plan)
        except OSError as exc:
            log.warning("could not keep the plan on the device (%s)", type(exc).__name__)
        self._adopt(plan)
        return True

    def _adopt(self, plan: PatientPlan) -> None:
        try:
            words = self.words if plan.language == self.words.code else words_for(plan.language)
        except BadInput as exc:
            log.error("%s; speaking English", exc)
            words = english()
        with self._lock:
            self.plan, self.words = plan, words
            self._line = None  # say the line again, in the new words
            self.reminders.forget_except(a.id for a in plan.appointments)

    def settings(self) -> sm.Settings:
        plan = self.plan
        return sm.Settings(self.words, plan.spoken_prompts, plan.auto_answer)

    @property
    def voice(self) -> str:
        return self.words.language.voice

    def tick(self) -> list[sm.Event]:
        """What the clock brings now: a new home line, reminders."""
        now = self._wall()
        with self._lock:
            appointments, words = self.plan.appointments, self.words
            line = home_line(appointments, now, words, self.tz) or ""
            events: list[sm.Event] = []
            if line != self._line:
                self._line = line
                events.append(sm.Agenda(line))
            for reminder in self.reminders.due(appointments, now, words, self.tz):
                events.append(sm.Remind(reminder.text, reminder.light_s))
        return events

    # -- hub messages ------------------------------------------------------------------

    @staticmethod
    def event_for(message: dict[str, Any]) -> sm.Event | None:
        """The state-machine event for a ringing message, or None if it is not one."""
        kind, ring_id = message.get("type"), message.get("ring_id")
        if not isinstance(ring_id, str) or not 0 < len(ring_id) <= 64:
            return None
        if kind == RING:
            caller = message.get("clinician_name")
            caller = caller[:80] if isinstance(caller, str) else ""
            return sm.RingReceived(ring_id, caller, message.get("auto_answer") is True)
        if kind == RING_STOPPED:
            reason = message.get("reason")
            return sm.RingStopped(ring_id, reason if isinstance(reason, str) else "")
        return None

    # -- records -----------------------------------------------------------------------

    def help_request(self) -> Record:
        return help_record(record_id=new_record_id(), patient_id=self.patient_id, now=self._wall())

    def survey(self, effect: sm.QueueSurvey) -> Record:
        return survey_record(
            effect.call_id,
            effect.score,
            effect.again,
            record_id=new_record_id(),
            patient_id=self.patient_id,
            now=self._wall(),
        )

    def call_quality(self, call_id: str, figures: dict[str, Any]) -> Record:
        return call_quality_record(
            call_id,
            record_id=new_record_id(),
            patient_id=self.patient_id,
            now=self._wall(),
            **figures,
        )

    def close(self) -> None:
        self._session.close()
