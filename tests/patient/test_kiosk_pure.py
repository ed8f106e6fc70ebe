"""Pure kiosk pieces of issue 8: appointment words and reminders (time passed in), the call
quality meter, the new record kinds, and the patient's plan as the hub sends it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from porchlight.errors import BadInput
from porchlight.kiosk.appointments import Appointment, Reminders, home_line
from porchlight.kiosk.call_quality import QualityMeter
from porchlight.kiosk.i18n import words_for
from porchlight.kiosk.patient_plan import PatientPlan
from porchlight.kiosk.records import (
    Record,
    call_quality_record,
    help_record,
    survey_record,
)

LONDON = ZoneInfo("Europe/London")
EN, CY, PL = (words_for(c) for c in ("en", "cy", "pl"))
# Tuesday 4 March 2025, 09:30 in London (GMT).
NOW = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


# ---------------------------------------------------------------- the home line


@pytest.mark.parametrize(
    ("starts", "words", "line"),
    [
        (datetime(2025, 3, 4, 14, 30, tzinfo=UTC), EN, "Your nurse will call at 2:30 today"),
        (datetime(2025, 3, 4, 14, 30, tzinfo=UTC), CY, "Bydd eich nyrs yn ffonio am 2:30 heddiw"),
        (datetime(2025, 3, 4, 14, 30, tzinfo=UTC), PL, "Pielęgniarka zadzwoni dziś o 14:30"),
        (datetime(2025, 3, 5, 10, 0, tzinfo=UTC), EN, "Your nurse will call tomorrow at 10:00"),
        (datetime(2025, 3, 6, 11, 5, tzinfo=UTC), EN, "Your nurse will call on Thursday at 11:05"),
        (
            datetime(2025, 3, 6, 11, 5, tzinfo=UTC),
            CY,
            "Bydd eich nyrs yn ffonio ddydd Iau am 11:05",
        ),
        (datetime(2025, 3, 6, 11, 5, tzinfo=UTC), PL, "Pielęgniarka zadzwoni w czwartek o 11:05"),
        (
            datetime(2025, 3, 4, 9, 25, tzinfo=UTC),
            EN,
            "It is time for your video call with your nurse",
        ),
    ],
)
def test_the_home_line_says_when_in_plain_words(starts, words, line):
    assert home_line([Appointment("a", starts)], NOW, words, LONDON) == line


def test_the_home_line_uses_the_kiosks_wall_clock_in_summer_time():
    # 13:30 UTC in June is 2:30 in the afternoon in London.
    june = datetime(2025, 6, 10, 9, 0, tzinfo=UTC)
    appt = Appointment("a", datetime(2025, 6, 10, 13, 30, tzinfo=UTC))
    assert home_line([appt], june, EN, LONDON) == "Your nurse will call at 2:30 today"


def test_the_home_line_names_the_next_one_and_forgets_the_past_and_the_far():
    past = Appointment("old", at(-1))  # its window closed 45 minutes ago
    soon = Appointment("soon", at(3))
    later = Appointment("later", at(27))
    assert home_line([later, past, soon], NOW, EN, LONDON) == (
        "Your nurse will call at 12:30 today"
    )
    assert home_line([Appointment("far", at(24 * 8))], NOW, EN, LONDON) is None
    assert home_line([], NOW, EN, LONDON) is None


# ---------------------------------------------------------------- reminders


def test_reminders_fifteen_and_two_minutes_before_each_said_once():
    appt = Appointment("a", datetime(2025, 3, 4, 14, 30, tzinfo=UTC))
    reminders = Reminders()
    start = appt.starts_at
    said = {}
    for seconds in range(-20 * 60, 60, 5):  # every 5 s from 20 min before to 1 min after
        now = start + timedelta(seconds=seconds)
        for r in reminders.due([appt], now, EN, LONDON):
            said[seconds] = r
    assert sorted(said) == [-15 * 60, -2 * 60]
    first, last = said[-15 * 60], said[-2 * 60]
    assert first.text == (
        "Your nurse will call at 2:30, in 15 minutes. "
        "The button will call your nurse when you are ready."
    )
    assert last.minutes_left == 2 and "in 2 minutes" in last.text
    assert first.light_s == 60.0
    # After the last one the light stays on until the appointment's window closes.
    assert last.light_s == pytest.approx((2 + 15) * 60)


def test_a_kiosk_that_comes_on_late_says_only_the_latest_reminder_with_the_real_minutes():
    appt = Appointment("a", NOW + timedelta(minutes=10, seconds=20))
    reminders = Reminders()
    (r,) = reminders.due([appt], NOW, EN, LONDON)
    assert r.minutes_left == 11 and "in 11 minutes" in r.text
    assert reminders.due([appt], NOW + timedelta(minutes=1), EN, LONDON) == []
    late = Reminders()
    (only,) = late.due([appt], appt.starts_at - timedelta(seconds=50), EN, LONDON)
    assert only.minutes_left == 1 and "in 1 minute." in only.text
    assert late.due([appt], appt.starts_at - timedelta(seconds=10), EN, LONDON) == []


def test_a_moved_appointment_is_reminded_again_and_plurals_follow_the_language():
    reminders = Reminders()
    appt = Appointment("a", NOW + timedelta(minutes=14))
    assert len(reminders.due([appt], NOW, EN, LONDON)) == 1
    moved = Appointment("a", NOW + timedelta(minutes=44))
    reminders.forget_except(["a"])
    (r,) = reminders.due([moved], NOW + timedelta(minutes=30), PL, LONDON)
    assert "za 14 minut." in r.text
    (r,) = reminders.due([moved], NOW + timedelta(minutes=42), CY, LONDON)
    assert "mewn 2 munud" in r.text


# ---------------------------------------------------------------- call quality


def test_the_meter_counts_time_per_picture_height_audio_only_and_freezes():
    meter = QualityMeter(started_at=10.0)
    meter.frame_received(10.5)  # before media: not counted
    meter.connected(12.0, 480)  # 2 s to connect
    for t in [12.0 + i * 0.1 for i in range(1, 31)]:  # smooth until 15.0
        meter.frame_received(t)
    meter.frame_received(17.0)  # a 2 s freeze
    meter.sending(240, 20.0)  # the ladder drops at 20 s
    meter.sending(None, 30.0)  # audio only from 30 s
    meter.frame_received(31.0)  # a 14 s gap (audio-only: no picture from the nurse either)
    out = meter.summary(40.0)
    assert out["connect_s"] == pytest.approx(2.0)
    assert out["duration_s"] == pytest.approx(28.0)
    assert out["video_s"] == {480: pytest.approx(8.0), 240: pytest.approx(10.0)}
    assert out["audio_only_s"] == pytest.approx(10.0)
    # 2 s + 14 s of gaps, and frozen since 31 s at the end (9 s).
    assert out["freeze_s"] == pytest.approx(2.0 + 14.0 + 9.0)


def test_the_rung_chosen_before_connecting_counts_from_the_start():
    meter = QualityMeter(started_at=0.0)
    meter.sending(180, 0.5)  # the link probe said 180p before any media
    meter.connected(1.0, 480)  # the camera's own height must not win
    meter.sending(360, 11.0)
    out = meter.summary(21.0)
    assert out["video_s"] == {180: pytest.approx(10.0), 360: pytest.approx(10.0)}


def test_a_call_that_never_connected_has_no_figures():
    out = QualityMeter(started_at=0.0).summary(30.0)
    assert out["connect_s"] is None and out["duration_s"] == 0.0


# ---------------------------------------------------------------- records


def rid() -> str:
    return str(uuid.uuid4())


def test_help_survey_and_quality_records_round_trip_through_the_wire_rules():
    made = [
        help_record(record_id=rid(), patient_id="p", now=NOW),
        survey_record("c1", 5, True, record_id=rid(), patient_id="p", now=NOW),
        survey_record("c1", 2, None, record_id=rid(), patient_id="p", now=NOW),
        call_quality_record(
            "c1",
            duration_s=300.04,
            connect_s=1.26,
            video_s={480: 200.0, 240: 60.0},
            audio_only_s=40.0,
            freeze_s=3.33,
            record_id=rid(),
            patient_id="p",
            now=NOW,
        ),
    ]
    for record in made:
        assert Record.from_wire(record.to_wire()) == record
    assert made[3].body["video_s"] == {"240": 60.0, "480": 200.0}
    assert made[3].body["duration_s"] == 300.0 and made[3].body["freeze_s"] == 3.3


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        ("help_request", {"how": "shouted"}),
        ("help_request", {}),
        ("survey", {"call_id": "c", "score": 6, "again": True}),
        ("survey", {"call_id": "c", "score": 3.5, "again": True}),
        ("survey", {"call_id": "c", "score": True, "again": True}),
        ("survey", {"call_id": "c", "score": None, "again": None}),
        ("survey", {"call_id": "c", "score": 3, "again": "yes"}),
        ("survey", {"call_id": "", "score": 3, "again": True}),
        (
            "call_quality",
            {
                "call_id": "c",
                "duration_s": -1,
                "connect_s": None,
                "video_s": {},
                "audio_only_s": 0,
                "freeze_s": 0,
            },
        ),
        (
            "call_quality",
            {
                "call_id": "c",
                "duration_s": 10,
                "connect_s": None,
                "video_s": {"480": 20},
                "audio_only_s": 0,
                "freeze_s": 0,
            },
        ),
        (
            "call_quality",
            {
                "call_id": "c",
                "duration_s": 10,
                "connect_s": None,
                "video_s": {"high": 5},
                "audio_only_s": 0,
                "freeze_s": 0,
            },
        ),
        (
            "call_quality",
            {
                "call_id": "c",
                "duration_s": 10,
                "connect_s": 9999,
                "video_s": {},
                "audio_only_s": 0,
                "freeze_s": 0,
            },
        ),
        (
            "call_quality",
            {
                "call_id": "c",
                "duration_s": float("nan"),
                "connect_s": None,
                "video_s": {},
                "audio_only_s": 0,
                "freeze_s": 0,
            },
        ),
    ],
)
def test_bad_bodies_are_refused_with_a_reason(kind, body):
    wire = {
        "id": rid(),
        "patient_id": "p",
        "kind": kind,
        "recorded_at": "2025-03-04T09:30:00.000Z",
        "body": body,
    }
    with pytest.raises(BadInput):
        Record.from_wire(wire)


# ---------------------------------------------------------------- the plan


def test_the_plan_is_checked_and_kept_as_sent():
    plan = PatientPlan.from_json(
        {
            "settings": {"language": "cy", "spoken_prompts": False, "auto_answer": True},
            "appointments": [{"id": "a1", "starts_at": "2025-03-04T14:30:00.000Z"}],
        }
    )
    assert plan.language == "cy" and not plan.spoken_prompts and plan.auto_answer
    assert plan.appointments == (Appointment("a1", datetime(2025, 3, 4, 14, 30, tzinfo=UTC)),)
    assert PatientPlan.from_json(plan.to_json()) == plan
    assert PatientPlan.from_json({}) == PatientPlan()


@pytest.mark.parametrize(
    "data",
    [
        [],
        {"settings": {"language": "fr"}},
        {"settings": {"auto_answer": "yes"}},
        {"appointments": [{"id": "a", "starts_at": "tomorrow"}]},
        {"appointments": [{"id": "a", "starts_at": "2025-03-04T14:30:00"}]},
        {"appointments": [{"id": "", "starts_at": "2025-03-04T14:30:00Z"}]},
        {"appointments": [{"id": "a", "starts_at": "2025-03-04T14:30:00Z"}] * 51},
    ],
)
def test_a_bad_plan_is_refused(data):
    with pytest.raises(BadInput):
        PatientPlan.from_json(data)
