"""Appointments name the clinician who will call: the booker when clinical, else one of the
patient's care team's clinicians; someone outside the team is refused and nothing is booked
or changed; moving/editing changes who calls; the kiosk's plan carries the display name only
(never a username), and the kiosk hears of a change at once."""

from __future__ import annotations

from datetime import UTC, datetime

from porchlight.hub.store import Role

from .hub_support import as_person, device_headers, expect, kiosk

AT_1030 = datetime(2025, 3, 4, 10, 30, tzinfo=UTC)
LONG_NAME = "Nurse Bartholomew Featherstonehaugh-Wojciechowska"


def add_clinician(client, world, username: str, display_name: str) -> None:
    """A second clinician in team X (straight into the store: admins are tested elsewhere)."""
    store = client.app.state.services.store
    store.add_person(
        username, display_name, Role.CLINICIAN, "not-a-login", now=AT_1030, teams=[world.team_x]
    )


def book(client, world, actor: str, **extra):
    as_person(client, world, actor)
    body = {"patient_id": world.patient_a, "starts_at": AT_1030.isoformat(), **extra}
    return client.post("/api/appointments", json=body)


def plan_appointments(client, world) -> list[dict]:
    client.cookies.clear()
    response = client.get("/api/device/plan", headers=device_headers(world, "device_a"))
    assert response.status_code == 200
    return response.json()["appointments"]


def booked_today(client, world) -> list[dict]:
    as_person(client, world, "clin_x")
    return client.get("/api/appointments").json()


def test_a_clinician_booking_is_the_one_who_calls(client, world):
    add_clinician(client, world, "clin_x2", "Dr Evans")
    made = book(client, world, "clin_x")
    assert made.status_code == 201, made.text
    assert made.json()["clinician"] == "clin_x"
    assert made.json()["clinician_name"] == "Clin X"
    (item,) = plan_appointments(client, world)
    assert item["clinician_name"] == "Clin X"
    assert "clin_x" not in str(item)  # a display name, never the username


def test_a_nurse_names_one_of_the_teams_clinicians(client, world):
    add_clinician(client, world, "clin_x2", LONG_NAME)
    # Two clinicians in the team: the nurse must say which one will call.
    unnamed = book(client, world, "nurse_x")
    assert unnamed.status_code == 400 and "who will call" in unnamed.json()["message"]
    made = book(client, world, "nurse_x", clinician="clin_x2")
    assert made.status_code == 201, made.text
    assert made.json()["clinician_name"] == LONG_NAME
    assert [a["clinician_name"] for a in plan_appointments(client, world)] == [LONG_NAME]
    assert [a["clinician_name"] for a in booked_today(client, world)] == [LONG_NAME]


def test_the_pickers_list_only_the_patients_team_clinicians(client, world):
    add_clinician(client, world, "clin_x2", "Dr Evans")
    as_person(client, world, "nurse_x")
    listed = client.get(f"/api/patients/{world.patient_a}/clinicians")
    assert listed.status_code == 200
    assert listed.json() == [
        {"username": "clin_x", "display_name": "Clin X"},
        {"username": "clin_x2", "display_name": "Dr Evans"},
    ]
    as_person(client, world, "nurse_y")
    assert client.get(f"/api/patients/{world.patient_a}/clinicians").status_code == 403


def test_a_clinician_outside_the_team_is_refused_and_nothing_is_booked(client, world):
    for outsider in ("clin_y", "nurse_x", "nobody_at_all"):
        refused = book(client, world, "nurse_x", clinician=outsider)
        assert refused.status_code == 400, outsider
        assert "care team" in refused.json()["message"]
        assert "nothing was booked" in refused.json()["message"]
    assert booked_today(client, world) == []
    assert plan_appointments(client, world) == []


def test_editing_changes_who_calls_and_the_kiosk_hears_at_once(client, world):
    add_clinician(client, world, "clin_x2", "Dr Evans")
    made = book(client, world, "clin_x").json()
    move_url = f"/api/appointments/{made['appointment_id']}/move"
    with kiosk(client, world) as ws:
        as_person(client, world, "nurse_x")
        changed = client.post(move_url, json={"clinician": "clin_x2"})
        assert changed.status_code == 200, changed.text
        assert changed.json()["clinician_name"] == "Dr Evans"
        assert changed.json()["starts_at"].startswith("2025-03-04T10:30")  # time kept
        expect(ws, "plan_changed")
    assert [a["clinician_name"] for a in plan_appointments(client, world)] == ["Dr Evans"]
    # An outsider is refused on an edit too, and nothing changes.
    as_person(client, world, "nurse_x")
    refused = client.post(move_url, json={"clinician": "clin_y", "starts_at": "2025-03-05T10:00Z"})
    assert refused.status_code == 400 and "care team" in refused.json()["message"]
    (row,) = booked_today(client, world)
    assert row["clinician"] == "clin_x2" and row["starts_at"].startswith("2025-03-04T10:30")
    empty = client.post(move_url, json={})
    assert empty.status_code == 400
