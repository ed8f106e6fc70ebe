"""The evidence figures of a seeded month are the same with and without practice calls in it:
booked, attended, not attended, unscheduled, every outcome, ratings and call quality of the
practice patient all leave them as they were — and only the practice flag does that."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete

from porchlight.hub.appointments import (
    AppointmentRules,
    Outcome,
    book,
    log_call_ended,
    log_call_started,
    mark_did_not_attend,
    record_outcome,
)
from porchlight.hub.auth import DeviceIdentity
from porchlight.hub.evidence import month_bounds, team_month
from porchlight.hub.inbox import store_records
from porchlight.hub.practice import ensure_for_team, practice_patients
from porchlight.hub.store import Store
from porchlight.kiosk.records import call_quality_record, survey_record

RULES = AppointmentRules()
MARCH = datetime(2025, 3, 1, tzinfo=UTC)


def day(d: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, d, hour, minute, tzinfo=UTC)


def call(store: Store, patient: str, at: datetime, outcome: Outcome, reason: str | None = None):
    """A call of ten minutes with its outcome, rating and measurements, as a kiosk sends them."""
    engine = store.engine
    call_id = str(uuid.uuid4())
    team = store.team_of_patient(patient)
    appt = log_call_started(engine, call_id, patient, team, "clinician", "rang", at, RULES)
    log_call_ended(engine, call_id, "clinician_ended", at + timedelta(minutes=10))
    record_outcome(engine, appt, outcome, reason, by="clinician", now=at + timedelta(minutes=11))
    quality = call_quality_record(
        call_id,
        duration_s=600,
        connect_s=1.5,
        video_s={480: 500},
        audio_only_s=100,
        freeze_s=3.0,
        record_id=str(uuid.uuid4()),
        patient_id=patient,
        now=at,
    )
    rating = survey_record(
        call_id, 2, False, record_id=str(uuid.uuid4()), patient_id=patient, now=at
    )
    device = DeviceIdentity("dev-" + patient[:8], patient, "")
    results = store_records(
        engine, device, [quality.to_wire(), rating.to_wire()], now=at, lookup=lambda _: None
    )
    assert [r.status for r in results] == ["stored", "stored"]


def test_practice_calls_leave_the_months_figures_as_they_were(tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    try:
        engine = store.engine
        real = store.add_patient("Ivor Rees", now=MARCH).id
        team = store.team_of_patient(real)
        assert team is not None
        book(engine, real, team, day(4, 10), by="nurse", now=MARCH)
        book(engine, real, team, day(6, 10), by="nurse", now=MARCH)  # nobody joins
        call(store, real, day(4, 10, 2), Outcome.COMPLETED)
        start, end = month_bounds("2025-03", day(15, 12))
        mark_did_not_attend(engine, day(31, 12), RULES)
        without = team_month(engine, team, start, end)
        assert (without["appointments"], without["calls"], without["ratings"]) == (2, 1, 1)

        # The same month with practice calls of every kind in it.
        practice = ensure_for_team(store, team, MARCH).patient_id
        book(engine, practice, team, day(5, 9), by="clinician", now=MARCH)  # never joined
        book(engine, practice, team, day(7, 9), by="clinician", now=MARCH)
        call(store, practice, day(7, 9, 1), Outcome.HOME_VISIT, "rehearsing")
        call(store, practice, day(9, 15), Outcome.TECHNICAL_FAILURE, "rehearsing")  # unbooked
        call(store, practice, day(10, 15), Outcome.COMPLETED)
        mark_did_not_attend(engine, day(31, 12), RULES)
        with_practice = team_month(engine, team, start, end)
        assert json.dumps(with_practice, sort_keys=True) == json.dumps(without, sort_keys=True)

        # Only the flag keeps them out: without it they would count (booked ones 2 + 2).
        with engine.begin() as conn:
            conn.execute(delete(practice_patients))
        counted = team_month(engine, team, start, end)
        assert (counted["appointments"], counted["calls"], counted["ratings"]) == (4, 4, 4)
        assert counted["did_not_attend"] == without["did_not_attend"] + 1
    finally:
        store.close()
