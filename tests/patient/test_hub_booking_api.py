"""What the nurse and clinic pages book with: a patient's appointments still to come, moving
one (the kiosk hears at once), the care teams' patients; and help requests pushed to the care
team's clinic pages the moment the hub stores one — not to other teams, not again on a resend."""

from __future__ import annotations

from datetime import timedelta

from porchlight.kiosk.records import help_record

from .hub_support import (
    as_person,
    book,
    clinic,
    device_headers,
    expect,
    kiosk,
    new_id,
    post_records,
)


def plan(client, world) -> dict:
    client.cookies.clear()
    return client.get("/api/device/plan", headers=device_headers(world)).json()


def test_a_patients_appointments_can_be_listed_and_moved_and_the_kiosk_hears(client, world, clock):
    later = clock() + timedelta(days=2)
    made = book(client, world, world.patient_a, later).json()
    url = f"/api/patients/{world.patient_a}/appointments"
    (listed,) = client.get(url).json()
    assert listed["appointment_id"] == made["appointment_id"] and listed["status"] == "booked"

    moved_to = later + timedelta(hours=3)
    move = f"/api/appointments/{made['appointment_id']}/move"
    with kiosk(client, world) as ws:
        as_person(client, world, "clin_x")
        answer = client.post(move, json={"starts_at": moved_to.isoformat()})
        assert answer.status_code == 200, answer.text
        expect(ws, "plan_changed")
    assert plan(client, world)["appointments"] == [
        {
            "id": made["appointment_id"],
            "starts_at": "2025-03-06T12:30:00.000Z",
            "clinician_name": "Clin X",
        }
    ]

    # Into the past: refused in plain words, nothing changes.
    as_person(client, world, "nurse_x")
    past = client.post(move, json={"starts_at": (clock() - timedelta(days=1)).isoformat()})
    assert past.status_code == 400 and "in the past" in past.json()["message"]
    # Another team cannot see it, let alone move it.
    as_person(client, world, "nurse_y")
    assert client.post(move, json={"starts_at": later.isoformat()}).status_code == 404
    assert client.get(url).status_code == 403
    # Cancelled: it leaves the list and can no longer be moved.
    as_person(client, world, "nurse_x")
    assert client.post(f"/api/appointments/{made['appointment_id']}/cancel").status_code == 200
    assert client.get(url).json() == []
    again = client.post(move, json={"starts_at": later.isoformat()})
    assert again.status_code == 400 and "book a new one" in again.json()["message"]
    assert plan(client, world)["appointments"] == []


def test_unknown_patient_has_no_appointments_to_list(client, world):
    as_person(client, world, "nurse_x")
    answer = client.get(f"/api/patients/{new_id()}/appointments")
    assert answer.status_code == 404 and "No such patient" in answer.json()["message"]


def test_care_patients_are_only_the_persons_teams(client, world):
    as_person(client, world, "clin_x")
    names = {p["display_name"] for p in client.get("/api/care/patients").json()}
    assert "Alice Able" in names
    as_person(client, world, "clin_y")
    ids = {p["patient_id"] for p in client.get("/api/care/patients").json()}
    assert world.patient_a not in ids and ids


def test_a_help_request_is_pushed_to_the_care_teams_pages_only(client, world, clock):
    record = help_record(record_id=new_id(), patient_id=world.patient_a, now=clock())
    with clinic(client, world, "clin_x") as team_x, clinic(client, world, "clin_y") as team_y:
        assert post_records(client, world, [record])[0]["status"] == "stored"
        pushed = expect(team_x, "help_request", record_id=record.id)
        assert pushed["patient_id"] == world.patient_a
        assert pushed["patient_name"] == "Alice Able"
        assert pushed["asked_at"].startswith("2025-03-04T09:30:00")

        # A resend stores nothing new and pushes nothing: the next thing each page hears is
        # the answer to its own hello.
        assert post_records(client, world, [record])[0]["status"] == "duplicate"
        for page in (team_x, team_y):
            page.send_json({"type": "hello"})
            expect(page, "waiting_room")
