"""The kiosk says who will call, by the name the team gave (the plan's `clinician_name`), in
English, Welsh and Polish, on the home line and in the spoken reminders; a plan from an older
hub (no name) still says "your nurse"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from porchlight.errors import BadInput
from porchlight.kiosk.appointments import Appointment, Reminders, home_line
from porchlight.kiosk.i18n import words_for
from porchlight.kiosk.patient_plan import PatientPlan

EN, CY, PL = (words_for(c) for c in ("en", "cy", "pl"))
NOW = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)  # a Tuesday
TODAY = datetime(2025, 3, 4, 14, 30, tzinfo=UTC)
TOMORROW = datetime(2025, 3, 5, 10, 0, tzinfo=UTC)
THURSDAY = datetime(2025, 3, 6, 11, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("starts", "words", "line"),
    [
        (TODAY, EN, "Nurse Patel will call you at 2:30 today"),
        (TODAY, CY, "Bydd Nurse Patel yn eich ffonio am 2:30 heddiw"),
        (TODAY, PL, "Nurse Patel zadzwoni dziś o 14:30"),
        (TOMORROW, EN, "Nurse Patel will call you tomorrow at 10:00"),
        (TOMORROW, CY, "Bydd Nurse Patel yn eich ffonio yfory am 10:00"),
        (TOMORROW, PL, "Nurse Patel zadzwoni jutro o 10:00"),
        (THURSDAY, EN, "Nurse Patel will call you on Thursday at 11:05"),
        (THURSDAY, CY, "Bydd Nurse Patel yn eich ffonio ddydd Iau am 11:05"),
        (THURSDAY, PL, "Nurse Patel zadzwoni w czwartek o 11:05"),
        (NOW - timedelta(minutes=5), EN, "It is time for your video call with Nurse Patel"),
        (NOW - timedelta(minutes=5), CY, "Mae'n amser am eich galwad fideo gyda Nurse Patel"),
        (NOW - timedelta(minutes=5), PL, "Czas na rozmowę wideo: Nurse Patel"),
    ],
)
def test_the_home_line_names_who_will_call(starts, words, line):
    assert home_line([Appointment("a", starts, "Nurse Patel")], NOW, words, UTC) == line


@pytest.mark.parametrize(
    ("words", "said"),
    [
        (EN, "Dr Evans will call you at 2:30, in 15 minutes. Press the button when you are ready."),
        (
            CY,
            "Bydd Dr Evans yn eich ffonio am 2:30, mewn 15 munud. "
            "Pwyswch y botwm pan fyddwch yn barod.",
        ),
        (PL, "Dr Evans zadzwoni o 14:30, za 15 minut. Proszę nacisnąć przycisk w dogodnej chwili."),
    ],
)
def test_the_reminder_says_who_will_call(words, said):
    appt = Appointment("a", TODAY, "Dr Evans")
    (reminder,) = Reminders().due([appt], TODAY - timedelta(minutes=15), words, UTC)
    assert reminder.text == said


def test_polish_plurals_follow_the_minutes_with_a_name():
    appt = Appointment("a", TODAY, "Dr Evans")
    (two,) = Reminders().due([appt], TODAY - timedelta(minutes=2), PL, UTC)
    assert two.text.startswith("Dr Evans zadzwoni o 14:30, za 2 minuty.")


def test_an_older_plan_without_a_name_still_says_your_nurse():
    plan = PatientPlan.from_json(
        {"appointments": [{"id": "a1", "starts_at": "2025-03-04T14:30:00.000Z"}]}
    )
    (appt,) = plan.appointments
    assert appt.caller is None
    assert home_line(plan.appointments, NOW, EN, UTC) == "Your nurse will call at 2:30 today"
    (reminder,) = Reminders().due(plan.appointments, TODAY - timedelta(minutes=2), EN, UTC)
    assert reminder.text.startswith("Your nurse will call at 2:30, in 2 minutes.")


def test_the_name_is_kept_with_the_plan_and_tidied_to_one_line():
    plan = PatientPlan.from_json(
        {
            "appointments": [
                {
                    "id": "a1",
                    "starts_at": "2025-03-04T14:30:00Z",
                    "clinician_name": "  Nurse\nPriya\t Shah\x07 ",
                },
                {"id": "a2", "starts_at": "2025-03-05T14:30:00Z", "clinician_name": None},
            ]
        }
    )
    assert [a.caller for a in plan.appointments] == ["Nurse Priya Shah", None]
    assert PatientPlan.from_json(plan.to_json()) == plan  # what plan.json keeps


@pytest.mark.parametrize("name", [42, ["Nurse"], "N" * 201])
def test_a_bad_name_is_refused(name):
    item = {"id": "a", "starts_at": "2025-03-04T14:30:00Z", "clinician_name": name}
    with pytest.raises(BadInput, match="clinician_name"):
        PatientPlan.from_json({"appointments": [item]})
